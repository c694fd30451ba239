"""The egress design on a real data path: nftables from the security-group model, real Envoy running
the rendered CiliumEnvoyConfig, real squid from ``model.proxy``, the DNS stand-in holding test-allow
to its CNP's DNS rule, the platform's proxy guard (its egressDeny as nft drops for every pod), every
probe of the egress scenario's plan judged by ``model.probes``.

One lab (``netlab.Lab``, fixture in conftest.py) is brought up per module; lock states are switched
by replacing the node's ``inet sg`` table, stages with ``set_stage``. Expected results are never
typed here: they come from ``model.probes.plan`` (the evaluator on the stage's and the platform's
objects, then the lock), ``model.security_groups.allows`` (what the rule model permits) and the
rendered listener (``envoy.tunnel_target``: where Envoy CONNECTs). The lock's side doors, the
guard and squid's own refusals are in test_lockdown_dataplane.py.
"""
from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

import cilium_verdicts as policy
import scenarios
from cilium_verdicts.verdict import POLICY_DENY
from model import probes
from model.probes import PROXY_LOG, REFUSED
from model.proxy import connect_targets
from model.security_groups import allows, kind_egress
from model.settings import url_host

from . import envoy, netlab
from .netlab import (
    ALLOW,
    ALLOWED_IP,
    DENY,
    ENVOY_ADMIN_PORT,
    ENVOY_PORT,
    NODE,
    NODE_IP,
    POD_GW,
    POD_IP,
    POLICY_STAGE,
    PROXY_IP,
    SCENARIO,
    UPLINK,
    lab_context,
    role_of,
)

CEC, CNP, REDIRECTS = netlab.lab_model()
(LISTENER,) = [r for r in CEC["spec"]["resources"] if r["@type"] == envoy.LISTENER_TYPE]
STAGES = scenarios.STAGE_NAMES[SCENARIO]
LOCK_STATES = pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])


def _url(lab, port: int) -> str:
    """The probe URL's host on ``port`` (http unless 443)."""
    return f"{'https' if port == 443 else 'http'}://{lab.settings.probe_host}:{port}/"


def _target(lab, url: str) -> str:
    """``ip:port`` the lab resolves ``url`` to: the original destination of the request."""
    parts = urlsplit(url)
    return f"{lab.names[url_host(url)]}:{parts.port or {'http': 80, 'https': 443}[parts.scheme]}"


def _tunnel(lab, url: str) -> str | None:
    """Where the rendered listener CONNECTs a pod's request to ``url`` (curl sends the URL's host as
    SNI over https): ``<name>:443`` for TLS, ``<ip>:80`` for plain HTTP."""
    https = urlsplit(url).scheme == "https"
    return envoy.tunnel_target(LISTENER, tls=https, server_name=url_host(url) if https else None,
                               original_dst=_target(lab, url))


def _origin_saw(body: str) -> dict[str, str]:
    """The origin server's answer ``local=<ip:port> peer=<ip>[ sni=<name>]`` as a dict."""
    return dict(kv.split("=", 1) for kv in body.split())


def _connects(lines: list[str]) -> list[str]:
    """CONNECT targets in squid access-log lines (parsed by the model's own reader)."""
    return connect_targets("\n".join(lines))


def _json(lines: list[str]) -> list[dict]:
    return [json.loads(ln) for ln in lines if ln.startswith("{")]


def _logged(lab, path, offset: int, done) -> list[str]:
    """Lines appended to ``path`` since ``offset``: waited for until ``done(lines)`` holds, or - when
    nothing is expected (``done`` is None) - read after a short settle."""
    if done is not None:
        return lab.wait_log(path, offset, done)
    time.sleep(0.3)
    return netlab.Lab.new_lines(path, offset)


def _probe_line(obs) -> str:
    """An observation as the one JSON line the stack's probe prints (``model.probes.parse``)."""
    return json.dumps({"http_code": obs.http_code, "curl_exit": obs.curl_exit, "remote_ip": obs.remote_ip,
                       "body": obs.body, "error": obs.detail})


