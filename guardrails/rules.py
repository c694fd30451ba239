"""The guardrails' logic: what is a violation. Pure (no Pulumi, no pulumi-policy import).

Every check takes plain data - a ``Resource`` (type token, name, props with the provider's camelCase
input names, URN) or the list of them - and a ``Context`` (the policy's own config, the stack's
config, the environment), and returns one message per violation, each naming the resource. The
pack (guardrails/pack.py) wraps each ``Rule`` into a pulumi-policy policy; the tests call the very same
functions through that wrapper.

``props`` may be the policy SDK's read-only proxies (Mappings and Sequences that raise on a value
unknown during preview), so the checks use only the Mapping/Sequence protocols.
"""
from __future__ import annotations

import ipaddress
from typing import Sequence

from model import cost
from model.network import IMDS_HOP_LIMIT
from model.settings import PROJECT, SettingsError, parse_key, shown

from . import shapes
from .resources import (  # noqa: F401 - the model of what the checks see; tests read it through rules
    ADMIN_PORTS,
    ADVISORY,
    COMMAND_FIELDS,
    COMMANDS,
    COPY_SOURCE,
    DEFAULT_SG,
    EIP,
    FLOW_LOG,
    INSTANCE,
    KEY_COPY_FILES,
    KEY_MATERIAL,
    LAUNCH_TEMPLATE,
    LOG_GROUP,
    MANDATORY,
    MIN_INGRESS_PREFIX,
    REQUIRED_TAGS,
    SECRET_OUTPUTS,
    SG,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE,
    STACK_TYPE,
    TAGGED_TYPES,
    VOLUME,
    VPC,
    Context,
    Resource,
    Rule,
    _network,
    _stack_value,
    egresses,
    has_key_material,
    ingresses,
)
from .shapes import (
    Permission as Ingress,  # noqa: F401 - the name the tests and older callers use
)
from .shapes import _map, _num, _seq


# ---------------------------------------------------------------- mandatory: resource rules
def hop_limit(ctx: Context) -> int:
    value = ctx.policy_config.get("hopLimit", IMDS_HOP_LIMIT)
    return int(value) if _num(value) is not None and value >= 1 else IMDS_HOP_LIMIT


def check_imdsv2(r: Resource, ctx: Context) -> list[str]:
    """Every type that launches or templates an instance (guardrails/shapes.py LAUNCHERS)."""
    spec = shapes.launch(r.type, r.props)
    if spec is None:
        return []
    options, where = spec.metadata, spec.metadata_where
    if options.get("httpEndpoint") == "disabled":
        return []  # no instance metadata service at all
    out = []
    tokens = options.get("httpTokens")
    if tokens != "required":
        out.append(f"{r.name}: {where}.httpTokens is {tokens!r}: IMDSv1 answers without a token "
                   "(SSRF steals the instance role's credentials); set httpTokens: required")
    hops, limit = _num(options.get("httpPutResponseHopLimit")), hop_limit(ctx)
    if hops is None or hops > limit:
        shown = "not set (the image's default applies)" if hops is None else f"{hops:g}"
        out.append(f"{r.name}: {where}.httpPutResponseHopLimit is {shown}; at most {limit}, so a "
                   "container on the host cannot get an IMDSv2 token")
    return out


def check_encrypted_volumes(r: Resource, ctx: Context) -> list[str]:
    if r.type == VOLUME:
        return [] if r.props.get("encrypted") is True else [
            f"{r.name}: EBS volume with encrypted {r.props.get('encrypted')!r}; set encrypted: true"]
    spec = shapes.launch(r.type, r.props)
    if spec is None:
        return []
    out = []
    if spec.no_root:
        out.append(f"{r.name}: {spec.no_root}: the root volume is encrypted only if the account's default "
                   "says so; declare it with encrypted: true")
    for where, value in spec.volumes:
        if not shapes.is_true(value):
            out.append(f"{r.name}: {where} is {value!r}; set encrypted: true")
    return out


def _allowed_sources(ctx: Context) -> set[str]:
    return {str(s) for s in _seq(ctx.policy_config.get("allowedSources"))}


