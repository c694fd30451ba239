"""The egress design on a real data path: nftables from the security-group model, real Envoy running
the rendered CiliumEnvoyConfig, real squid from ``model.proxy``, judged by ``model.matrix``.

One lab (``netlab.Lab``) is brought up per module; lock states are switched by replacing the node's
``inet sg`` table. Expected results are never typed here: they come from ``model.matrix`` (the
verification matrix) and ``model.security_groups.allows`` (what the rule model permits).
"""
from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from model.cilium import egress_envoy_config, egress_network_policy
from model.matrix import BLOCKED, REACHABLE, RESET, egress_cells, judge
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
    POD_GW,
    POD_IP,
    PROXY_IP,
    UPLINK,
    lab_settings,
)

CEC, CNP, REDIRECTS = netlab.lab_model()


@pytest.fixture(scope="module")
def lab():
    reason = netlab.unavailable()
    if reason:
        pytest.skip(reason)
    with netlab.Lab() as running:  # down() on success, failure and interruption (+ atexit, SIGTERM)
        yield running


def _url(lab, port: int) -> str:
    """The probe URL's host on ``port`` (http unless 443)."""
    return f"{'https' if port == 443 else 'http'}://{lab.settings.probe_host}:{port}/"


def _target(lab, url: str) -> str:
    """``ip:port`` the lab resolves ``url`` to: the original destination of the request."""
    parts = urlsplit(url)
    return f"{lab.names[url_host(url)]}:{parts.port or {'http': 80, 'https': 443}[parts.scheme]}"


def _origin_saw(body: str) -> dict[str, str]:
    """The origin server's answer ``local=<ip:port> peer=<ip>`` as a dict."""
    return dict(kv.split("=", 1) for kv in body.split())


def _connects(lines: list[str]) -> list[str]:
    """CONNECT targets in squid access-log lines (parsed by the model's own reader)."""
    return connect_targets("\n".join(lines))


def _json(lines: list[str]) -> list[dict]:
    return [json.loads(ln) for ln in lines if ln.startswith("{")]


# ---------------------------------------------------------------------- the model itself
def test_the_lock_changes_only_the_security_group():
    """The fixture switches lock states by replacing only the nft ``sg`` table; that is right only
    if the Cilium objects do not depend on the lock."""
    unlocked, locked = lab_settings(False), lab_settings(True)
    cec_u, cec_l = (egress_envoy_config(s, proxy_address=PROXY_IP) for s in (unlocked, locked))
    assert cec_u == cec_l
    assert egress_network_policy(unlocked, cec_u) == egress_network_policy(locked, cec_l)
    proxy = f"{PROXY_IP}/32"
    assert kind_egress(unlocked, proxy) != kind_egress(locked, proxy)


