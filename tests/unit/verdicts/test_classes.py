"""Issue 21 contract 7: equivalence classes give exactly the verdicts (and explanations) of evaluating
every probe on its own - on every scenario stage, on the synthetic benchmark cluster, and where a pair's
own identity shows (same-class pairs, CIDR rules containing pod IPs, named ports, self probes)."""
from __future__ import annotations

import dataclasses

import pytest

from cilium_verdicts import Cluster, Probe, all_pairs, evaluate, synthetic
from cilium_verdicts.classes import Evaluator
from cilium_verdicts.verdict import pair_probes
from model.settings import load_settings
from scenarios import ONE_CLUSTER, PACKS, Context


def _ctx():
    from model.render import PLACEHOLDER_ADDRESS
    return Context(load_settings({}, resolve_operator_cidr=False), PLACEHOLDER_ADDRESS)


# one-cluster packs (a ClusterMesh pack is evaluated by cilium_verdicts.mesh, one Cluster per member)
STAGES = [(name, s.name) for name, pack in PACKS.items() if name in ONE_CLUSTER for s in pack.stages(_ctx())]


def _same(cluster, probes):
    classed = Evaluator(cluster).many(probes)
    alone = [(p, evaluate(cluster, p)) for p in probes]
    assert classed == alone


@pytest.mark.parametrize("pack, stage", STAGES)
def test_every_scenario_stage_classed_equals_alone(pack, stage):
    ctx = _ctx()
    import scenarios
    p, st = scenarios.pack(pack), scenarios.stage(pack, ctx, stage)
    cluster = Cluster.from_objects([*p.workloads(ctx), *scenarios.platform_objects(ctx), *st.objects])
    probes = [lp.traffic for lp in p.probes(ctx, st)]
    _same(cluster, probes + pair_probes(cluster))


@pytest.mark.parametrize("replicas", [1, 5])
def test_synthetic_classed_equals_alone(replicas):
    objects = synthetic.objects(60, 30, replicas=replicas)
    a = all_pairs(Cluster.from_objects(objects))
    b = all_pairs(Cluster.from_objects(objects), classes=False)
    assert a == b and len(a) > 1000


def _pod(name, labels, ports=(("http", 8080),), ns="default"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [
                {"name": n, "containerPort": p} for n, p in ports]}]}}


def test_identity_cases_stay_exact():
    """Replicas of one class: a CIDR containing pod IPs (cilium#9209: never matches them, but the chain
    names the IP), named ports resolved per pod, self probes, service probes."""
    objects = [_pod(f"web-{i}", {"app": "web"}) for i in range(4)]
    objects += [_pod("api-0", {"app": "api"}, (("http", 9090),)), _pod("api-1", {"app": "api"}, (("http", 9191),))]
    objects += [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "cidr"},
                 "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.1.0/30"}}],
                                                           "ports": [{"port": "http"}]}]}},
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                 "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}]
    cluster = Cluster.from_objects(objects)
    ev = Evaluator(cluster)
    # web-0..2 have 10.244.1.1-3 (inside the /30), web-3 not: two classes; api-0/api-1 differ in ports
    assert len({ev.class_of(w).number for w in cluster.workloads.values() if w.name.startswith("web")}) == 2
    keys = [w.key for w in cluster.workloads.values() if not w.builtin]
    probes = pair_probes(cluster) + [Probe(k, k, 8080) for k in keys]
    probes += [Probe(k, "default/web-1", 80, via="service-ip") for k in keys]
    _same(cluster, probes)
    near = [line for p, v in ev.many(probes) if p.source == "default/web-1" and p.to == "default/web-2"
            for line in v.why if "10.244.1" in line]
    assert near and all("default/web-1's IP 10.244.1.2" in line for line in near), near


def test_classes_collapse_replicas():
    cluster = Cluster.from_objects(synthetic.objects(100, 10, replicas=10))
    ev = Evaluator(cluster)
    users = [w for w in cluster.workloads.values() if not w.builtin]
    assert len(users) == 100 and len({ev.class_of(w).number for w in users}) <= 10
    assert dataclasses.fields(Probe)  # the cache key covers every Probe field but source and to


@pytest.mark.parametrize("objects", [synthetic.objects(40, 20), synthetic.objects(60, 30, replicas=6)],
                         ids=["unique", "replicas"])
def test_pairs_json_is_render_json_byte_for_byte(objects):
    from cilium_verdicts.render import render_json, render_pairs_json
    cluster = Cluster.from_objects(objects)
    assert render_pairs_json(cluster) == render_json(all_pairs(Cluster.from_objects(objects), classes=False), cluster)


@pytest.mark.parametrize("pack, stage", STAGES[::3])
def test_pairs_json_on_scenario_stages(pack, stage):
    from cilium_verdicts.render import render_json, render_pairs_json
    import scenarios
    ctx = _ctx()
    p, st = scenarios.pack(pack), scenarios.stage(pack, ctx, stage)
    objects = [*p.workloads(ctx), *scenarios.platform_objects(ctx), *st.objects]
    cluster = Cluster.from_objects(objects)
    assert render_pairs_json(cluster) == render_json(all_pairs(Cluster.from_objects(objects), classes=False), cluster)


def test_diff_skips_only_pairs_no_changed_policy_decides(tmp_path, monkeypatch):
    """verdicts diff compares only class pairs a changed policy (or a changed workload) decides; the
    result equals comparing every class pair."""
    import yaml

    from cilium_verdicts import diff
    base = synthetic.objects(120, 30, replicas=4)
    head = [o for o in base if o["metadata"]["name"] not in ("cnp0", "np1", "np27")]
    head[20] = {**head[20], "metadata": {**head[20]["metadata"], "labels": {"app": "moved", "tier": "db"}}}
    head.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",  # default deny egress in ns0
                 "metadata": {"name": "deny", "namespace": "ns0"},
                 "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})
    for name, objects in (("base", base), ("head", head)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(objects))
    sides = [diff._side(n.upper(), str(tmp_path / f"{n}.yaml")) for n in ("base", "head")]
    fast = diff.diff_all_pairs(*sides)
    monkeypatch.setattr(diff, "_touched", lambda b, h, groups: {(g, d): True for g in groups
                                                                for d in ("egress", "ingress")})
    full = diff.diff_all_pairs(*sides)
    assert fast == full and sum(map(len, full.values())) > 100