def check_no_world_ingress(r: Resource, ctx: Context) -> list[str]:
    """No ingress wider than the operator limit (/16; an IPv6 /48), and no prefix-list or other-group
    source unless the policy config allow-lists it - on any port."""
    out = []
    allowed = _allowed_sources(ctx)
    for ing in ingresses(r):
        for cidr in ing.cidrs:
            net = _network(cidr)
            if net is None:
                out.append(f"{r.name}: ingress from {cidr!r}, which is not a CIDR; allow named sources only")
            elif net.prefixlen == 0:
                out.append(f"{r.name}: ingress from {cidr} (every address on the internet); allow named "
                           "sources only (operatorCidr, a host /32)")
            elif net.prefixlen < MIN_INGRESS_PREFIX[net.version]:
                out.append(f"{r.name}: ingress from {cidr} ({net.num_addresses:,} addresses), wider than "
                           f"/{MIN_INGRESS_PREFIX[net.version]}; allow named sources only (operatorCidr, a host /32)")
        for other in ing.others:
            if other.split(" ", 1)[-1] not in allowed:
                out.append(f"{r.name}: ingress from {other} (every address it stands for, now or later); "
                           "allow-list it in the policy config (allowedSources) or name the hosts' CIDRs")
    return out


def operator_cidr(ctx: Context) -> tuple[str | None, str]:
    """The operator's CIDR and where it came from. With the stack's ``auto`` the pack looks the
    address up the way the program does (``Context.operator_lookup``, model/operator_ip.py; the pack
    caches it for its process); None when it cannot."""
    if ctx.policy_config.get("operatorCidr"):
        return str(ctx.policy_config["operatorCidr"]), "policy config operatorCidr"
    value = _stack_value(ctx, "operatorCidr")
    if value and value != "auto":
        return str(value), f"stack config {PROJECT}:operatorCidr"
    source = f"stack config {PROJECT}:operatorCidr is auto"
    if ctx.operator_lookup is None:
        return None, f"{source} and the pack has no way to look the address up"
    try:
        found = f"{ipaddress.IPv4Address(str(ctx.operator_lookup()).strip())}/32"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never a crash
        return None, f"{source} and looking up your public IPv4 failed ({shown(str(exc))})"
    return found, f"{source}: your public IPv4, looked up as the program does"


def check_admin_ports(r: Resource, ctx: Context) -> list[str]:
    admin = [(ing, [p for p in ADMIN_PORTS if ing.covers(p)]) for ing in ingresses(r)]
    admin = [(ing, ports) for ing, ports in admin if ports]
    if not admin:
        return []
    expected, source = operator_cidr(ctx)
    want = _network(expected) if expected else None
    if expected and want is None:
        return [f"{r.name}: cannot check SSH/Kubernetes API ingress: {source} {expected!r} is not a CIDR"]
    if want is None:
        return [f"{r.name}: cannot check SSH/Kubernetes API ingress: {source}; set operatorCidr in the "
                "policy config (admin-ports-operator-only) or the stack"]
    out = []
    for ing, ports in admin:
        what = "/".join(str(p) for p in ports)
        for other in ing.others:
            out.append(f"{r.name}: port {what} (SSH/Kubernetes API) open to {other}; only the operator CIDR may "
                       "reach it")
        if ing.self_ref:
            out.append(f"{r.name}: port {what} (SSH/Kubernetes API) open to the group itself; only the "
                       "operator CIDR may reach it")
        for cidr in ing.cidrs:
            if _network(cidr) != want:
                out.append(f"{r.name}: port {what} (SSH/Kubernetes API) open to {cidr}; only the operator CIDR "
                           f"{expected} ({source}) may reach it")
    return out


def _copy_may_carry_a_key(r: Resource) -> bool:
    path = r.props.get("remotePath")
    return r.type == "command:remote:CopyToRemote" and isinstance(path, str) and \
        path.rsplit("/", 1)[-1] in KEY_COPY_FILES


def check_command_secrets(r: Resource, ctx: Context) -> list[str]:
    if r.type not in COMMANDS:
        return []
    out = []
    for name in COMMAND_FIELDS:
        if name in r.props:
            found = has_key_material(r.props[name])
            if found:
                out.append(f"{r.name}: {name} holds a private key in plain text ({found!r}…): the state and "
                           "every diff show it; put a digest in triggers and keys in connection.privateKey "
                           "or a secret file")
    if COPY_SOURCE in r.props and not _copy_may_carry_a_key(r):
        found = has_key_material(r.props[COPY_SOURCE])
        if found:
            out.append(f"{r.name}: the file it copies (source) holds a private key ({found!r}…); only "
                       f"{', '.join(KEY_COPY_FILES)} may, passed as a Pulumi secret")
    return out