# ---------------------------------------------------------------------- the model itself
def test_the_lock_changes_only_the_security_group():
    """The fixture switches lock states by replacing only the nft ``sg`` table; that is right only
    if no Cilium object - a stage's or the platform's guard - depends on the lock."""
    unlocked, locked = lab_context(False), lab_context(True)
    for stage in STAGES:
        assert scenarios.stage(SCENARIO, unlocked, stage) == scenarios.stage(SCENARIO, locked, stage), stage
    assert scenarios.platform_objects(unlocked) == scenarios.platform_objects(locked)
    proxy = f"{PROXY_IP}/32"
    assert kind_egress(unlocked.settings, proxy) != kind_egress(locked.settings, proxy)


def test_the_lab_has_the_scenarios_pods():
    """The lab's pod roles are the egress scenario's source namespaces, one curl pod each."""
    plan = probes.plan(SCENARIO, lab_context(False))
    pods = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in plan.workloads if o["kind"] == "Pod"}
    assert {ns for ns, _ in pods} == set(netlab.PODS)
    assert {p.probe.traffic.source for p in plan.probes} == {f"{ns}/{name}" for ns, name in pods}


def test_envoy_runs_the_rendered_cec_plus_only_what_cilium_adds(lab):
    """What Envoy runs is the CEC's listener and cluster verbatim plus the lab's stand-ins for what
    Cilium adds: the address, original_dst *after* the CEC's own listener filters (tls_inspector
    kept first; Cilium appends bpf_metadata there), and access logs (listener + every tcp_proxy).
    ``strip_lab_additions`` is exact: a bootstrap that lost the CEC's tls_inspector does not strip
    back to the CEC."""
    assert envoy.strip_lab_additions(lab.boot) == CEC["spec"]["resources"]
    (listener,) = lab.boot["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": ENVOY_PORT}
    assert listener["listener_filters"] == [*LISTENER["listener_filters"], envoy.ORIGINAL_DST]
    assert [f["name"] for f in listener["listener_filters"]] == [
        "envoy.filters.listener.tls_inspector", envoy.ORIGINAL_DST["name"]]
    assert [log["typed_config"]["path"] for log in listener["access_log"]] == [str(lab.envoy_listener_log)]
    tcp_proxies = [f["typed_config"] for c in listener["filter_chains"] for f in c["filters"]
                   if f["name"] == envoy.TCP_PROXY_FILTER]
    assert len(tcp_proxies) == len(LISTENER["filter_chains"]) == 2
    assert all([log["typed_config"]["path"] for log in t["access_log"]] == [str(lab.envoy_log)]
               for t in tcp_proxies)
    # the CNP's listener reference names exactly this listener, and the policy stand-in redirects to it
    assert {r.listener for r in REDIRECTS} == {listener["name"]}
    # the comparison is sensitive: the lab's original_dst *instead of* the CEC's filters is caught
    lost = copy.deepcopy(lab.boot)
    lost["static_resources"]["listeners"][0]["listener_filters"] = [envoy.ORIGINAL_DST]
    assert envoy.strip_lab_additions(lost) != CEC["spec"]["resources"]
    with pytest.raises(ValueError, match="lab adds"):  # a CEC carrying original_dst is ambiguous
        clash = copy.deepcopy(CEC)
        clash["spec"]["resources"][0]["listener_filters"].append(envoy.ORIGINAL_DST)
        envoy.bootstrap(clash, listen_ports={LISTENER["name"]: 1}, admin_port=2, access_log=None)


