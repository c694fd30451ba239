"""``python -m model render --fleet N --out DIR``: the GitOps bundle of model/fleet.py.

- 200 clusters: every file parses as YAML; every cluster directory is complete (its manifests are exactly
  the objects the stack applies, model.render.lab_objects - namespaces, policy, CEC, the platform's proxy
  guard - with that cluster's proxy address; a kustomization listing them; its Cilium values with its own
  cluster.name); no two clusters share a name; the ApplicationSet and the Flux Kustomizations deploy
  exactly these directories and validate against their CRD schemas (Argo CD v3.5.1 ApplicationSet,
  Flux kustomize-controller v1.9.4 Kustomization; vendored in tests/reference/gitops/, see its README).
- The benchmark of rendering 200 clusters is in the README (no timed assert here).
"""
from __future__ import annotations

import functools
import json

import pytest
import yaml

from model import fleet
from model.__main__ import main
from model.render import lab_objects
from model.settings import load_settings
from scenarios import cilium
from tests.validation import ROOT, _formats, _K8sValidator, to_jsonschema

GITOPS = ROOT / "tests" / "reference" / "gitops"
SCHEMAS = {"ApplicationSet": GITOPS / "argo-cd-v3.5.1-applicationset.openAPIV3Schema.json",
           "Kustomization": GITOPS / "kustomize-controller-v1.9.4-kustomization.openAPIV3Schema.json"}
API_VERSIONS = {"ApplicationSet": "argoproj.io/v1alpha1", "Kustomization": "kustomize.toolkit.fluxcd.io/v1"}
SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32"}, resolve_operator_cidr=False)
SHARED_PROXY = "198.51.100.20"
OWN_PROXY = {"edge-007": "198.51.100.77", "edge-200": "198.51.100.99"}


@functools.lru_cache(maxsize=None)
def validator(kind):
    if not SCHEMAS[kind].is_file():
        pytest.fail(f"vendored schema {SCHEMAS[kind].relative_to(ROOT)} missing (see tests/reference/gitops/README.md)")
    return _K8sValidator(to_jsonschema(json.loads(SCHEMAS[kind].read_text())), format_checker=_formats)


def schema_errors(obj) -> list[str]:
    kind = obj["kind"]
    errs = [] if obj.get("apiVersion") == API_VERSIONS[kind] else [f"apiVersion {obj.get('apiVersion')}"]
    return errs + [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                   for e in validator(kind).iter_errors(obj)]


def proxy_of_cec(objects) -> set[str]:
    """The proxy address every CiliumEnvoyConfig/CCEC cluster sends to."""
    out = set()
    for o in objects:
        if o["kind"] in ("CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig"):
            for r in o["spec"]["resources"]:
                if r["@type"] == cilium.CLUSTER_TYPE:
                    for e in r["load_assignment"]["endpoints"][0]["lb_endpoints"]:
                        out.add(e["endpoint"]["address"]["socket_address"]["address"])
    return out