# ---------------------------------------------------------------- mandatory: stack rules
def check_secret_outputs(resources: Sequence[Resource], ctx: Context) -> list[tuple[str, str]]:
    out = []
    for r in resources:
        if r.type != STACK_TYPE:
            continue
        for name in r.props:
            found = has_key_material(r.props[name])
            if found and name not in SECRET_OUTPUTS:
                out.append((r.urn, f"stack output {name!r} contains private key material ({found!r}…); only "
                                    f"{', '.join(SECRET_OUTPUTS)} may, exported as Pulumi secrets"))
    return out


def _kind_groups(resources: Sequence[Resource], ctx: Context) -> tuple[str, set[str]]:
    """The kind host's name prefix and the URNs of its security groups: the groups the kind host's
    launcher depends on, and groups named after it (stacks/lab.py: ``kind-<envName>-...``)."""
    env = parse_key("envName", _stack_value(ctx, "envName"))
    prefix = f"kind-{env}-"
    by_urn = {r.urn: r for r in resources}
    hosts = [r for r in resources if r.type in shapes.LAUNCHERS and r.name.startswith(prefix)]
    groups = {d for h in hosts for d in h.deps if d in by_urn and by_urn[d].type in shapes.GROUP_TYPES}
    groups |= {r.urn for r in resources if r.type in shapes.GROUP_TYPES and r.name.startswith(prefix)}
    return prefix, groups


def check_locked_egress(resources: Sequence[Resource], ctx: Context) -> list[tuple[str, str]]:
    """With ``restrictEgress`` on, the kind host's security groups allow egress to one address, the
    proxy's /32 (the Elastic IP the rule depends on, when its address is known), and nothing else."""
    try:
        if parse_key("restrictEgress", _stack_value(ctx, "restrictEgress")) is not True:
            return []
        prefix, groups = _kind_groups(resources, ctx)
    except SettingsError as exc:
        return [("", f"cannot check the locked egress: {'; '.join(exc.errors)}")]
    if not groups:
        return [("", f"restrictEgress is on, and no security group of the kind host ({prefix}…) is in the stack")]
    by_urn = {r.urn: r for r in resources}
    out: list[tuple[str, str]] = []
    single: list[tuple[str, Resource]] = []  # (address, rule resource) of every /32 allowed
    for r in resources:
        if r.urn in groups:
            perms = egresses(r)
        elif r.type in (SG_EGRESS, SG_RULE, shapes.NATIVE_SG_EGRESS) and groups & set(r.deps):
            perms = egresses(r)
        else:
            continue
        proxy_ips = {str(by_urn[d].props.get("publicIp")) for d in r.deps
                     if d in by_urn and by_urn[d].type == EIP and isinstance(by_urn[d].props.get("publicIp"), str)}
        for perm in perms:
            for other in perm.others:
                out.append((r.urn, f"{r.name}: egress locked (restrictEgress), yet it allows {other}; only the "
                                   "proxy's /32 may be reached"))
            if perm.self_ref:
                out.append((r.urn, f"{r.name}: egress locked (restrictEgress), yet it allows the group itself; "
                                   "only the proxy's /32 may be reached"))
            for cidr in perm.cidrs:
                net = _network(cidr)
                if net is None or net.version != 4 or net.prefixlen != 32:
                    out.append((r.urn, f"{r.name}: egress locked (restrictEgress), yet it allows {cidr}, wider "
                                       "than the proxy's /32"))
                elif proxy_ips and str(net.network_address) not in proxy_ips:
                    out.append((r.urn, f"{r.name}: egress locked (restrictEgress) to {cidr}, which is not the "
                                       f"proxy's address {', '.join(sorted(proxy_ips))}"))
                else:
                    single.append((str(net.network_address), r))
    if single:
        first, owner = single[0]
        for address, r in single[1:]:
            if address != first:
                out.append((r.urn, f"{r.name}: egress locked (restrictEgress), yet it allows {address}/32 besides "
                                   f"{first}/32 ({owner.name}): the proxy is one address"))
    return out


