"""Every object of every pack is valid and follows the pack contract (scenarios/base.py).

- Cilium CRs validate against Cilium 1.18.10's CRD schemas (tests/validation.validate_cr), core
  objects (Namespace, Deployment, StatefulSet, Service, ServiceAccount, NetworkPolicy) against
  Kubernetes' OpenAPI schemas (validate_core, kubernetes-validate), and model.lint.check finds nothing.
- Stages hold only policy objects; workloads come from workloads() only, identical in every stage.
- Probe sources can run the probe (sh + curl in the annotated or first container); images pinned.
- The seed's policies are one YAML file each (scenarios/seed_manifests/<pack>/), every file
  applied by some stage and headed by the seed it comes from.
"""
from __future__ import annotations

import pytest

from cilium_verdicts import Probe
from model import lint
from scenarios import _seed, eks_retail, hoot51, stars, stars_mesh
from scenarios.base import PROBE_CONTAINER_ANNOTATION, TWO_CLUSTERS, LabProbe, Stage
from tests.validation import require_reference, validate_core, validate_cr

PACKS = [pytest.param(hoot51, id="hoot51"), pytest.param(eks_retail, id="eks-retail"),
         pytest.param(stars, id="stars"), pytest.param(stars_mesh, id="stars-mesh")]
CONTRACT = {  # NAME, SEED, stage names in the seed's order (the issue texts)
    hoot51: ("hoot51", "001", ["open", "default-deny-ingress", "allow-sleep-to-httpbin",
                               "allow-from-sleep-namespace", "namespace-and-pod-selector", "allow-ns-ingress",
                               "deny-sleep-egress", "allow-sleep-to-httpbin-egress", "allow-dns-egress",
                               "l7-get-headers"]),
    eks_retail: ("eks-retail", "004", ["open", "default-deny", "allow-ui-egress",
                                       "allow-catalog-ingress-webservice", "allow-catalog-ingress-db",
                                       "allow-order-ingress-fail-debug", "allow-order-ingress-success-debug"]),
    stars: ("stars", "003", ["open", "default-deny", "backend-policy", "allow-ui", "frontend-policy"]),
    stars_mesh: ("stars-mesh", "003", ["open", "default-deny", "backend-policy", "allow-ui", "frontend-policy"]),
}
POLICY_KINDS = {"NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy",
                "CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig"}
CLUSTER_SCOPED = {"Namespace", "CiliumClusterwideNetworkPolicy", "CiliumClusterwideEnvoyConfig"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicationController"}
BUILT_IN_NAMESPACES = {"default", "kube-system"}


def _all_objects(pack):
    return list(pack.workloads(None)) + [o for s in pack.stages(None) for o in s.objects]


def _label(obj):
    m = obj["metadata"]
    return f"{obj['kind']} {m.get('namespace', '')}/{m['name']}"


@pytest.mark.parametrize("pack", PACKS)
def test_module_contract(pack):
    name, seed, stage_names = CONTRACT[pack]
    assert (pack.NAME, pack.SEED) == (name, seed)
    assert isinstance(pack.TITLE, str) and pack.TITLE and "\n" not in pack.TITLE
    # a multi-cluster pack (base.py) needs two clusters and names them; the others need nothing
    assert pack.NEEDS == (frozenset({TWO_CLUSTERS}) if hasattr(pack, "CLUSTERS") else frozenset())
    stages = pack.stages(None)
    assert all(isinstance(s, Stage) and isinstance(s.objects, tuple) and s.step for s in stages)
    assert [s.name for s in stages] == stage_names
    for s in stages:
        probes = pack.probes(None, s)
        assert probes and all(isinstance(lp, LabProbe) and isinstance(lp.traffic, Probe) for lp in probes)
        assert all(lp.setup in (None, "rollout-restart") for lp in probes)


@pytest.mark.parametrize("pack", PACKS)
def test_core_objects_pass_kubernetes_schemas(pack):
    bad = {}
    for obj in _all_objects(pack):
        if obj["apiVersion"].startswith("cilium.io/"):
            continue
        errs = validate_core(obj)
        if errs:
            bad[_label(obj)] = errs
    assert not bad, bad


@pytest.mark.parametrize("pack", PACKS)
def test_cilium_objects_pass_the_crd_schemas(pack):
    crs = [o for o in _all_objects(pack) if o["apiVersion"].startswith("cilium.io/")]
    if not crs:
        return
    require_reference()
    bad = {_label(o): validate_cr(o) for o in crs if validate_cr(o)}
    assert not bad, bad


def test_hoot51_has_its_cilium_network_policy():
    kinds = [o["kind"] for s in hoot51.stages(None) for o in s.objects]
    assert kinds.count("CiliumNetworkPolicy") == 1


@pytest.mark.parametrize("pack", PACKS)
def test_every_seed_manifest_is_applied_and_cites_its_seed(pack):
    in_stages = [o for s in pack.stages(None) for o in s.objects]
    keys = _seed.keys(pack.NAME)
    assert keys
    for key in keys:
        m = _seed.manifest(pack.NAME, key)
        assert any((o["kind"], o["metadata"]["name"], o["spec"]) == (m["kind"], m["metadata"]["name"], m["spec"])
                   for o in in_stages), f"{key}: no stage applies it"
        first = _seed.path(pack.NAME, key).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(f"# Seed {pack.SEED} ("), (key, first)


@pytest.mark.parametrize("pack", PACKS)
def test_lint_finds_nothing(pack):
    for stage in pack.stages(None):
        assert lint.check(stage.objects) == [], stage.name
        assert lint.check(list(pack.workloads(None)) + list(stage.objects)) == [], stage.name


@pytest.mark.parametrize("pack", PACKS)
def test_stages_hold_policies_and_workloads_hold_the_rest(pack):
    workloads = pack.workloads(None)
    assert workloads == pack.workloads(None)       # deterministic: every stage gets the same
    assert not any(o["kind"] in POLICY_KINDS for o in workloads)
    for stage in pack.stages(None):
        assert all(o["kind"] in POLICY_KINDS for o in stage.objects), stage.name
        names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in stage.objects]
        assert len(names) == len(set(names)), f"{stage.name}: one object per kind/namespace/name"