def test_envoy_runs_the_rendered_cec_plus_only_what_cilium_adds(lab):
    assert envoy.strip_lab_additions(lab.boot) == CEC["spec"]["resources"]
    (listener,) = lab.boot["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": ENVOY_PORT}
    assert listener["listener_filters"] == [envoy.ORIGINAL_DST]
    # the CNP's listener reference names exactly this listener, and the policy stand-in redirects to it
    assert {r.listener for r in REDIRECTS} == {listener["name"]}


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
@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_matrix(lab, locked):
    lab.set_lock(locked)
    settings = lab.settings
    cells = egress_cells(settings)
    squid_at, envoy_at = lab.log_offset(lab.squid_log), lab.log_offset(lab.envoy_log)
    with ThreadPoolExecutor(len(cells)) as pool:  # blocked cells time out in parallel
        probes = list(pool.map(lambda c: lab.curl(c.source, c.url), cells))
    results = [judge(settings, cell, obs) for cell, (obs, _) in zip(cells, probes)]
    assert all(r.ok for r in results), "\n".join(r.message for r in results if not r.ok)

    proxied = set()
    for r, (_, body) in zip(results, probes):
        if r.expected.outcome != REACHABLE:
            continue
        seen = _origin_saw(body)
        # the right destination answered, and the path was the expected one: through the proxy
        # (the origin sees the proxy) or direct (it sees the node's masqueraded uplink)
        assert seen["local"] == _target(lab, r.cell.url), r.cell.id
        assert seen["peer"] == (PROXY_IP if r.expected.via_proxy else netlab.NODE_IP), r.cell.id
        if r.expected.via_proxy:
            proxied.add(_target(lab, r.cell.url))
    assert proxied, "the matrix has no proxied cell"

    # squid logged CONNECT <original destination> for exactly the proxied cells...
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: set(_connects(ls)) >= proxied)
    assert set(_connects(lines)) == proxied
    # ...and Envoy's tunnel went to the proxy with the original destination as CONNECT target
    lines = lab.wait_log(lab.envoy_log, envoy_at,
                         lambda ls: {e["downstream_local"] for e in _json(ls)} >= proxied)
    entries = _json(lines)
    assert {e["downstream_local"] for e in entries} == proxied
    assert {e["upstream_host"] for e in entries} == {f"{PROXY_IP}:{settings.proxy_port}"}
    assert {e["downstream_remote"].rsplit(":", 1)[0] for e in entries} == {POD_IP[ALLOW]}


@pytest.mark.parametrize("port", sorted({p for r in REDIRECTS for p in r.ports}))
def test_every_redirected_port_is_tunnelled_to_the_original_destination(lab, port):
    """Envoy tunnels each port of the CNP with CONNECT, port 80 included (squid_conf must allow it)."""
    url = _url(lab, port)
    squid_at = lab.log_offset(lab.squid_log)
    obs, body = lab.curl(ALLOW, url)
    assert obs.outcome == REACHABLE, obs
    assert _origin_saw(body) == {"local": f"{ALLOWED_IP}:{port}", "peer": PROXY_IP}
    lines = lab.wait_log(lab.squid_log, squid_at, _connects)
    assert _connects(lines) == [f"{ALLOWED_IP}:{port}"]
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
            "node via proxy": (NODE, f"https://{ALLOWED_IP}/", ("-x", f"http://{PROXY_IP}:{port}")),
        }
        with ThreadPoolExecutor(len(probes)) as pool:
            obs = dict(zip(probes, pool.map(lambda p: lab.curl(p[0], p[1], *p[2])[0], probes.values())))
        direct = REACHABLE if direct_ok else BLOCKED
        assert {k: o.outcome for k, o in obs.items()} == \
            {"pod direct": direct, "node direct": direct, "node via proxy": REACHABLE}, obs
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
    CONNECTs to the REDIRECT address, squid refuses that port, and the pod sees a reset."""
    port, admin = ENVOY_PORT + 1, ENVOY_ADMIN_PORT + 1
    boot = lab.envoy_bootstrap(port, admin, lab.path("envoy-no-odst-access.log"), original_dst=False)
    path = lab.write_bootstrap("envoy-no-odst.yaml", boot)
    lab.start(NODE, "envoy-no-odst", envoy.command(str(path), str(lab.path("envoy-no-odst.log"))))
    try:
        lab.wait_listening(NODE, port, "envoy-no-odst")
        lab.apply_policy({r.listener: port for r in REDIRECTS})
        squid_at = lab.log_offset(lab.squid_log)
        obs, _ = lab.curl(ALLOW, lab.settings.probe_url)
        assert obs.outcome == RESET, obs
        wrong = f"{POD_GW[ALLOW]}:{port}"  # the pod-facing address REDIRECT delivered to
        lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: wrong in _connects(ls))
        assert any("TCP_DENIED/403" in ln for ln in lines), lines
    finally:
        lab.apply_policy({r.listener: ENVOY_PORT for r in REDIRECTS})
        lab.stop("envoy-no-odst")
