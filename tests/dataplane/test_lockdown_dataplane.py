"""Issue 12 ("Locked means locked") on the real data path: real Envoy running the rendered CEC, real
squid from ``model.proxy.squid_conf``, nftables from ``model.security_groups``, the DNS stand-in
from the CNP's DNS rule (topology in netlab.py; fixture in conftest.py).

- DNS: test-allow resolves only what its CNP's DNS rule allows (NXDOMAIN otherwise) and reaches no
  other resolver; test-deny resolves every lab name.
- Side doors: locked, neither a pod without policy nor the node reaches anything outside but the
  proxy - not TCP 53, UDP 53/123 to a host that is no resolver, ICMP, nor a high port; unlocked
  they all work; the *old* locked rules (DNS/NTP to 0.0.0.0/0) are shown to leave them open.
- The platform's guard (the ``egress-proxy-guard`` CCNP, played by ``netlab.deny_nft``): no pod
  uses the proxy itself - ``curl -x`` from test-deny or test-allow, to port 80 of a public address
  or to anything squid would refuse, is dropped at the pod (curl exit 28, counted by the guard) and
  squid never logs it, in both lock states; Envoy's tunnel (from the node) is untouched. Without the
  guard a pod reaches port 80 of any public address through squid (shown, then restored).
- Proxy abuse, squid's own configuration (defence in depth behind the guard): ``curl -x`` from the
  node - the kind host's own processes, squid's legitimate clients - to a non-allowed name, the
  proxy's own loopback, the metadata address, a VPC address or an allowed name that resolves into
  the VPC is refused by squid (403, logged TCP_DENIED) in both lock states; the allowed name works.
  What remains, stated as the current behaviour: the node reaches port 80 of a public address
  through squid (the host is trusted; pods cannot reach squid at all).
- Through the policy: test-allow's TLS is tunnelled by its SNI name only when the listener lists
  it (and squid allows it); a non-allowed SNI or none at all is closed by Envoy (no filter chain)
  and never reaches squid; plain HTTP still goes by address.
- The stack's proxy evidence (``probes.evidence_targets``, ``remote.proxy_log_command``,
  ``probes.judge_proxy``), fed the stack's own probe command run in test-allow and squid's real
  log, finds the tunnel (``CONNECT <SNI name>:443``).

Expected outcomes come from the model where it says them (``model.probes.plan``,
``security_groups.allows``, ``cilium_verdicts.fqdn`` on the CNP's DNS patterns and allowedDomains,
``envoy.tunnel_target`` on the rendered listener); where it cannot (a squid refusal), the test states
the issue's words.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

import cilium_verdicts as policy
import scenarios
from cilium_verdicts import fqdn
from model import probes
from model.probes import PROXY_LOG, REFUSED
from model.security_groups import ALL, Rule, allows, kind_egress, to_nft
from model.settings import load_settings, url_host
from scenarios import Context

from . import envoy, netlab
from .netlab import (
    ALLOW,
    ALLOWED_IP,
    CONTROL_IP,
    DENY,
    METADATA_IP,
    NODE,
    NODE_IP,
    POD_IP,
    PODS,
    PROXY_IP,
    PROXY_LOOPBACK,
    RESOLVER,
    SCENARIO,
    SIDE_DOOR_IP,
    SIDE_DOOR_TCP,
    SIDE_DOOR_UDP,
    UPLINK,
    VPC_IP,
    lab_context,
    role_of,
)

CEC, CNP, REDIRECTS = netlab.lab_model()
(LISTENER,) = [r for r in CEC["spec"]["resources"] if r["@type"] == envoy.LISTENER_TYPE]
DNS_RULE = netlab.dns_rule(CNP)
LOCK_STATES = pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])

SIDE_DOORS = ([("tcp", SIDE_DOOR_IP, p) for p in SIDE_DOOR_TCP] + [("udp", SIDE_DOOR_IP, p) for p in SIDE_DOOR_UDP]
              + [("icmp", SIDE_DOOR_IP, 0)])
# The locked rule set before issue 12 (model/security_groups.py at 0daaa0e^): all protocols to the
# proxy /32 plus DNS over TCP/UDP and NTP to anywhere.
OLD_LOCKED = [
    Rule("egress-proxy", ALL, f"{PROXY_IP}/32", description="all protocols to the proxy host"),
    Rule("egress-internet", "tcp", "0.0.0.0/0", 53, 53, "DNS over TCP (egress locked)"),
    Rule("egress-dns-udp", "udp", "0.0.0.0/0", 53, 53, "DNS over UDP"),
    Rule("egress-ntp", "udp", "0.0.0.0/0", 123, 123, "NTP"),
]


def _spec(proto: str, ip: str, port: int) -> str:
    return f"icmp:{ip}" if proto == "icmp" else f"{proto}:{ip}:{port}"


def _json(lines: list[str]) -> list[dict]:
    return [json.loads(ln) for ln in lines if ln.startswith("{")]


def _squid(lines: list[str]) -> list[tuple[str, str, str]]:
    """(result/status, method, URL) of squid access-log lines (``squid_conf``'s ``lab`` format:
    time elapsed client result/status bytes method URL ...)."""
    return [(f[3], f[5], f[6]) for f in (ln.split() for ln in lines) if len(f) > 6]


def _client(line: str) -> str:
    """The client address of a squid access-log line (``lab`` format, third field)."""
    return line.split()[2]


def _origin_saw(body: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in body.split())


def _proxy(lab) -> tuple[str, str]:
    return ("-x", f"http://{PROXY_IP}:{lab.settings.proxy_port}")


def _proxy_direct(lab) -> dict[str, probes.Planned]:
    """{pod role: the egress plan's probe of that pod naming the proxy itself (``curl -x``)}: what
    the model expects of any connection from that pod to the proxy's port."""
    plan = probes.plan(SCENARIO, lab_context(bool(lab.locked)))
    port = lab.settings.proxy_port
    got = {role_of(p.probe.traffic.source): p for p in plan.probes
           if p.probe.traffic.to == f"world:{PROXY_IP}" and p.probe.traffic.port == port}
    assert set(got) == set(PODS), [p.name for p in plan.probes]
    return got


def _pods_use_the_proxy(lab, cases: list[tuple[str, str, tuple[str, ...]]]) -> None:
    """``cases`` (what, URL, extra curl args) through ``curl -x`` from every pod: each gets what the
    plan's proxy-direct probe of that pod expects (drop: the guard), the guard's counters show it
    dropped them at the pod, and squid logs nothing at all meanwhile."""
    planned = _proxy_direct(lab)
    squid_at, drops_at = lab.log_offset(lab.squid_log), lab.guard_drops()
    runs = [(pod, case) for pod in PODS for case in cases]
    with ThreadPoolExecutor(len(runs)) as pool:
        got = list(pool.map(lambda r: lab.curl(r[0], r[1][1], *_proxy(lab), *r[1][2])[0], runs))
    for (pod, (what, _, extra)), obs in zip(runs, got):
        assert obs.outcome == planned[pod].expected == policy.DROP, (pod, what, extra, obs)
        assert obs.curl_exit == 28, (pod, what, obs)
    drops = lab.guard_drops()
    assert all(drops[pod] > drops_at[pod] for pod in PODS), (drops_at, drops)
    time.sleep(0.3)  # a request squid took would be logged by now (the curls gave up after 3 s)
    assert lab.new_lines(lab.squid_log, squid_at) == []


# ---------------------------------------------------------------------- DNS (the CNP's DNS rule)
def test_dns_stand_in_answers_test_allow_only_what_its_dns_rule_allows(lab):
    """The stand-in for Cilium's DNS proxy, fed the CNP's ``rules.dns`` patterns: test-allow gets
    an answer only for a name the rule matches (``cilium_verdicts.fqdn``) and NXDOMAIN for anything else -
    the control host, a data-carrying exfiltration name; a cluster name the rule allows but nobody
    serves is NXDOMAIN for being unknown, not for the policy. test-deny (no policy) resolves every
    lab name. The pods really use it: ``getent`` in their namespaces reads the lab's resolv.conf."""
    settings = lab.settings
    names = {**lab.names, "c2VjcmV0LWRhdGE.exfil.example.net": None,
             "kube-dns.kube-system.svc.cluster.local": None}
    assert fqdn.matches_any(DNS_RULE.patterns, "kube-dns.kube-system.svc.cluster.local")
    assert not fqdn.matches_any(DNS_RULE.patterns, settings.control_host)
    dns_at = lab.log_offset(lab.dns_log)
    for role in (ALLOW, DENY):
        for name, ip in names.items():
            allowed = role == DENY or fqdn.matches_any(DNS_RULE.patterns, name)
            got = lab.exec(role, "getent", "ahostsv4", name, check=False)
            if allowed and ip is not None:
                assert got.returncode == 0 and got.stdout.split()[0] == ip, (role, name, got)
            else:
                assert got.returncode == 2 and not got.stdout, (role, name, got)  # 2: not found
    queries = _json(lab.wait_log(lab.dns_log, dns_at, lambda ls: len(_json(ls)) >= 2 * len(names)))
    verdicts = {(e["client"], e["name"]): (e["rcode"], e["reason"]) for e in queries if e["type"] == "A"}
    assert verdicts[(POD_IP[ALLOW], settings.control_host)] == ("NXDOMAIN", "policy")
    assert verdicts[(POD_IP[ALLOW], "c2VjcmV0LWRhdGE.exfil.example.net")] == ("NXDOMAIN", "policy")
    assert verdicts[(POD_IP[ALLOW], "kube-dns.kube-system.svc.cluster.local")] == ("NXDOMAIN", "unknown")
    assert verdicts[(POD_IP[ALLOW], settings.probe_host)] == ("NOERROR", "answer")
    assert verdicts[(POD_IP[DENY], settings.control_host)] == ("NOERROR", "answer")


@LOCK_STATES
def test_test_allow_reaches_no_other_resolver(lab, locked):
    """DNS from test-allow goes to the DNS proxy or nowhere: the policy's DNS rule opens port 53 to
    kube-dns only, so a query to another server (the side-door host's UDP/TCP 53) is dropped, in
    both lock states; the stand-in itself answers."""
    lab.set_lock(locked)
    doors = [_spec("udp", SIDE_DOOR_IP, 53), _spec("tcp", SIDE_DOOR_IP, 53)]
    got = lab.l4_probe(ALLOW, doors)
    assert not any(r["reached"] for r in got.values()), got
    assert lab.exec(ALLOW, "getent", "ahostsv4", lab.settings.probe_host).stdout.split()[0] == ALLOWED_IP
    assert f"nameserver {RESOLVER[ALLOW]}" in lab.exec(ALLOW, "cat", "/etc/resolv.conf").stdout


# ---------------------------------------------------------------------- side doors in the lock
def _side_door_probes(lab, rules: list[Rule]) -> dict[str, dict[tuple, bool]]:
    """From test-deny and from the node: every side door (and the proxy /32) is reached exactly when
    ``allows(rules, ...)`` says so, and a reached side door is the side-door service itself.
    Returns {role: {(proto, ip, port): reached}}."""
    specs = {_spec(*d): d for d in SIDE_DOORS}
    specs[_spec("icmp", PROXY_IP, 0)] = ("icmp", PROXY_IP, 0)
    with ThreadPoolExecutor(2) as pool:
        seen = dict(zip((DENY, NODE), pool.map(lambda role: lab.l4_probe(role, list(specs)), (DENY, NODE))))
    for role, results in seen.items():
        for spec, (proto, ip, port) in specs.items():
            want = allows(rules, proto, ip, port)
            got = results[spec]
            assert got["reached"] == want, (role, spec, want, got)
            if want and ip == SIDE_DOOR_IP and proto != "icmp":
                assert got["reply"].startswith(f"side-door {proto}/{port}"), (role, spec, got)
    return {role: {d: results[s]["reached"] for s, d in specs.items()} for role, results in seen.items()}


@LOCK_STATES
def test_locked_the_kind_host_reaches_nothing_but_the_proxy(lab, locked):
    """Issue 12, side doors: locked, a pod without policy (test-deny) and the node itself reach
    nothing outside but the proxy - not a TCP service on port 53, UDP services on 53 and 123 of a
    host that is no resolver, ICMP echo, nor a TCP service on a high port; all protocols to the
    proxy /32 (ICMP) and a proxied request still work. Unlocked, every one of them is reached (the
    probes can see an open door). The proxied request is the node's own (pods do not use the proxy:
    the guard). Expectations: ``security_groups.allows`` on the model's rules, plus the issue's
    words stated outright."""
    lab.set_lock(locked)
    rules = kind_egress(lab.settings, proxy_cidr=f"{PROXY_IP}/32")
    reached = _side_door_probes(lab, rules)  # the data path does what the rules say...
    for role, doors in reached.items():      # ...and that is what the issue asks for
        assert {d for d in SIDE_DOORS if doors[d] is locked} == set(), (role, locked, doors)
        assert doors[("icmp", PROXY_IP, 0)], role
    obs, body = lab.curl(NODE, lab.settings.probe_url, *_proxy(lab))
    assert obs.outcome == policy.ALLOW and _origin_saw(body)["peer"] == PROXY_IP, obs


def test_old_locked_rules_leave_dns_and_ntp_side_doors_open(lab):
    """The side-door test is not vacuous: with the locked rules before issue 12 (DNS/NTP to
    0.0.0.0/0), rendered by the same ``to_nft``, TCP 53 and UDP 53/123 of an arbitrary host are
    reached from test-deny and from the node (ICMP and the high port stay closed)."""
    try:
        lab.nft(NODE, netlab.replace_table("inet sg", to_nft(OLD_LOCKED, table="sg", oif=UPLINK)))
        open_doors = {(p, port) for p, ip, port in SIDE_DOORS if allows(OLD_LOCKED, p, ip, port)}
        assert open_doors == {("tcp", 53), ("udp", 53), ("udp", 123)}
        _side_door_probes(lab, OLD_LOCKED)
    finally:
        lab.set_lock(True)


# ---------------------------------------------------------------------- the proxy refuses abuse
def _abuse_cases(lab) -> list[tuple[str, str, tuple[str, ...], str, str]]:
    """(what, URL, extra curl args, squid's method, squid's URL) - each must be refused."""
    s, port = lab.settings, lab.settings.proxy_port
    internal = netlab.internal_host(s)
    return [
        ("non-allowed name, https", f"https://{s.control_host}/", (), "CONNECT", f"{s.control_host}:443"),
        ("non-allowed name, http", f"http://{s.control_host}/", (), "GET", f"http://{s.control_host}/"),
        ("proxy's loopback, proxy port", f"http://{PROXY_LOOPBACK}:{port}/", (), "GET",
         f"http://{PROXY_LOOPBACK}:{port}/"),
        ("proxy's loopback, http", f"http://{PROXY_LOOPBACK}/", (), "GET", f"http://{PROXY_LOOPBACK}/"),
        ("proxy's loopback, CONNECT 443", f"https://{PROXY_LOOPBACK}/", (), "CONNECT", f"{PROXY_LOOPBACK}:443"),
        ("metadata, http", f"http://{METADATA_IP}/latest/meta-data/", (), "GET",
         f"http://{METADATA_IP}/latest/meta-data/"),
        ("metadata, CONNECT 80", f"http://{METADATA_IP}/", ("-p",), "CONNECT", f"{METADATA_IP}:80"),
        ("VPC address, http", f"http://{VPC_IP}/", (), "GET", f"http://{VPC_IP}/"),
        ("VPC address, CONNECT 443", f"https://{VPC_IP}/", (), "CONNECT", f"{VPC_IP}:443"),
        ("allowed name resolving into the VPC", f"https://{internal}/", (), "CONNECT", f"{internal}:443"),
    ]


@LOCK_STATES
def test_proxy_refuses_the_node_what_the_policy_would_not_allow(lab, locked):
    """Issue 12, proxy abuse - squid's own configuration, defence in depth behind the guard. No pod
    gets this far (first part: every case from test-deny and test-allow is dropped by the guard
    and squid logs nothing), so squid's refusals are checked from its legitimate client, the node
    (the kind host's own processes): ``curl -x proxy`` to a non-allowed name (CONNECT by name and
    plain GET), the proxy's own loopback (its port, :80, CONNECT :443), the metadata address (GET
    and CONNECT :80 - what Envoy's plain-HTTP chain sends), a VPC address and an allowed name that
    resolves into the VPC is refused: squid answers 403 (curl exit 56 with CONNECT 403, or HTTP
    403) and logs TCP_DENIED/403 for each, from the node's address. Every one of them has a live
    service behind it (origin servers on the proxy's loopback and the metadata address, a VPC
    host), so only squid's refusal stops them. The allowed name through the proxy still works
    (TCP_TUNNEL/200)."""
    lab.set_lock(locked)
    cases = _abuse_cases(lab)
    _pods_use_the_proxy(lab, [(what, url, extra) for what, url, extra, *_ in cases])
    squid_at = lab.log_offset(lab.squid_log)
    with ThreadPoolExecutor(len(cases)) as pool:
        got = list(pool.map(lambda c: lab.curl_info(NODE, c[1], *_proxy(lab), *c[2]), cases))
    for (what, url, extra, method, _), (obs, _, info) in zip(cases, got):
        if method == "CONNECT":
            assert (obs.curl_exit, info.get("http_connect")) == (56, 403), (what, obs, info.get("http_connect"))
            assert obs.outcome == REFUSED, what
        else:
            assert (obs.curl_exit, obs.http_code) == (0, "403"), (what, obs)
            assert obs.outcome == policy.L7_DENY, what  # squid's 403, in the verdict vocabulary
    expected = {(method, squid_url) for *_, method, squid_url in cases}
    lines = lab.wait_log(lab.squid_log, squid_at,
                         lambda ls: expected <= {(m, u) for _, m, u in _squid(ls)})
    assert {(m, u) for status, m, u in _squid(lines) if status == "TCP_DENIED/403"} == expected, lines
    assert {_client(ln) for ln in lines} == {NODE_IP}, lines
    # ...and the allowed name through the proxy works
    squid_at = lab.log_offset(lab.squid_log)
    obs, body = lab.curl(NODE, lab.settings.probe_url, *_proxy(lab))
    assert obs.outcome == policy.ALLOW, obs
    assert _origin_saw(body) == {"local": f"{ALLOWED_IP}:443", "peer": PROXY_IP, "sni": lab.settings.probe_host}
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: bool(_squid(ls)))
    assert _squid(lines) == [("TCP_TUNNEL/200", "CONNECT", f"{lab.settings.probe_host}:443")]


