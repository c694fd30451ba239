"""The egress design on a real data path: nftables from the security-group model, real Envoy running
the rendered CiliumEnvoyConfig, real squid from ``model.proxy``, the DNS stand-in holding test-allow
to its CNP's DNS rule, judged by ``model.matrix``.

One lab (``netlab.Lab``, fixture in conftest.py) is brought up per module; lock states are switched
by replacing the node's ``inet sg`` table. Expected results are never typed here: they come from
``model.matrix`` (the verification matrix), ``model.security_groups.allows`` (what the rule model
permits) and the rendered listener (``envoy.tunnel_target``: where Envoy CONNECTs). The lock's side
doors and the proxy's refusals are in test_lockdown_dataplane.py.
"""
from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from model.cilium import egress_envoy_config, egress_network_policy
from model.matrix import BLOCKED, DNS_FAIL, REACHABLE, RESET, egress_cells, judge
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
(LISTENER,) = [r for r in CEC["spec"]["resources"] if r["@type"] == envoy.LISTENER_TYPE]


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
@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_matrix(lab, locked):
    """``model.matrix`` for both lock states on the real data path, names resolved by the DNS
    stand-in: test-allow -> allowed goes through Envoy and squid (squid logs the CONNECT the
    rendered listener makes: by SNI name for https), test-allow -> control is ``dns-fail`` from a
    real curl exit 6 because the stand-in refused the name under the CNP's DNS rule, test-deny is
    direct when unlocked and dropped by the security group when locked."""
    lab.set_lock(locked)
    settings = lab.settings
    cells = egress_cells(settings)
    squid_at, envoy_at = lab.log_offset(lab.squid_log), lab.log_offset(lab.envoy_log)
    dns_at = lab.log_offset(lab.dns_log)
    with ThreadPoolExecutor(len(cells)) as pool:  # blocked cells time out in parallel
        probes = list(pool.map(lambda c: lab.curl(c.source, c.url), cells))
    results = [judge(settings, cell, obs) for cell, (obs, _) in zip(cells, probes)]
    assert all(r.ok for r in results), "\n".join(r.message for r in results if not r.ok)

    proxied, tunnels = set(), set()
    for r, (_, body) in zip(results, probes):
        if r.expected.outcome != REACHABLE:
            continue
        seen = _origin_saw(body)
        # the right destination answered, and the path was the expected one: through the proxy
        # (the origin sees the proxy) or direct (it sees the node's masqueraded uplink); over
        # https the pod's own TLS arrived with the pod's server name
        assert seen["local"] == _target(lab, r.cell.url), r.cell.id
        assert seen["peer"] == (PROXY_IP if r.expected.via_proxy else netlab.NODE_IP), r.cell.id
        if urlsplit(r.cell.url).scheme == "https":
            assert seen["sni"] == url_host(r.cell.url), r.cell.id
        if r.expected.via_proxy:
            proxied.add(_target(lab, r.cell.url))
            tunnels.add(_tunnel(lab, r.cell.url))
    assert proxied, "the matrix has no proxied cell"

    # squid logged the listener's CONNECT target for exactly the proxied cells...
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: set(_connects(ls)) >= tunnels)
    assert set(_connects(lines)) == tunnels
    # ...Envoy's tunnel went to the proxy, for connections to the original destination...
    lines = lab.wait_log(lab.envoy_log, envoy_at,
                         lambda ls: {e["downstream_local"] for e in _json(ls)} >= proxied)
    entries = _json(lines)
    assert {e["downstream_local"] for e in entries} == proxied
    assert {e["upstream_host"] for e in entries} == {f"{PROXY_IP}:{settings.proxy_port}"}
    assert {e["downstream_remote"].rsplit(":", 1)[0] for e in entries} == {POD_IP[ALLOW]}
    # ...and every dns-fail is the DNS stand-in refusing the name under test-allow's DNS rule
    refused = {url_host(r.cell.url) for r in results if r.expected.outcome == DNS_FAIL}
    assert refused, "the matrix has no dns-fail cell"
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
    assert obs.outcome == REACHABLE, obs
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
            assert obs.outcome == RESET, (url, obs)
        lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: set(_connects(ls)) >= wrong)
        assert set(_connects(lines)) == wrong
        assert all("TCP_DENIED/403" in ln for ln in lines), lines
    finally:
        lab.apply_policy({r.listener: ENVOY_PORT for r in REDIRECTS})
        lab.stop("envoy-no-odst")
