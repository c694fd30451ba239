"""Issue 12 ("Locked means locked") on the real data path: real Envoy running the rendered CEC, real
squid from ``model.proxy.squid_conf``, nftables from ``model.security_groups``, the DNS stand-in
from the CNP's DNS rule (topology in netlab.py; fixture in conftest.py).

- DNS: test-allow resolves only what its CNP's DNS rule allows (NXDOMAIN otherwise) and reaches no
  other resolver; test-deny resolves every lab name.
- Side doors: locked, neither a pod without policy nor the node reaches anything outside but the
  proxy - not TCP 53, UDP 53/123 to a host that is no resolver, ICMP, nor a high port; unlocked
  they all work; the *old* locked rules (DNS/NTP to 0.0.0.0/0) are shown to leave them open.

Expected outcomes come from the model where it says them (``security_groups.allows``,
``model.fqdn`` on the CNP's DNS patterns); the issue's words are stated outright as well.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from model import fqdn
from model.matrix import REACHABLE
from model.security_groups import ALL, Rule, allows, kind_egress, to_nft

from . import netlab
from .netlab import (
    ALLOW,
    ALLOWED_IP,
    DENY,
    NODE,
    POD_IP,
    PROXY_IP,
    RESOLVER,
    SIDE_DOOR_IP,
    SIDE_DOOR_TCP,
    SIDE_DOOR_UDP,
    UPLINK,
)

CEC, CNP, REDIRECTS = netlab.lab_model()
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


def _origin_saw(body: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in body.split())


def _proxy(lab) -> tuple[str, str]:
    return ("-x", f"http://{PROXY_IP}:{lab.settings.proxy_port}")


# ---------------------------------------------------------------------- DNS (the CNP's DNS rule)
def test_dns_stand_in_answers_test_allow_only_what_its_dns_rule_allows(lab):
    """The stand-in for Cilium's DNS proxy, fed the CNP's ``rules.dns`` patterns: test-allow gets
    an answer only for a name the rule matches (``model.fqdn``) and NXDOMAIN for anything else -
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
    probes can see an open door). Expectations: ``security_groups.allows`` on the model's rules,
    plus the issue's words stated outright."""
    lab.set_lock(locked)
    rules = kind_egress(lab.settings, proxy_cidr=f"{PROXY_IP}/32")
    reached = _side_door_probes(lab, rules)  # the data path does what the rules say...
    for role, doors in reached.items():      # ...and that is what the issue asks for
        assert {d for d in SIDE_DOORS if doors[d] is locked} == set(), (role, locked, doors)
        assert doors[("icmp", PROXY_IP, 0)], role
    obs, body = lab.curl(DENY, lab.settings.probe_url, *_proxy(lab))
    assert obs.outcome == REACHABLE and _origin_saw(body)["peer"] == PROXY_IP, obs


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