# ---------------------------------------------------------------------- through the policy (SNI)
@LOCK_STATES
def test_policy_path_tunnels_tls_by_allowed_server_name_only(lab, locked):
    """Issue 12, the listener's TLS chain: test-allow -> allowed host over https works and Envoy
    CONNECTs ``<name>:443`` (squid logs it), over plain http ``<ip>:80``. TLS to the allowed address
    with a non-allowed SNI (``curl --resolve``) or with none (an address URL) matches no filter
    chain: Envoy closes it (listener log ``NR``, no upstream) and squid never sees it. Two names
    Envoy's chain accepts are still refused by squid: ``a.b.<domain>`` (Envoy's ``*.`` spans
    labels, Cilium's and squid's one label) and an allowed name that resolves into the VPC (squid
    checks the address too). Where Envoy CONNECTs is ``envoy.tunnel_target`` on the rendered
    listener, checked here against real Envoy and squid."""
    lab.set_lock(locked)
    s = lab.settings
    domain = s.probe_host.split(".", 1)[1]
    internal = netlab.internal_host(s)
    cases = [  # (what, url, --resolve to, expected outcome, tls server name)
        ("allowed, https", s.probe_url, None, policy.ALLOW, s.probe_host),
        ("allowed, http", f"http://{s.probe_host}/", None, policy.ALLOW, None),
        ("non-allowed SNI", "https://exfil.example.net/", ALLOWED_IP, REFUSED, "exfil.example.net"),  # -k below
        ("no SNI", f"https://{ALLOWED_IP}/", None, REFUSED, None),
        ("two labels under the domain", f"https://a.b.{domain}/", ALLOWED_IP, REFUSED, f"a.b.{domain}"),
        ("allowed name in the VPC", f"https://{internal}/", None, REFUSED, internal),
    ]
    squid_at, envoy_at = lab.log_offset(lab.squid_log), lab.log_offset(lab.envoy_listener_log)
    def probe(case):  # a --resolve'd name skips DNS; -k: the origin's certificate does not name it,
        _, url, to, *_ = case  # so only Envoy or squid can stop the connection, not curl
        extra = (*lab.resolve_args(url, to), "-k") if to else ()
        return lab.curl(ALLOW, url, *extra, connect_timeout=5, max_time=6)
    with ThreadPoolExecutor(len(cases)) as pool:
        got = list(pool.map(probe, cases))
    tunnels, closed = {}, []
    for (what, url, to, outcome, sni), (obs, body) in zip(cases, got):
        assert obs.outcome == outcome, (what, obs)
        https = urlsplit(url).scheme == "https"
        dest = f"{to or lab.names.get(url_host(url), url_host(url))}:{443 if https else 80}"
        target = envoy.tunnel_target(LISTENER, tls=https, server_name=sni, original_dst=dest)
        if target is None:
            closed.append((dest, sni))
        else:
            tunnels[target] = (what, outcome)
        if outcome == policy.ALLOW:
            assert _origin_saw(body)["peer"] == PROXY_IP, what
            assert _origin_saw(body).get("sni") == sni, what
    assert tunnels == {f"{s.probe_host}:443": ("allowed, https", policy.ALLOW),
                       f"{ALLOWED_IP}:80": ("allowed, http", policy.ALLOW),
                       f"a.b.{domain}:443": ("two labels under the domain", REFUSED),
                       f"{internal}:443": ("allowed name in the VPC", REFUSED)}
    assert closed == [(f"{ALLOWED_IP}:443", "exfil.example.net"), (f"{ALLOWED_IP}:443", None)]
    # squid saw exactly the tunnels: the allowed ones TCP_TUNNEL/200, the others TCP_DENIED/403
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: set(tunnels) <= {u for *_, u in _squid(ls)})
    verdicts = {u: status for status, m, u in _squid(lines) if m == "CONNECT"}
    assert verdicts == {t: "TCP_TUNNEL/200" if o == policy.ALLOW else "TCP_DENIED/403"
                        for t, (_, o) in tunnels.items()}, lines
    # Envoy closed the others itself: no filter chain (NR), no upstream
    entries = _json(lab.wait_log(lab.envoy_listener_log, envoy_at,
                                 lambda ls: sum(e["flags"] == "NR" for e in _json(ls)) >= len(closed)))
    nr = [(e["downstream_local"], e["requested_server_name"]) for e in entries if e["flags"] == "NR"]
    assert sorted(nr, key=str) == sorted(closed, key=str)
    assert all(e["upstream_host"] is None for e in entries if e["flags"] == "NR")