@pytest.mark.parametrize("pack", PACKS)
def test_every_namespaced_object_names_a_declared_namespace(pack):
    objects = _all_objects(pack)
    declared = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"} | BUILT_IN_NAMESPACES
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"], _label(obj)
        else:
            assert obj["metadata"].get("namespace") in declared, _label(obj)


def _containers(workload):
    return workload["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("pack", PACKS)
def test_images_pinned_and_resources_set(pack):
    for obj in pack.workloads(None):
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        for c in _containers(obj):
            image = c["image"]
            assert "@sha256:" in image or (":" in image.rsplit("/", 1)[-1]), (_label(obj), image)
            assert not image.endswith(":latest"), (_label(obj), image)
            assert c["resources"]["requests"] and c["resources"]["limits"], (_label(obj), c["name"])


def _probe_container(workload):
    name = (workload["metadata"].get("annotations") or {}).get(PROBE_CONTAINER_ANNOTATION)
    containers = _containers(workload)
    if name is None:
        return containers[0]
    return next(c for c in containers if c["name"] == name)


@pytest.mark.parametrize("pack", PACKS)
def test_probe_sources_have_sh_and_curl(pack):
    """The probe container of every source is curlimages/curl (sh + curl); destinations exist and, for
    probes by Service, a Service in the destination's namespace selects it and exposes the port."""
    objects = pack.workloads(None)
    workloads = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o
                 for o in objects if o["kind"] in WORKLOAD_KINDS}
    services = [o for o in objects if o["kind"] == "Service"]
    for stage in pack.stages(None):
        for lp in pack.probes(None, stage):
            t = lp.traffic
            if "@" in t.source:  # a multi-cluster pack's ids: ns/name@cluster (each Deployment runs in one);
                # a name resolves in the caller's cluster: its Services
                services = [o for o in pack.cluster_workloads(None)[t.source.split("@")[1]] if o["kind"] == "Service"]
                t = Probe(t.source.split("@")[0], t.to.split("@")[0], t.port, t.via, t.protocol, t.request)
            assert t.source in workloads, t.id
            assert _probe_container(workloads[t.source])["image"].startswith("curlimages/curl:"), t.id
            if t.to.startswith("world:"):
                assert t.via == "fqdn", t.id
                continue
            assert t.to in workloads, t.id
            if t.via.startswith("service-"):
                ns = t.to.split("/")[0]
                labels = workloads[t.to]["spec"]["template"]["metadata"]["labels"]
                match = [s for s in services if s["metadata"]["namespace"] == ns
                         and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())
                         and any(p["port"] == t.port for p in s["spec"]["ports"])]
                assert len(match) == 1, t.id
            if lp.setup == "rollout-restart":
                assert workloads[t.source]["kind"] == "Deployment", t.id
