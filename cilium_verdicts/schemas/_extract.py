"""Regenerate the schema subsets beside this file (a maintainer's tool, not used at runtime).

    python -m cilium_verdicts.schemas._extract   # needs kubernetes-validate (requirements-dev.txt)

* ``kubernetes-v1.34.json``: the definitions reachable from the kinds the evaluator reads, from
  kubernetes-validate's ``v1.34.0-local-strict`` schemas (every object ``additionalProperties:
  false``, as kubectl's strict field validation), descriptions dropped.
* ``cilium-v1.18.10.json``: the ``openAPIV3Schema`` of the CiliumNetworkPolicy and
  CiliumClusterwideNetworkPolicy CRDs vendored in tests/reference/cilium/v1.18.10/crds/, descriptions
  dropped.
A test (tests/unit/policy/test_impl_strict.py) checks that the committed files equal a fresh run.
"""
from __future__ import annotations

import json
import pathlib

import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = next(p for p in HERE.parents if (p / "tests" / "reference").is_dir())  # wherever the package lives
K8S_VERSION = "v1.34.0"
K8S_FILE, CILIUM_FILE = "kubernetes-v1.34.json", "cilium-v1.18.10.json"
CRDS = REPO / "tests" / "reference" / "cilium" / "v1.18.10" / "crds"
K8S_KINDS = {  # kind -> (apiVersion, kubernetes-validate file)
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicy-networking-v1.json"),
    "Pod": ("v1", "pod-v1.json"),
    "ReplicationController": ("v1", "replicationcontroller-v1.json"),
    "Deployment": ("apps/v1", "deployment-apps-v1.json"),
    "StatefulSet": ("apps/v1", "statefulset-apps-v1.json"),
    "DaemonSet": ("apps/v1", "daemonset-apps-v1.json"),
    "ReplicaSet": ("apps/v1", "replicaset-apps-v1.json"),
    "Job": ("batch/v1", "job-batch-v1.json"),
    "CronJob": ("batch/v1", "cronjob-batch-v1.json"),
}
CILIUM_CRDS = {"CiliumNetworkPolicy": "ciliumnetworkpolicies.yaml",
               "CiliumClusterwideNetworkPolicy": "ciliumclusterwidenetworkpolicies.yaml"}
DROP = {"description", "x-kubernetes-group-version-kind", "$schema", "$id", "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-patch-merge-key",
        "x-kubernetes-patch-strategy", "x-kubernetes-unions", "default"}


def _strip(node):
    """Drop documentation keys; rewrite refs into this file's ``$defs``. Under ``properties`` the keys
    are field names (a field may be called ``description``), so they are kept."""
    if isinstance(node, list):
        return [_strip(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "properties":
            out[k] = {name: _strip(sub) for name, sub in v.items()}
        elif k == "$ref":
            out[k] = "#/$defs/" + v.rsplit("/", 1)[1]
        elif k not in DROP:
            out[k] = _strip(v)
    return out


def _refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                found.add(v.rsplit("/", 1)[1])
            else:
                _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def kubernetes(source: pathlib.Path) -> dict:
    defs = json.loads((source / "_definitions.json").read_text())["$defs"]
    kinds = {kind: _strip(json.loads((source / file).read_text())) for kind, (_, file) in K8S_KINDS.items()}
    wanted: set[str] = set()
    _refs(kinds, wanted)
    done: set[str] = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        _refs(defs[name], wanted)
    return {"source": f"kubernetes-validate {source.name}", "kinds": kinds,
            "$defs": {name: _strip(defs[name]) for name in sorted(done)}}


def cilium() -> dict:
    out = {}
    for kind, file in CILIUM_CRDS.items():
        crd = yaml.safe_load((CRDS / file).read_text())
        version, = [v for v in crd["spec"]["versions"] if v["name"] == "v2"]
        out[kind] = _strip(version["schema"]["openAPIV3Schema"])
    return {"source": "cilium/cilium v1.18.10 pkg/k8s/apis/cilium.io/client/crds/v2", "kinds": out}


def render(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> None:
    import kubernetes_validate  # noqa: PLC0415 - a dev dependency, only for this tool
    source = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"{K8S_VERSION}-local-strict"
    (HERE / K8S_FILE).write_text(render(kubernetes(source)))
    (HERE / CILIUM_FILE).write_text(render(cilium()))


if __name__ == "__main__":
    main()