# ---------------------------------------------------------------------- the platform's guard
def test_the_guard_is_translated_from_the_platforms_policy():
    """The lab's guard is the platform's object, translated: each ``egressDeny`` entry of
    ``scenarios.platform_objects`` (``egress-proxy-guard``: ``endpointSelector: {}``, toCIDR the
    proxy /32, toPorts the proxy port) is a counted drop from every pod's veth, in prerouting (the
    node's own processes send from output: untouched). Nothing is typed twice: another proxy
    address and port give other rules. Shapes the lab cannot play are refused, not half-played."""
    (guard,) = netlab.platform_objects()
    spec = guard["spec"]
    assert guard["kind"] == "CiliumClusterwideNetworkPolicy" and spec["endpointSelector"] == {}
    assert spec["enableDefaultDeny"] == {"egress": False, "ingress": False}
    ruleset, counters = netlab.deny_nft([guard])
    port = lab_context(False).settings.proxy_port
    assert sorted(counters.values()) == [(guard["metadata"]["name"], pod) for pod in sorted(PODS)]
    drops = [ln.strip() for ln in ruleset.splitlines() if ln.strip().endswith("drop") or " drop comment" in ln]
    assert drops == [f'iifname "{netlab.POD_IF[pod]}" ip daddr {{ {PROXY_IP}/32 }} meta l4proto tcp th dport '
                     f'{port} counter name "{c}" drop comment "{guard["metadata"]["name"]} egressDeny[0] from {pod}"'
                     for c, (_, pod) in counters.items()]
    assert "hook prerouting priority mangle" in ruleset  # before the policy stand-in's REDIRECT (dstnat)
    other = Context(load_settings({**netlab.LAB_CONFIG, "proxyPort": "8080"}, resolve_operator_cidr=False),
                    "198.18.1.9")
    moved, _ = netlab.deny_nft(scenarios.platform_objects(other))
    assert "ip daddr { 198.18.1.9/32 } meta l4proto tcp th dport 8080 " in moved and PROXY_IP not in moved
    for bad in ({**spec, "enableDefaultDeny": {"egress": True}}, {**spec, "egress": [{}]},
                {**spec, "egressDeny": [{"toEntities": ["world"]}]},
                {**spec, "endpointSelector": {"matchLabels": {"app": "curl"}}}):
        with pytest.raises(netlab.LabError):
            netlab.deny_nft([{**guard, "spec": bad}])


