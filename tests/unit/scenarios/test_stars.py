"""stars (seed 003, on one cluster): every stage reproduces the documented outcome, offline.

Sources, quoted next to each expectation (written from the texts, not from the code):
- SEED = /work/shared/seeds/003_*.txt; its final result: "`client` is an allowed client of `frontend`;
  `frontend` is an allowed client of `backend`; `management-ui` is an allowed client of all the
  services", "C allowed client to F, and F allowed client to B", and it states the policies give "the
  same effective policy as the original Calico Stars Demo on AWS".
- EKS = that original, the EKS user guide's Stars policy demo (awsdocs/amazon-eks-user-guide
  doc_source/calico.md) and the Calico tutorial it walks through (projectcalico/calico
  v3.1/.../stars-policy/index.md) for the intermediate stages.
- K8S = kubernetes.io network-policies: "By default, a pod is non-isolated for ingress".

The seed applies backend-policy BEFORE allow-ui (the original demo the other way round); policies only
add allows, so each stage's set is the union of what its policies allow.

Nothing in the seed (or the original demo) isolates the management-ui pod: requests TO management-ui
(:9001 behind Service port 80) stay allowed in every stage (K8S). The seed's statement is about the three
services the UI displays.
"""
from __future__ import annotations

import pytest

from scenarios import stars

from .conftest import ALLOW, DROP, evaluator, explain, stage_cluster, stage_named

C, F, B, M = "client/client", "stars/frontend", "stars/backend", "management-ui/management-ui"
SERVICE_PORT = {F: 80, B: 6379, C: 9000, M: 80}       # Service ports (management-ui: the seed's 80 -> 9001)
POD_PORT = {F: 80, B: 6379, C: 9000, M: 9001}         # containerPorts of the Stars manifests
PAIRS = [(s, d) for s in (C, F, B, M) for d in (C, F, B, M) if s != d]

STAGE_NAMES = ["open", "default-deny", "backend-policy", "allow-ui", "frontend-policy"]

TO_MGMT = ("K8S: management-ui is selected by no policy (seed and original), so it accepts everything",
           {(C, M), (F, M), (B, M)})
# stage -> [(allowed pairs, why)]; every other pair of PAIRS is a drop
ALLOWED: dict[str, list[tuple[str, set]]] = {
    "open": [('SEED: "When accessing the UI with no network-policies applied"; EKS: "Before you create any '
              'network policies, all services can communicate bidirectionally"', set(PAIRS))],
    "default-deny": [TO_MGMT],   # EKS: "the management user interface can no longer reach any of the nodes"
    "backend-policy": [
        ('Calico tutorial step 4: "The frontend can now access the backend (on TCP port 6379 only). The backend '
         'cannot access the frontend at all. The client cannot access the frontend, nor can it access the '
         'backend."', {(F, B)}),
        TO_MGMT],
    "allow-ui": [
        ('EKS: "the management user interface can reach the nodes again"', {(M, C), (M, F), (M, B)}),
        ('SEED: "Allow frontend as client of backend" (kept)', {(F, B)}),
        TO_MGMT],
    "frontend-policy": [
        ('SEED: "C allowed client to F, and F allowed client to B"', {(C, F), (F, B)}),
        ('SEED: "`management-ui` is an allowed client of all the services (to collect data)"',
         {(M, C), (M, F), (M, B)}),
        TO_MGMT],
}


def _allowed(stage_name) -> set:
    return set().union(*(pairs for _, pairs in ALLOWED[stage_name]))


def test_stage_names_in_seed_order():
    assert [s.name for s in stars.stages(None)] == STAGE_NAMES
    assert list(ALLOWED) == STAGE_NAMES