def ceiling(ctx: Context) -> tuple[float, str]:
    """The monthly ceiling and its origin. The pack's ceiling (its policy config, a platform team
    pins it; else the project default) caps the stack's own maxMonthlyCostUsd: a stack may lower
    it, never raise it. A bad value raises SettingsError."""
    if "maxMonthlyCostUsd" in ctx.policy_config:
        value = _num(ctx.policy_config["maxMonthlyCostUsd"])
        if value is None or value <= 0:
            raise SettingsError([f"policy config cost-ceiling.maxMonthlyCostUsd: "
                                 f"{ctx.policy_config['maxMonthlyCostUsd']!r} is not a positive number"])
        pack, pack_from = value, "policy config maxMonthlyCostUsd"
    else:
        pack, pack_from = float(parse_key("maxMonthlyCostUsd", None)), "the project default maxMonthlyCostUsd"
    stack_value = _stack_value(ctx, "maxMonthlyCostUsd")
    if stack_value is None:
        return pack, pack_from
    own = float(parse_key("maxMonthlyCostUsd", stack_value))
    if own <= pack:
        return own, f"stack config {PROJECT}:maxMonthlyCostUsd"
    return pack, f"{pack_from}; the stack's own {PROJECT}:maxMonthlyCostUsd {own:g} is capped by it"