# ---------------------------------------------------------------------- port 80 by address (the guard)
def _port_80_cases() -> list[tuple[str, str, tuple[str, ...]]]:
    """(what, URL, extra curl args): a public address on port 80 through the proxy - a plain GET and
    a CONNECT (``-p``, a raw TCP tunnel) - to the control host, whose *name* squid refuses."""
    url = f"http://{CONTROL_IP}/"
    return [("GET by address, port 80", url, ()), ("CONNECT by address, port 80", url, ("-p",))]


@LOCK_STATES
def test_no_pod_reaches_a_public_address_on_port_80_through_the_proxy(lab, locked):
    """Formerly a strict xfail (model gap: ``squid_conf`` passes any public address on port 80 -
    it cannot tell Envoy's plain-HTTP chain, ``CONNECT <original ip>:80``, from a pod's own request -
    to every client behind the kind host). The platform's guard closes it for pods: from test-deny
    and test-allow, ``curl -x proxy`` to port 80 of a public address, as a GET and as a CONNECT, is
    dropped at the pod (curl exit 28: drop, what the plan's proxy-direct probe expects; the guard's
    counters show it), in both lock states, and squid's log has no entry for it. The allowed probe
    through the policy (Envoy's tunnel, which leaves from the node) still works with the guard in
    place."""
    lab.set_lock(locked)
    _pods_use_the_proxy(lab, _port_80_cases())
    s = lab.settings
    squid_at = lab.log_offset(lab.squid_log)
    obs, body = lab.curl(ALLOW, s.probe_url)
    assert obs.outcome == policy.ALLOW, obs
    assert _origin_saw(body) == {"local": f"{ALLOWED_IP}:443", "peer": PROXY_IP, "sni": s.probe_host}
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: bool(_squid(ls)))
    assert _squid(lines) == [("TCP_TUNNEL/200", "CONNECT", f"{s.probe_host}:443")]
    assert {_client(ln) for ln in lines} == {NODE_IP}