def test_envoy_validate_accepts_the_bootstrap(lab):
    ok = envoy.validate(str(lab.boot_path))
    assert ok.returncode == 0 and " OK" in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    # ...and validate really checks the CEC's content: a misspelt field is rejected
    broken = copy.deepcopy(lab.boot)
    tcp_proxy = broken["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    tcp_proxy["tunneling_config"]["host_name"] = tcp_proxy["tunneling_config"].pop("hostname")
    bad = envoy.validate(str(lab.write_bootstrap("broken.yaml", broken)))
    assert bad.returncode != 0


# ---------------------------------------------------------------------- the verification matrix
@LOCK_STATES
@pytest.mark.parametrize("stage", STAGES)
def test_matrix(lab, stage, locked):
    """Every probe ``model.probes.plan`` has for the egress scenario's ``stage`` (``open``: no Cilium
    objects; ``proxy-policy``: the seed's CEC and CNP) in both lock states, each run as its LabProbe
    says (its URL and curl arguments; the proxy-direct probes ``curl -x`` the lab's squid) from its
    source pod, names resolved by the DNS stand-in, judged by ``probes.judge`` and the stack's own
    ``probes.report`` (with the proxy evidence: ``evidence_targets`` looked up by the stack's
    ``proxy_log_command`` in squid's real log). Then the evidence of the path: every allowed probe
    reached the right origin through the proxy exactly when it went through the listener (squid
    logs the listener's CONNECT - by SNI name for https - and nothing else: the proxy-direct probes
    are dropped by the platform's guard, whose counters show it, before squid sees them), directly
    otherwise; every dns-fail is the DNS stand-in refusing the name under test-allow's DNS rule."""
    lab.set_lock(locked)
    lab.set_stage(stage)
    try:
        _check_plan(lab, probes.plan(SCENARIO, lab_context(locked), stage))
    finally:
        lab.set_stage(POLICY_STAGE)


def _check_plan(lab, plan) -> None:
    settings = lab.settings
    squid_at, envoy_at = lab.log_offset(lab.squid_log), lab.log_offset(lab.envoy_log)
    dns_at, drops_at = lab.log_offset(lab.dns_log), lab.guard_drops()
    with ThreadPoolExecutor(len(plan.probes)) as pool:  # dropped probes time out in parallel
        got = list(pool.map(lambda p: lab.curl(role_of(p.probe.traffic.source), p.probe.url, *p.probe.curl_args),
                            plan.probes))
    cells = [probes.judge(p, obs, settings) for p, (obs, _) in zip(plan.probes, got)]
    assert all(c["ok"] for c in cells), "\n".join(c["message"] for c in cells if not c["ok"])
    stdouts = {p.name: _probe_line(obs) for p, (obs, _) in zip(plan.probes, got)}
    evidence = {p.name: lab.stack_proxy_log(p, stdouts[p.name])
                for p in plan.probes if p.check == PROXY_LOG}
    verification = probes.report({SCENARIO: plan}, stdouts, evidence, settings)
    assert verification["ok"], probes.failures(verification)

    proxied, tunnels = set(), set()
    for p, (_, body) in zip(plan.probes, got):
        if p.expected != policy.ALLOW:
            continue
        url, via_listener = p.probe.url, p.verdict.listener is not None
        seen = _origin_saw(body)
        # the right destination answered, and the path was the planned one: through the listener and
        # the proxy (the origin sees the proxy) or direct (it sees the node's masqueraded uplink);
        # over https the pod's own TLS arrived with the pod's server name
        assert seen["local"] == _target(lab, url), p.name
        assert seen["peer"] == (PROXY_IP if via_listener else NODE_IP), p.name
        if urlsplit(url).scheme == "https":
            assert seen["sni"] == url_host(url), p.name
        if via_listener:
            proxied.add(_target(lab, url))
            tunnels.add(_tunnel(lab, url))
    assert bool(proxied) == (plan.stage.name == POLICY_STAGE), (plan.stage.name, proxied)

    # squid logged the listener's CONNECT target for exactly the proxied probes, nothing else...
    lines = _logged(lab, lab.squid_log, squid_at, (lambda ls: set(_connects(ls)) >= tunnels) if tunnels else None)
    assert set(_connects(lines)) == tunnels, lines
    if not tunnels:
        assert lines == [], lines
    # ...the guard dropped every probe its deny rule covers, at the source pod...
    guarded = {role_of(p.probe.traffic.source) for p in plan.probes if p.verdict.egress == POLICY_DENY}
    assert guarded == set(netlab.PODS), [p.name for p in plan.probes]  # both pods name the proxy
    drops = lab.guard_drops()
    assert all(drops[pod] > drops_at[pod] for pod in guarded), (drops_at, drops)
    # ...Envoy's tunnel went to the proxy, for connections to the original destination...
    lines = _logged(lab, lab.envoy_log, envoy_at,
                    (lambda ls: {e["downstream_local"] for e in _json(ls)} >= proxied) if proxied else None)
    entries = _json(lines)
    assert {e["downstream_local"] for e in entries} == proxied
    if proxied:
        assert {e["upstream_host"] for e in entries} == {f"{PROXY_IP}:{settings.proxy_port}"}
        assert {e["downstream_remote"].rsplit(":", 1)[0] for e in entries} == {POD_IP[ALLOW]}
    # ...and every dns-fail is the DNS stand-in refusing the name under test-allow's DNS rule
    refused = {url_host(p.probe.url) for p in plan.probes if p.expected == policy.DNS_FAIL}
    assert bool(refused) == (plan.stage.name == POLICY_STAGE), (plan.stage.name, refused)
    if refused:
        asked = lambda ls: refused <= {e["name"] for e in _json(ls) if e["client"] == POD_IP[ALLOW]}  # noqa: E731
        queries = _json(lab.wait_log(lab.dns_log, dns_at, asked))
        assert {(e["rcode"], e["reason"]) for e in queries
                if e["name"] in refused and e["client"] == POD_IP[ALLOW]} == {("NXDOMAIN", "policy")}


@pytest.mark.parametrize("port", sorted({p for r in REDIRECTS for p in r.ports}))
def test_every_redirected_port_is_tunnelled(lab, port):
    """Envoy tunnels each port of the CNP with CONNECT, port 80 included (squid_conf must allow it):
    TLS by its SNI name (``<name>:443``, which squid checks against allowedDomains), plain HTTP to
    the original destination address (``<ip>:80``); squid answers TCP_TUNNEL/200 for both."""
    url = _url(lab, port)
    squid_at = lab.log_offset(lab.squid_log)
    obs, body = lab.curl(ALLOW, url)
    assert obs.outcome == policy.ALLOW, obs
    expected = {"local": f"{ALLOWED_IP}:{port}", "peer": PROXY_IP}
    expected.update({"sni": lab.settings.probe_host} if port == 443 else {})
    assert _origin_saw(body) == expected
    target = _tunnel(lab, url)
    assert target == (f"{lab.settings.probe_host}:443" if port == 443 else f"{ALLOWED_IP}:80")
    lines = lab.wait_log(lab.squid_log, squid_at, _connects)
    assert _connects(lines) == [target]
    assert any("TCP_TUNNEL/200" in ln for ln in lines), lines


# ---------------------------------------------------------------------- the security-group stand-in
COUNTERS = f"""table inet lab_probe {{
  counter before_sg {{}}
  counter after_sg {{}}
  chain before {{
    type filter hook postrouting priority -10; policy accept;
    oifname "{UPLINK}" ip saddr {POD_IP[DENY]} counter name "before_sg"
  }}
  chain after {{
    type filter hook postrouting priority 10; policy accept;
    oifname "{UPLINK}" ip saddr {POD_IP[DENY]} counter name "after_sg"
  }}
}}
"""


def _counters(lab) -> dict[str, int]:
    out = lab.exec(NODE, "nft", "-j", "list", "counters", "table", "inet", "lab_probe").stdout
    objs = json.loads(out)["nftables"]
    return {o["counter"]["name"]: o["counter"]["packets"] for o in objs if "counter" in o}


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked"])
def test_security_group_filters_node_and_pod_traffic_on_the_uplink(lab, locked):
    """test-deny's packets reach the uplink with the pod's own source address (the sg table sees them
    before the masquerade) and the sg table alone decides: counted just before it (priority -10) and
    just after it (+10). The node's own traffic is filtered too, the proxy stays reachable.
    Expectations come from ``security_groups.allows`` on the same rules."""
    lab.set_lock(locked)
    settings = lab.settings
    rules = kind_egress(settings, proxy_cidr=f"{PROXY_IP}/32")
    port = settings.proxy_port
    direct_ok = allows(rules, "tcp", ALLOWED_IP, 443)
    assert allows(rules, "tcp", PROXY_IP, port)  # both lock states keep the proxy path
    lab.nft(NODE, netlab.replace_table("inet lab_probe", COUNTERS))
    try:
        url = settings.probe_url
        probes = {  # name: (role, url, curl args)
            "pod direct": (DENY, url, ()),
            "node direct": (NODE, url, ()),
            "node via proxy": (NODE, url, ("-x", f"http://{PROXY_IP}:{port}")),
        }
        with ThreadPoolExecutor(len(probes)) as pool:
            obs = dict(zip(probes, pool.map(lambda p: lab.curl(p[0], p[1], *p[2])[0], probes.values())))
        direct = policy.ALLOW if direct_ok else policy.DROP
        assert {k: o.outcome for k, o in obs.items()} == \
            {"pod direct": direct, "node direct": direct, "node via proxy": policy.ALLOW}, obs
        counts = _counters(lab)
        assert counts["before_sg"] > 0, counts  # the pod's packets reached the sg table un-NATed
        if direct_ok:
            assert counts["after_sg"] > 0, counts
        else:
            assert counts["after_sg"] == 0, counts  # ...and the sg table dropped every one of them
    finally:
        lab.exec(NODE, "nft", "delete", "table", "inet", "lab_probe", check=False)


# ---------------------------------------------------------------------- the pitfall the lab must catch
def test_without_original_dst_the_connect_goes_to_the_redirect_address(lab):
    """Guards the lab's own sensitivity: with the CEC alone (no original_dst listener filter) Envoy
    sees the REDIRECT address as the local one, so plain HTTP is CONNECTed to the REDIRECT address
    and TLS to ``<name>:<redirect port>``; squid refuses both ports and the pod sees a reset."""
    port, admin = ENVOY_PORT + 1, ENVOY_ADMIN_PORT + 1
    boot = lab.envoy_bootstrap(port, admin, lab.path("envoy-no-odst-access.log"), original_dst=False)
    path = lab.write_bootstrap("envoy-no-odst.yaml", boot)
    lab.start(NODE, "envoy-no-odst", envoy.command(str(path), str(lab.path("envoy-no-odst.log"))))
    try:
        lab.wait_listening(NODE, port, "envoy-no-odst")
        lab.apply_policy({r.listener: port for r in REDIRECTS})
        squid_at = lab.log_offset(lab.squid_log)
        wrong = {f"{POD_GW[ALLOW]}:{port}",                   # the pod-facing address REDIRECT delivered to
                 f"{lab.settings.probe_host}:{port}"}         # the SNI name with the redirect port
        for url in (_url(lab, 80), _url(lab, 443)):
            obs, _ = lab.curl(ALLOW, url)
            assert obs.outcome == REFUSED, (url, obs)
        lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: set(_connects(ls)) >= wrong)
        assert set(_connects(lines)) == wrong
        assert all("TCP_DENIED/403" in ln for ln in lines), lines
    finally:
        lab.apply_policy({r.listener: ENVOY_PORT for r in REDIRECTS})
        lab.stop("envoy-no-odst")
