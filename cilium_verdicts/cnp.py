"""CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (cilium.io/v2) semantics, Cilium 1.18.

Sources: docs.cilium.io "Layer 3/4/7 Examples", "Policy Enforcement Modes", "Deny Policies",
"Using Kubernetes Constructs in Policy"; cilium/cilium pkg/policy/api/rule_validation.go (Validate,
Sanitize: default deny), pkg/k8s/apis/cilium.io/utils/utils.go (namespace scoping of selectors).
"""
from __future__ import annotations

import ipaddress

from .l7 import UnsupportedHTTP, parse_http
from .rules import (
    ALL_PROTOCOLS,
    CIDRGroupPeer,
    CIDRPeer,
    Direction,
    EndpointPeer,
    EntityPeer,
    FQDNPeer,
    HTTPRule,
    Policy,
    PortRule,
    PortSpec,
    Rule,
)
from .selectors import NAMESPACE_KEY, parse_selector, unsupported_keys

SPEC_KEYS = {"endpointSelector", "nodeSelector", "ingress", "ingressDeny", "egress", "egressDeny",
             "enableDefaultDeny", "labels", "description"}
L3 = {"ingress": ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet"),
      "egress": ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toFQDNs")}
ENTITIES = {"all", "world", "cluster", "host", "remote-node", "kube-apiserver", "ingress", "init",
            "health", "unmanaged", "none"}
PROTOCOLS = {"TCP", "UDP", "SCTP", "ANY"}


class Rejected(ValueError):
    """Cilium's agent refuses the whole policy (pkg/policy/api/rule_validation.go)."""


class Unsupported(ValueError):
    """A field this model does not evaluate: the rule carrying it is ignored."""


def parse_cilium_policy(obj: dict, ref: str, namespace: str | None) -> tuple[list[Policy], list[str]]:
    """One Policy per rule set (``spec`` and each ``specs[i]``), plus warnings. ``namespace`` is None
    for a CCNP. A policy Cilium rejects yields no Policy and one warning."""
    specs = ([("spec", obj["spec"])] if obj.get("spec") else []) + \
        [(f"specs[{i}]", s) for i, s in enumerate(obj.get("specs") or [])]
    if not specs:
        return [], [f"{ref}: no spec or specs: rejected by Cilium, no effect"]
    policies, warnings = [], []
    for where, spec in specs:
        name = ref if len(specs) == 1 else f"{ref} {where}"
        try:
            policy = _policy(name, spec, namespace, warnings)
        except Rejected as exc:
            # cnp_types.go Parse: the first spec that fails Sanitize fails the whole object ("Invalid
            # CiliumNetworkPolicy specs"), so none of its rule sets is in force.
            return [], [w for w in warnings if not w.startswith(ref)] + [
                f"{name}: {exc}: rejected by Cilium, the whole {ref.split()[0]} is not in force"]
        except Unsupported as exc:
            warnings.append(f"{name}: {exc} is not supported: rule set ignored")
            continue
        if policy is not None:
            policies.append(policy)
    return policies, warnings


def _policy(ref: str, spec: dict, namespace: str | None, warnings: list[str]) -> Policy | None:
    warnings += [f"{ref}: {key} is not supported: ignored" for key in sorted(set(spec) - SPEC_KEYS)]
    if "nodeSelector" in spec:
        warnings.append(f"{ref}: nodeSelector (host policy) is not supported: rule set ignored")
        return None
    if "endpointSelector" not in spec:
        raise Rejected("rule must have one of endpointSelector or nodeSelector")
    sections = {k: spec.get(k) or [] for k in ("ingress", "ingressDeny", "egress", "egressDeny")}
    if not any(sections.values()):
        raise Rejected("rule must have at least one of ingress, ingressDeny, egress, egressDeny")
    # endpointSelector always applies in the CNP's own namespace (utils.go ParseToCiliumRule)
    subject_sel = _selector(spec["endpointSelector"], "endpointSelector")
    if namespace is not None:
        subject_sel = subject_sel.without(NAMESPACE_KEY)
    subject = EndpointPeer("", subject_sel, scope=namespace, cilium=True)
    enable = spec.get("enableDefaultDeny") or {}
    directions = {}
    for d in ("ingress", "egress"):
        ignored: list[tuple[str, bool]] = []
        allows = _rules(ref, d, sections[d], namespace, False, warnings, ignored)
        denies = _rules(ref, d, sections[f"{d}Deny"], namespace, True, warnings, ignored)
        # Default deny in a direction: enableDefaultDeny.<d> if set, else true when the policy has
        # allow or deny rules in it (rule_validation.go Sanitize; docs "Policy Enforcement Modes").
        isolates = enable.get(d)
        if isolates is None:
            isolates = bool(sections[d] or sections[f"{d}Deny"])
        directions[d] = Direction(bool(isolates), allows, denies, ignored)
    return Policy(ref, subject, directions["egress"], directions["ingress"])


def _rules(ref: str, direction: str, raws: list, namespace: str | None, deny: bool, warnings: list[str],
           ignored: list[tuple[str, bool]]) -> list[Rule]:
    """A rule with a field this model does not evaluate is left out (only that rule) and recorded in
    ``ignored``: the verdicts it might change are marked approximate."""
    section = f"{direction}Deny" if deny else direction
    out = []
    for i, raw in enumerate(raws):
        where = f"{section}[{i}]"
        try:
            rule = _rule(where, direction, raw or {}, namespace, deny)
        except Unsupported as exc:
            warnings.append(f"{ref}: {where}.{exc} is not supported: rule ignored")
            ignored.append((f"{where}.{exc}", deny))
            continue
        out.append(rule)
        warnings += [f"{ref}: {where}.{pr.where}.{field} is not supported: that HTTP rule is left out"
                     for pr in rule.ports or () for field in pr.left_out]
    return out


def _rule(where: str, direction: str, raw: dict, namespace: str | None, deny: bool) -> Rule:
    members = [k for k in L3[direction] if raw.get(k)]
    empty = [k for k in L3[direction] if k.endswith("Endpoints") and raw.get(k) == []]
    if len(members) > 1:
        raise Rejected(f"{where}: combining {members[0]} and {members[1]} is not supported yet")
    unknown = sorted(set(raw) - set(L3[direction]) - {"toPorts"})
    if unknown:  # toServices, toGroups, to/fromRequires, to/fromNodes, icmps, authentication, ...
        raise Unsupported(unknown[0])
    if "toFQDNs" in members and deny:
        raise Unsupported("toFQDNs")  # docs "Deny Policies": toFQDNs is not supported in deny rules
    ports = tuple(_port_rule(f"{where}.toPorts[{j}]", f"toPorts[{j}]", p or {}, direction, namespace, deny)
                  for j, p in enumerate(raw.get("toPorts") or [])) or None
    if not members and empty:
        # An explicit empty ``fromEndpoints: []`` / ``toEndpoints: []`` selects no endpoint, unlike an
        # absent field (cilium#29608: the rule then matches nothing rather than every peer).
        return Rule(where, (), ports)
    if not members:
        # An L4-only rule applies to every peer; an empty rule ``{}`` allows nothing (docs "Layer 4
        # Examples"; "Ingress/Egress Default Deny").
        return Rule(where, None if ports else (), ports)
    key = members[0]
    return Rule(where, tuple(_peers(key, raw[key], namespace)), ports)


def _peers(key: str, values: list, namespace: str | None):
    if key.endswith("Endpoints"):
        for j, raw in enumerate(values):
            yield _endpoints(f"{key}[{j}]", raw, namespace)
    elif key.endswith("Entities"):
        bad = [e for e in values if e not in ENTITIES]
        if bad:
            raise Rejected(f"unsupported entity: {bad[0]}")
        yield EntityPeer(key, tuple(values))
    elif key.endswith("CIDR"):
        yield CIDRPeer(key, tuple((ipaddress.ip_network(c, strict=False), ()) for c in values))
    elif key.endswith("CIDRSet"):
        for j, c in enumerate(values):
            excepts = tuple(ipaddress.ip_network(e, strict=False) for e in c.get("except") or [])
            if "cidr" not in c:  # cidrGroupRef / cidrGroupSelector: resolved against the CiliumCIDRGroups
                yield CIDRGroupPeer(f"{key}[{j}]", (), c.get("cidrGroupRef"),
                                    parse_selector(c["cidrGroupSelector"]) if "cidrGroupSelector" in c else None,
                                    excepts)
                continue
            net = ipaddress.ip_network(c["cidr"], strict=False)
            outside = [str(e) for e in excepts if e.version != net.version or e.network_address not in net]
            if outside:  # rule_validation.go CIDRRule.sanitize
                raise Rejected(f"{key}[{j}]: allow CIDR prefix {c['cidr']} does not contain exclude CIDR prefix "
                               f"{outside[0]}")
            yield CIDRPeer(f"{key}[{j}]", ((net, excepts),))
    else:  # toFQDNs
        yield FQDNPeer(key, tuple(s.get("matchName") or s.get("matchPattern") for s in values))


def _endpoints(where: str, raw: dict, namespace: str | None) -> EndpointPeer:
    """A CNP's from/toEndpoints select only pods of the CNP's namespace unless the selector names
    io.kubernetes.pod.namespace (with k8s:/any: or no prefix); in a CCNP they span all namespaces
    (utils.go getEndpointSelector). ``{}`` = every pod of that scope."""
    sel = _selector(raw, where)
    scoped = namespace if NAMESPACE_KEY not in sel.keys() else None
    return EndpointPeer(where, sel, scope=scoped, cilium=True)


def _selector(raw, where: str):
    sel = parse_selector(raw, cilium=True)
    bad = unsupported_keys(sel)
    if bad:
        raise Unsupported(f"{where} label {bad[0]}")
    return sel


def _port_rule(where: str, short: str, raw: dict, direction: str, namespace: str | None, deny: bool) -> PortRule:
    unknown = sorted(set(raw) - ({"ports"} if deny else {"ports", "rules", "listener"}))
    if unknown:
        raise Unsupported(f"{short}.{unknown[0]}")
    specs = tuple(_port_spec(p) for p in raw.get("ports") or []) or None
    rules, listener = raw.get("rules") or {}, raw.get("listener")
    extra = sorted(set(rules) - {"http", "dns"})
    if extra:
        raise Unsupported(f"{short}.rules.{extra[0]}")
    if rules.get("dns") and direction == "ingress":
        raise Rejected(f"{where}: DNS rules are not allowed on ingress")
    if rules.get("dns") and not specs:
        raise Rejected(f"{where}: port 53 must be specified for DNS rules")
    if listener and (direction == "ingress" or rules):
        raise Rejected(f"{where}: a listener is only allowed on egress and without L7 rules")
    bad = next((s for s in specs or () if s.protocols != {"TCP"}), None)
    if rules.get("http") and bad is not None:  # rule_validation.go PortRule.sanitize
        proto = "ANY" if bad.protocols == ALL_PROTOCOLS else "|".join(sorted(bad.protocols))
        raise Rejected(f"{where}: L7 rules can only apply to TCP (not {proto}) except for DNS rules")
    if rules.get("http") and (not specs or any(s.port is None for s in specs)):
        raise Rejected(f"{where}: L7 rules need explicit TCP ports (L7 rules can not be used when a port is 0)")
    if rules.get("dns") and any(s.end_port and isinstance(s.port, int) and s.end_port > s.port for s in specs):
        raise Rejected(f"{where}: DNS rules do not support port ranges")
    http, left_out = _http(rules.get("http"))
    return PortRule(short, specs, http, _dns(rules.get("dns")), _listener(listener, namespace) if listener else None,
                    left_out)


def _port_spec(raw: dict) -> PortSpec:
    """port: number, IANA name or "0" (= all ports); protocol TCP, UDP, SCTP or ANY (default)."""
    protocol = (raw.get("protocol") or "ANY").upper()
    if protocol not in PROTOCOLS:
        raise Rejected(f"protocol {protocol} is not supported")
    port = str(raw.get("port", "0"))
    value: int | str | None = int(port) if port.isdigit() else port.lower()
    end = raw.get("endPort")
    return PortSpec(value or None, int(end) if end else None, ALL_PROTOCOLS if protocol == "ANY" else frozenset({protocol}))


def _http(raws) -> tuple[tuple[HTTPRule, ...] | None, tuple[str, ...]]:
    """method, path, host, headers and headerMatches (cilium_verdicts/l7.py), and the entries left out
    (the smallest enclosing rule of a field this model cannot evaluate is that HTTP rule)."""
    if not raws:
        return None, ()
    out, left_out = [], []
    for j, raw in enumerate(raws):
        try:
            out.append(parse_http(raw or {}))
        except UnsupportedHTTP as exc:
            left_out.append(f"rules.http[{j}].{exc}")
    return tuple(out), tuple(left_out)


def _dns(raws) -> tuple[str, ...] | None:
    if not raws:
        return None
    return tuple(r.get("matchName") or r.get("matchPattern") or "" for r in raws)


def _listener(raw: dict, namespace: str | None) -> tuple[str, str, str, str]:
    """A CiliumEnvoyConfig reference resolves in the policy's namespace, a cluster-wide one has none."""
    ref = raw.get("envoyConfig") or {}
    kind = ref.get("kind") or "CiliumEnvoyConfig"
    return kind, (namespace or "") if kind == "CiliumEnvoyConfig" else "", ref.get("name", ""), raw.get("name", "")