def test_without_the_guard_a_pod_reaches_port_80_of_any_address_through_the_proxy(lab):
    """The guard test is not vacuous: with the lab's guard table removed (the cluster without the
    ``egress-proxy-guard`` CCNP), locked, test-deny's ``curl -x proxy`` reaches port 80 of the
    control host's address both ways (GET, CONNECT), and squid logs it from the node's address -
    the gap the former xfail recorded."""
    lab.set_lock(True)
    try:
        lab.remove_guard()
        squid_at = lab.log_offset(lab.squid_log)
        for what, url, extra in _port_80_cases():
            obs, body = lab.curl(DENY, url, *_proxy(lab), *extra)
            assert obs.outcome == policy.ALLOW and obs.http_code == "200", (what, obs)
            assert _origin_saw(body) == {"local": f"{CONTROL_IP}:80", "peer": PROXY_IP}, (what, body)
        want = {("GET", f"http://{CONTROL_IP}/"), ("CONNECT", f"{CONTROL_IP}:80")}
        lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: want <= {(m, u) for _, m, u in _squid(ls)})
        assert {(m, u) for status, m, u in _squid(lines) if status.endswith("/200")} == want, lines
    finally:
        lab.apply_guard()


@LOCK_STATES
def test_the_node_still_reaches_a_public_address_on_port_80_through_the_proxy(lab, locked):
    """The trade-off that remains, as the current, documented behaviour (not a gap the lab hides):
    squid trusts the kind host - its only client address, where Envoy's tunnel comes from - and
    passes port 80 by address (``address_target plain_port``: Envoy's plain-HTTP chain CONNECTs
    ``<original ip>:80``), so the host's own processes reach port 80 of any public address through
    the proxy, GET and CONNECT, in both lock states. The host is trusted; pods cannot reach squid at
    all (``test_no_pod_reaches_a_public_address_on_port_80_through_the_proxy``)."""
    lab.set_lock(locked)
    squid_at = lab.log_offset(lab.squid_log)
    for what, url, extra in _port_80_cases():
        obs, body = lab.curl(NODE, url, *_proxy(lab), *extra)
        assert obs.outcome == policy.ALLOW and obs.http_code == "200", (what, obs)
        assert _origin_saw(body) == {"local": f"{CONTROL_IP}:80", "peer": PROXY_IP}, (what, body)
    want = {("GET", f"http://{CONTROL_IP}/"), ("CONNECT", f"{CONTROL_IP}:80")}
    lines = lab.wait_log(lab.squid_log, squid_at, lambda ls: want <= {(m, u) for _, m, u in _squid(ls)})
    assert {(m, u) for status, m, u in _squid(lines) if status.endswith("/200")} == want, lines
    assert {_client(ln) for ln in lines} == {NODE_IP}, lines