def region(ctx: Context) -> tuple[str | None, str]:
    for value, origin in ((ctx.policy_config.get("region"), "policy config region"),
                          (ctx.stack_config.get("aws:region"), "stack config aws:region"),
                          (ctx.env.get("AWS_REGION"), "AWS_REGION"),
                          (ctx.env.get("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION")):
        if value:
            return str(value), origin
    return None, "none"


def check_cost_ceiling(resources: Sequence[Resource], ctx: Context) -> list[tuple[str, str]]:
    items, unpriced = cost.billables_from_resources(
        {"type": r.type, "name": r.name, "props": r.props, "urn": r.urn} for r in resources)
    try:
        limit, limit_from = ceiling(ctx)
    except SettingsError as exc:
        return [("", f"cannot check the cost ceiling: {'; '.join(exc.errors)}")]
    where, where_from = region(ctx)
    if where is None:
        return [("", "cannot price the stack: no region (set aws:region, or region in the cost-ceiling "
                     "policy config)")]
    try:
        est = cost.price(items, where, limit)
    except cost.CostError as exc:
        return [("", f"{'; '.join(exc.errors)} ({where_from})")]
    out = [("", f"{p}: the cost ceiling cannot be checked") for p in [*unpriced, *est.problems]]
    if not out and round(est.monthly, 2) > limit:
        hours = cost.hours_per_month()
        per_resource: dict[str, float] = {}
        for ln in est.lines:
            per_resource[ln.urn] = per_resource.get(ln.urn, 0) + ln.hourly
        worst = max(per_resource, key=per_resource.__getitem__)  # the resource costing most
        detail = ", ".join(f"{ln.resource} {ln.item} ${ln.monthly:.2f}" for ln in est.lines)
        out.append((worst, f"estimated ${est.monthly:.2f}/month (${est.hourly:.4f}/h, {where}, on-demand) "
                               f"exceeds the ceiling ${limit:g}/month (${limit / hours:.4f}/h, {limit_from}): "
                               f"{detail}"))
    return out


# ---------------------------------------------------------------- advisory
def check_tags(r: Resource, ctx: Context) -> list[str]:
    if r.type not in TAGGED_TYPES:
        return []
    tags = _map(r.props.get("tags"))
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    return [f"{r.name}: no {' / '.join(missing)} tag: its cost cannot be attributed to the lab"] if missing else []


def check_log_retention(r: Resource, ctx: Context) -> list[str]:
    if r.type != LOG_GROUP:
        return []
    days = _num(r.props.get("retentionInDays"))
    return [] if days and days > 0 else [
        f"{r.name}: retentionInDays is not set: the log group keeps (and bills) its logs forever"]


def check_delete_on_termination(r: Resource, ctx: Context) -> list[str]:
    if r.type != INSTANCE:
        return []
    devices = [("rootBlockDevice", _map(r.props.get("rootBlockDevice")))]
    devices += [(f"ebsBlockDevices[{i}]", _map(d)) for i, d in enumerate(_seq(r.props.get("ebsBlockDevices")))]
    return [f"{r.name}: {where}.deleteOnTermination is false: the volume outlives the instance and keeps costing"
            for where, d in devices if d.get("deleteOnTermination") is False]


def _covering(resources: Sequence[Resource], typ: str, vpc: Resource) -> list[Resource]:
    return [r for r in resources if r.type == typ and vpc.urn in r.deps]


def check_flow_logs(resources: Sequence[Resource], ctx: Context) -> list[tuple[str, str]]:
    return [(v.urn, f"{v.name}: no VPC flow log (AWS FSBP EC2.6): rejected traffic leaves no trace "
                    "(flowLogs: true)")
            for v in resources if v.type == VPC and not _covering(resources, FLOW_LOG, v)]


def check_default_sg(resources: Sequence[Resource], ctx: Context) -> list[tuple[str, str]]:
    out = []
    for v in (r for r in resources if r.type == VPC):
        groups = _covering(resources, DEFAULT_SG, v)
        if not groups:
            out.append((v.urn, f"{v.name}: its default security group is not managed (AWS FSBP EC2.2): it "
                                "keeps AWS's allow-within-group rules"))
        for g in groups:
            if _seq(g.props.get("ingress")) or _seq(g.props.get("egress")):
                out.append((g.urn, f"{g.name}: the default security group has rules (AWS FSBP EC2.2): "
                                    "leave it without any"))
    return out


RULES: tuple[Rule, ...] = (
    Rule("imdsv2-required", MANDATORY, "resource",
         "Every instance and instance template requires IMDSv2 tokens with a PUT hop limit of at most the "
         "chosen one (1).",
         check_imdsv2, {"hopLimit": {"type": "integer", "minimum": 1, "maximum": 64}}),
    Rule("encrypted-volumes", MANDATORY, "resource",
         "EBS volumes, root and attached, of every instance and instance template are encrypted.",
         check_encrypted_volumes),
    Rule("no-world-ingress", MANDATORY, "resource",
         "No security-group ingress wider than /16 (IPv6 /48), nor from prefix lists or other groups unless "
         "allow-listed, on any port.",
         check_no_world_ingress, {"allowedSources": {"type": "array", "items": {"type": "string"}}}),
    Rule("admin-ports-operator-only", MANDATORY, "resource",
         "SSH (22) and the Kubernetes API (6443) are reachable from exactly the operator CIDR (also with "
         "operatorCidr auto).",
         check_admin_ports, {"operatorCidr": {"type": "string"}}),
    Rule("locked-egress", MANDATORY, "stack",
         "With restrictEgress on, the kind host's security groups allow egress to the proxy's /32 only.",
         check_locked_egress),
    Rule("no-key-material-in-commands", MANDATORY, "resource",
         "No command's triggers, scripts, environment or copied file holds a private key in plain text.",
         check_command_secrets),
    Rule("secret-outputs", MANDATORY, "stack",
         "No stack output carries a private key except the lab's secret outputs.", check_secret_outputs),
    Rule("cost-ceiling", MANDATORY, "stack",
         "The stack's on-demand cost (model/prices.json; an unknown type fails closed) stays within "
         "maxMonthlyCostUsd, capped by the pack's ceiling.",
         check_cost_ceiling, {"maxMonthlyCostUsd": {"type": "number", "exclusiveMinimum": 0},
                              "region": {"type": "string"}}),
    Rule("required-tags", ADVISORY, "resource",
         "Taggable AWS resources carry the project and env tags.", check_tags),
    Rule("log-retention", ADVISORY, "resource",
         "CloudWatch log groups expire their logs.", check_log_retention),
    Rule("volumes-deleted-with-instance", ADVISORY, "resource",
         "Instance volumes are deleted with the instance.", check_delete_on_termination),
    Rule("vpc-flow-logs", ADVISORY, "stack", "Every VPC has flow logs (AWS FSBP EC2.6).", check_flow_logs),
    Rule("default-sg-no-rules", ADVISORY, "stack",
         "Every VPC's default security group is managed and has no rules (AWS FSBP EC2.2).", check_default_sg),
)
RULES_BY_NAME = {r.name: r for r in RULES}