# The app's own traffic, from the Stars manifests (Calico v3.1 stars-policy/manifests): frontend and
# backend run "probe --urls=http://frontend.stars:80/status,http://backend.stars:6379/status,
# http://client.client:9000/status", the client "--urls=http://frontend.stars:80/status,
# http://backend.stars:6379/status", and the management-ui collects from the three (SEED: "the
# management-ui service polls the other 3"). Nothing connects to the management-ui.
APP_PAIRS = {(F, B), (F, C), (B, F), (B, C), (C, F), (C, B), (M, C), (M, F), (M, B)}


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_probes_are_the_apps_own_requests_on_the_service_port(stage_name):
    got = sorted((lp.traffic.source, lp.traffic.to, lp.traffic.port, lp.traffic.via)
                 for lp in stars.probes(None, stage_named(stars, stage_name)))
    assert got == sorted((s, d, SERVICE_PORT[d], "service-name") for s, d in APP_PAIRS)


def test_the_final_stage_allows_exactly_the_documented_arrows():
    """SEED: "C allowed client to F, and F allowed client to B"; "management-ui is an allowed client
    of all the services" - and nothing else among the app's requests."""
    _, evaluate, _ = evaluator()
    stage = stage_named(stars, "frontend-policy")
    cluster = stage_cluster(stars, stage)
    allowed = {(lp.traffic.source, lp.traffic.to) for lp in stars.probes(None, stage)
               if evaluate(cluster, lp.traffic).verdict == ALLOW}
    assert allowed == {(C, F), (F, B), (M, C), (M, F), (M, B)}


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_stage_reproduces_the_documented_graph(stage_name):
    _, evaluate, _ = evaluator()
    stage = stage_named(stars, stage_name)
    cluster = stage_cluster(stars, stage)
    want = _allowed(stage_name)
    bad = []
    for lp in stars.probes(None, stage):
        pair = (lp.traffic.source, lp.traffic.to)
        expected = ALLOW if pair in want else DROP
        v = evaluate(cluster, lp.traffic)
        if v.verdict != expected:
            bad.append(f"{lp.traffic.id}: want {expected}, got {explain(v)}")
    assert not bad, "\n".join(bad)


def test_final_stage_all_pairs_is_exactly_the_documented_set():
    """cilium_verdicts.all_pairs (every ordered pair, every declared container port, by pod IP) on the final
    stage: the allowed cells are exactly client -> frontend :80, frontend -> backend :6379,
    management-ui -> client :9000 / frontend :80 / backend :6379 (SEED), plus the three cells into
    management-ui :9001, which nothing isolates (K8S; see the module docstring)."""
    _, _, all_pairs = evaluator()
    cluster = stage_cluster(stars, stage_named(stars, "frontend-policy"))
    cells = {(p.source, p.to, p.port): v.verdict for p, v in all_pairs(cluster)}
    documented = {(C, F, 80), (F, B, 6379), (M, C, 9000), (M, F, 80), (M, B, 6379)}
    into_management_ui = {(C, M, 9001), (F, M, 9001), (B, M, 9001)}
    assert set(cells) == {(s, d, POD_PORT[d]) for s, d in PAIRS}
    allowed = {cell for cell, verdict in cells.items() if verdict == ALLOW}
    assert {c for c in allowed if c[1] != M} == documented
    assert allowed == documented | into_management_ui
    assert all(verdict in (ALLOW, DROP) for verdict in cells.values())


def test_backend_is_open_to_frontend_on_6379_only():
    # Calico tutorial step 4: "The frontend can now access the backend (on TCP port 6379 only)."
    policy = next(o for o in stage_named(stars, "frontend-policy").objects
                  if o["metadata"]["name"] == "backend-policy")
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_cross_cluster_ipblocks_became_identity_rules():
    """The seed's allow-ui (stars) and frontend-policy name the other cluster's pods by ``ipBlock
    <pod-ip>/32``; on one cluster they are the identities the seed says they stand for (the original
    demo's namespace selectors). No ipBlock is left (Cilium never matches pod IPs with one)."""
    objects = stage_named(stars, "frontend-policy").objects
    text = repr(objects)
    assert "ipBlock" not in text
    by_name = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
    assert by_name[("stars", "allow-ui")]["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"role": "management-ui"}}}]
    assert by_name[("stars", "frontend-policy")]["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"role": "client"}}}]
