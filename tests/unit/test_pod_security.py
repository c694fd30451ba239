"""Issue 20: Pod Security ``baseline`` is enforced on every namespace the scenarios create, and every
pod the lab runs there is still admitted - judged by tests/pod_security.py, the baseline profile
emulated from kubernetes/pod-security-admission v0.34.0 (the lab's Kubernetes v1.34).

Every object comes from the same builders the stack and ``python -m model render`` use
(model.render.lab_objects, every scenario at every stage). A hostNetwork pod - the one that would
share the node's network namespace, where no Cilium endpoint policy applies - is refused there.
"""
from __future__ import annotations

import copy

import pytest

import scenarios
from model import render
from model.settings import load_settings
from scenarios import k8s
from tests import pod_security

ALL = list(scenarios.ONE_CLUSTER)  # the two-cluster packs: their clusters' objects, below
PROXY = "203.0.113.20"


def _objects_at_every_stage() -> list[dict]:
    out = []
    for name in ALL:
        for stage in scenarios.STAGE_NAMES[name]:
            s = load_settings({"scenarios": ALL, "stages": {name: stage}}, resolve_operator_cidr=False)
            out += render.scenario_objects(s, PROXY, name)
    s = load_settings({"scenarios": ALL}, resolve_operator_cidr=False)
    for name in set(scenarios.PACKS) - set(ALL):
        pack, ctx = scenarios.pack(name), scenarios.Context(s, PROXY)
        for stage in pack.stages(ctx):
            out += [o for objs in pack.cluster_objects(ctx, stage).values() for o in objs]
    return out + render.lab_objects(s, PROXY)


OBJECTS = _objects_at_every_stage()
NAMESPACES = {o["metadata"]["name"]: o for o in OBJECTS if o["kind"] == "Namespace"}


def test_every_namespace_the_scenarios_create_enforces_baseline():
    assert len(NAMESPACES) >= 8, sorted(NAMESPACES)  # egress, mtls, hoot51, eks-retail, stars
    for name, ns in NAMESPACES.items():
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline", name
        assert labels["pod-security.kubernetes.io/enforce-version"] == k8s.POD_SECURITY_VERSION, name


def test_a_pack_label_cannot_lift_the_enforcement():
    ns = k8s.namespace("x", {"pod-security.kubernetes.io/enforce": "privileged", "role": "client"})
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert ns["metadata"]["labels"]["role"] == "client"


PODS = [(o, *spec) for o in OBJECTS if (spec := pod_security.pod_spec(o))]


@pytest.mark.parametrize("obj,spec,meta", PODS, ids=[f"{o['kind']}-{o['metadata'].get('namespace')}-"
                                                    f"{o['metadata']['name']}" for o, *_ in PODS])
def test_every_pod_the_lab_runs_is_admitted_under_baseline(obj, spec, meta):
    assert obj["metadata"]["namespace"] in NAMESPACES or obj["metadata"]["namespace"] == "default"
    assert pod_security.violations(spec, meta) == []


def test_the_curl_pods_of_egress_and_mtls_are_among_them():
    judged = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o, *_ in PODS}
    assert {("test-allow", "curl"), ("test-deny", "curl"), ("mtls-inject", "curl")} <= judged


@pytest.mark.parametrize("change,reason", [
    (lambda s: s.update(hostNetwork=True), "host namespaces (hostNetwork=true)"),
    (lambda s: s.update(hostPID=True), "host namespaces (hostPID=true)"),
    (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "privileged"),
    (lambda s: s["containers"][0]["securityContext"].update(capabilities={"add": ["NET_ADMIN"]}),
     "non-default capabilities"),
    (lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]), "hostPort"),
    (lambda s: s.update(volumes=[{"name": "root", "hostPath": {"path": "/"}}]), "hostPath volumes"),
], ids=["hostNetwork", "hostPID", "privileged", "NET_ADMIN", "hostPort", "hostPath"])
def test_a_pod_reaching_for_the_host_is_refused(change, reason):
    pod = k8s.curl_pod("test-deny")
    spec = copy.deepcopy(pod["spec"])
    change(spec)
    assert any(v.startswith(reason) for v in pod_security.violations(spec, pod["metadata"])), reason