@pytest.fixture(scope="module")
def bundle200(tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet")
    fleet.write(out, fleet.bundle(SETTINGS, 200, SHARED_PROXY, proxy_addresses=OWN_PROXY))
    return out


def test_200_cluster_bundle_parses_and_every_cluster_is_complete(bundle200):
    files = sorted(p for p in bundle200.rglob("*") if p.is_file())
    parsed = {p.relative_to(bundle200).as_posix(): [d for d in yaml.safe_load_all(p.read_text()) if d] for p in files}
    dirs = sorted(p.name for p in (bundle200 / "clusters").iterdir())
    assert len(dirs) == 200 == len(set(dirs)) and dirs[0] == "edge-001" and dirs[-1] == "edge-200"
    expected = {addr: lab_objects(SETTINGS, addr) for addr in {SHARED_PROXY, *OWN_PROXY.values()}}
    for name in dirs:
        address = OWN_PROXY.get(name, SHARED_PROXY)
        manifests = parsed[f"clusters/{name}/manifests.yaml"]
        assert manifests == expected[address], name
        kinds = {o["kind"] for o in manifests}
        assert {"Namespace", "CiliumNetworkPolicy", "CiliumEnvoyConfig", "CiliumClusterwideNetworkPolicy"} <= kinds
        assert proxy_of_cec(manifests) == {address}, name          # its policy points at its proxy
        guard = next(o for o in manifests if o["metadata"]["name"] == cilium.PROXY_GUARD_NAME)
        assert guard["spec"]["egressDeny"][0]["toCIDR"] == [f"{address}/32"]
        assert parsed[f"clusters/{name}/kustomization.yaml"] == [{"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                                                  "kind": "Kustomization",
                                                                  "resources": ["manifests.yaml"]}]
        assert parsed[f"clusters/{name}/cilium-values.yaml"][0]["cluster"]["name"] == name
    assert len({v[0]["cluster"]["name"] for k, v in parsed.items() if k.endswith("cilium-values.yaml")}) == 200


def test_applicationset_and_kustomizations_deploy_every_cluster_and_validate(bundle200):
    dirs = sorted(p.name for p in (bundle200 / "clusters").iterdir())
    appset = yaml.safe_load((bundle200 / "argocd/applicationset.yaml").read_text())
    assert schema_errors(appset) == []
    elements = appset["spec"]["generators"][0]["list"]["elements"]
    assert sorted(e["cluster"] for e in elements) == dirs
    tpl = appset["spec"]["template"]["spec"]
    assert tpl["source"]["path"] == "clusters/{{.cluster}}" and tpl["destination"] == {"name": "{{.cluster}}"}
    kustomizations = [d for d in yaml.safe_load_all((bundle200 / "flux/kustomizations.yaml").read_text()) if d]
    assert len(kustomizations) == 200
    for k in kustomizations:
        assert schema_errors(k) == [], k["metadata"]["name"]
        name = k["metadata"]["name"]
        assert k["spec"]["path"] == f"./clusters/{name}" and (bundle200 / k["spec"]["path"]).is_dir()
        assert k["spec"]["kubeConfig"]["secretRef"]["name"] == f"{name}-kubeconfig"
    assert sorted(k["metadata"]["name"] for k in kustomizations) == dirs
    source = yaml.safe_load((bundle200 / "flux/gitrepository.yaml").read_text())
    assert {k["spec"]["sourceRef"]["name"] for k in kustomizations} == {source["metadata"]["name"]}


def test_schema_validation_is_not_vacuous():
    appset = fleet.application_set(["edge-001"], fleet.DEFAULT_REPO_URL, "main")
    appset["spec"]["generators"] = "list"
    appset["spec"]["template"]["spec"]["destination"]["nmae"] = "edge-001"
    assert len(schema_errors(appset)) >= 2
    k = fleet.flux_kustomization("edge-001")
    del k["spec"]["sourceRef"]                   # required by the CRD
    k["spec"]["prune"] = "yes"
    assert len(schema_errors(k)) >= 2


def test_render_cli_writes_the_bundle(tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["render", "--fleet", "3", "--out", str(out), "--set", f"proxyAddress={SHARED_PROXY}",
                 "--proxy-for", "edge-002=198.51.100.22", "--repo-url", "https://git.example.com/fleet.git"]) == 0
    assert sorted(p.name for p in (out / "clusters").iterdir()) == ["edge-001", "edge-002", "edge-003"]
    two = [d for d in yaml.safe_load_all((out / "clusters/edge-002/manifests.yaml").read_text()) if d]
    assert proxy_of_cec(two) == {"198.51.100.22"}
    appset = yaml.safe_load((out / "argocd/applicationset.yaml").read_text())
    assert appset["spec"]["template"]["spec"]["source"]["repoURL"] == "https://git.example.com/fleet.git"
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["--fleet", "0", "--out", "X"], "accepted: an integer 1..5000"),
    (["--fleet", "2"], "--fleet N and --out DIR go together"),
    (["--fleet", "2", "--out", "X", "--proxy-for", "edge-009=198.51.100.1"], "not a cluster of this fleet"),
    (["--fleet", "2", "--out", "X", "--proxy-for", "edge-001=nope"], "CLUSTER=<ipv4>"),
])
def test_render_cli_refuses_bad_fleet_input(argv, message, tmp_path, capsys):
    argv = [a.replace("X", str(tmp_path / "b")) for a in argv]
    assert main(["render", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and not (tmp_path / "b").exists()
