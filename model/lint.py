"""Semantic checks on Cilium objects that the CRD schema cannot make but the agent enforces (or
silently misbehaves on). Run by the render CLI before printing and by the tests.

Sources: cilium/cilium v1.18.10 pkg/policy/api/rule_validation.go and DESIGN.md §5a.
"""
from __future__ import annotations

from typing import Iterable

from cilium_verdicts.envoy import LISTENER_TYPE
from scenarios.cilium import CLUSTER_TYPE, SECRETS_NAMESPACE

_L3 = ("toEndpoints", "toCIDR", "toCIDRSet", "toEntities", "toFQDNs", "toServices", "toGroups",
       "toRequires", "toNodes")
_ENVOY_KINDS = ("CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig")


def sds_references(node) -> list[tuple[str, str]]:
    """``(kind, name)`` of every SDS secret reference in ``node``: kind ``certificate`` (a
    ``tls_certificate_sds_secret_configs`` entry) or ``validation`` (a
    ``validation_context_sds_secret_config``), wherever they sit (also inside a
    ``combined_validation_context``)."""
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "tls_certificate_sds_secret_configs" and isinstance(value, list):
                out += [("certificate", v.get("name", "")) for v in value]
            elif key == "validation_context_sds_secret_config" and isinstance(value, dict):
                out.append(("validation", value.get("name", "")))
            else:
                out += sds_references(value)
    elif isinstance(node, list):
        for item in node:
            out += sds_references(item)
    return out


def check_envoy_config(cec: dict) -> list[str]:
    name = f"{cec['kind']}/{cec['metadata']['name']}"
    errs = []
    resources = cec["spec"]["resources"]
    clusters = {r["name"] for r in resources if r["@type"] == CLUSTER_TYPE}
    for r in resources:
        if r["@type"] == LISTENER_TYPE:
            if "address" in r:
                errs.append(f"{name}: listener {r['name']} sets an address; leave it to Cilium")
            for chain in r.get("filter_chains", []):
                for f in chain.get("filters", []):
                    target = f.get("typed_config", {}).get("cluster")
                    if target is not None and target not in clusters:
                        errs.append(f"{name}: listener {r['name']} routes to unknown cluster {target}")
    for _, sds in sds_references(resources):
        if not sds.startswith(f"{SECRETS_NAMESPACE}/"):
            errs.append(f"{name}: SDS secret {sds!r} must be '{SECRETS_NAMESPACE}/<secret>' "
                        "(Envoy reads only Cilium's secrets namespace)")
    return errs


def check_network_policy(cnp: dict, envoy_configs: Iterable[dict]) -> list[str]:
    name = f"{cnp['kind']}/{cnp['metadata'].get('namespace', '')}/{cnp['metadata']['name']}"
    configs = list(envoy_configs)
    errs = []
    for i, rule in enumerate(cnp["spec"].get("egress", [])):
        l3 = [k for k in _L3 if k in rule]
        if len(l3) > 1:
            errs.append(f"{name}: egress[{i}] combines {l3}; put each selector in its own rule")
        for pr in rule.get("toPorts", []):
            listener = pr.get("listener")
            if listener is None:
                continue
            if pr.get("rules"):
                errs.append(f"{name}: egress[{i}] has a listener and L7 rules in one port rule")
            ref = listener["envoyConfig"]
            kind = ref.get("kind", "CiliumEnvoyConfig")
            if "kind" not in ref:
                errs.append(f"{name}: egress[{i}] listener does not name its envoyConfig kind")
            target = [c for c in configs if c["kind"] == kind and c["metadata"]["name"] == ref["name"]
                      and (kind != "CiliumEnvoyConfig"
                           or c["metadata"].get("namespace") == cnp["metadata"].get("namespace"))]
            if not target:
                errs.append(f"{name}: egress[{i}] listener refers to missing {kind} {ref['name']}")
                continue
            names = {r["name"] for r in target[0]["spec"]["resources"] if r["@type"] == LISTENER_TYPE}
            if listener["name"] not in names:
                errs.append(f"{name}: egress[{i}] listener {listener['name']!r} not in {ref['name']} {sorted(names)}")
    fqdn_rules = [r for r in cnp["spec"].get("egress", []) if "toFQDNs" in r]
    dns_rules = [r for r in cnp["spec"].get("egress", [])
                 for pr in r.get("toPorts", []) if (pr.get("rules") or {}).get("dns")]
    if fqdn_rules and not dns_rules:
        errs.append(f"{name}: toFQDNs without a DNS rule: Cilium never learns the IPs")
    return errs


def check(objects: Iterable[dict]) -> list[str]:
    objects = list(objects)
    envoy = [o for o in objects if o.get("kind") in _ENVOY_KINDS]
    errs = [e for c in envoy for e in check_envoy_config(c)]
    for o in objects:
        if o.get("kind") in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
            errs += check_network_policy(o, envoy)
    return errs