# ---------------------------------------------------------------------- the stack's proxy evidence
def test_the_stacks_proxy_evidence_finds_the_tunnel(lab):
    """Formerly a strict xfail (model gap: the stack's proxy evidence looked for ``CONNECT <the address
    curl used>:443`` only, and squid logs ``CONNECT <SNI name>:443`` for the listener's TLS chain). Now, end to end with the stack's own pieces: the plan's proxy-log probe
    (test-allow -> probeUrl) run by the stack's probe command (``remote.probe_command`` around
    ``remote.exec_curl``'s pod curl) in test-allow; ``probes.evidence_targets`` of its output
    (``<SNI name>:443`` and ``<remote ip>:443``); the stack's ``remote.proxy_log_command`` on squid's
    real access log; ``probes.judge_proxy``: ok. The old evidence alone (``<remote ip>:443``) is
    looked up the same way in the same log and not found - what the xfail recorded."""
    s = lab.settings
    plan = probes.plan(SCENARIO, lab_context(bool(lab.locked)))
    (p,) = [p for p in plan.probes if p.check == PROXY_LOG]
    assert p.probe.url == s.probe_url and p.verdict.listener, p
    stdout = lab.stack_probe(p, "--cacert", str(lab.ca_file))  # the lab origin's own certificate
    obs = probes.parse(stdout)
    assert obs.outcome == p.expected == policy.ALLOW and obs.remote_ip == ALLOWED_IP, stdout
    port = p.probe.traffic.port
    by_name, by_address = f"{s.probe_host}:{port}", f"{ALLOWED_IP}:{port}"
    assert probes.evidence_targets(p, stdout) == [by_name, by_address]
    evidence = lab.stack_proxy_log(p, stdout)
    verdict = probes.judge_proxy(p, evidence)
    assert verdict["ok"], verdict["message"]
    # only what squid logged after the probe began counts (squid's own timestamps): the same entry
    # is no evidence for a probe that began a minute later
    later = json.dumps({**json.loads(stdout.strip().splitlines()[-1]), "started_at": obs.started_at + 60})
    assert obs.started_at > 0 and not probes.judge_proxy(p, lab.stack_proxy_log(p, later, window_s=1))["ok"]
    connects = json.loads(evidence)["connects"]
    assert by_name in connects and by_address not in connects, connects  # what squid really logs
    # the old behaviour: only <remote ip>:<port> (probes.connect_target alone) - not in the log
    assert probes.connect_target(stdout, port) == by_address
    old = probes.judge_proxy(p, lab.stack_proxy_log(p, stdout, window_s=1, targets=[by_address]))
    assert not old["ok"] and "logged no CONNECT" in old["message"], old
