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
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from model import cost
from model.network import IMDS_HOP_LIMIT, KUBE_API_PORT, SSH_PORT
from model.render import SECRET_MATERIAL_OUTPUT
from model.settings import PROJECT, SettingsError, parse_key

MANDATORY, ADVISORY = "mandatory", "advisory"
STACK_TYPE = "pulumi:pulumi:Stack"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VOLUME = "aws:ebs/volume:Volume"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
COMMANDS = ("command:remote:Command", "command:local:Command", "command:remote:CopyToRemote")
# What a command resource keeps in the state and shows in diffs besides its connection (which
# carries the SSH key and is secret by pulumi-command's schema) and a CopyToRemote's source asset.
COMMAND_FIELDS = ("triggers", "create", "update", "delete", "stdin", "environment", "remotePath")
ADMIN_PORTS = (SSH_PORT, KUBE_API_PORT)
# The outputs that carry key material on purpose; the program exports each as a Pulumi secret
# (tests/unit/test_policy_pack.py proves it under mocks). pulumi-policy hands a policy secret values
# already decrypted (pulumi_policy/policy.py: Analyze/AnalyzeStack deserialize without proxy_secrets),
# so the pack cannot see secretness and holds every other output to "no key material at all".
SECRET_OUTPUTS = ("sshPrivateKey", "kubeconfig", SECRET_MATERIAL_OUTPUT)
REQUIRED_TAGS = ("project", "env")  # stacks/lab.py tags every taggable resource with these
TAGGED_TYPES = (INSTANCE, VOLUME, VPC, SG, DEFAULT_SG, LOG_GROUP, FLOW_LOG, "aws:ec2/eip:Eip",
                "aws:ec2/subnet:Subnet", "aws:ec2/internetGateway:InternetGateway",
                "aws:ec2/routeTable:RouteTable", "aws:ec2/keyPair:KeyPair", "aws:iam/role:Role")
KEY_MATERIAL = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----|PuTTY-User-Key-File-\d|"
                          r"client-key-data:\s*[A-Za-z0-9+/=]{8,}")


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    deps: tuple[str, ...] = ()   # URNs this resource depends on (stack rules only)


@dataclass(frozen=True)
class Context:
    policy_config: Mapping[str, Any] = field(default_factory=dict)  # --policy-pack-config, this policy's
    stack_config: Mapping[str, Any] = field(default_factory=dict)   # "project:key" -> value, as the engine passes it
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    name: str
    level: str                   # MANDATORY | ADVISORY
    scope: str                   # "resource" | "stack"
    description: str
    check: Callable[..., list]   # resource: (Resource, Context) -> [msg]; stack: (list, Context) -> [(urn, msg)]
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # JSON schema of its policy config


# ---------------------------------------------------------------- helpers
def _seq(value: Any) -> list:
    return cost._seq(value)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


def _strings(value: Any) -> Iterable[str]:
    """Every string inside a value (nested lists and maps)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k in value:
            yield from _strings(value[k])
    else:
        for item in _seq(value):
            yield from _strings(item)


def has_key_material(value: Any) -> str | None:
    """The first private-key marker in ``value`` (a PEM header, a PuTTY key, kubeconfig client-key-data)."""
    for text in _strings(value):
        m = KEY_MATERIAL.search(text)
        if m:
            return m.group(0)[:40]
    return None


def _stack_value(ctx: Context, key: str) -> Any:
    return ctx.stack_config.get(f"{PROJECT}:{key}")


@dataclass(frozen=True)
class Ingress:
    """One ingress permission, whatever resource shape declared it."""
    protocol: str
    from_port: float | None
    to_port: float | None
    cidrs: tuple[str, ...]         # IPv4 and IPv6 CIDRs
    others: tuple[str, ...]        # non-CIDR sources: security groups, prefix lists, self

    def covers(self, port: int) -> bool:
        if str(self.protocol).lower() in ("-1", "all"):
            return True
        if str(self.protocol).lower() not in ("tcp", "6"):
            return False
        lo = self.from_port if self.from_port is not None else 0
        hi = self.to_port if self.to_port is not None else 65535
        return lo <= port <= hi


def ingresses(r: Resource) -> list[Ingress]:
    p = r.props
    if r.type == SG_INGRESS:
        cidrs = tuple(c for c in (p.get("cidrIpv4"), p.get("cidrIpv6")) if c)
        others = tuple(f"{k} {p.get(k)}" for k in ("referencedSecurityGroupId", "prefixListId") if p.get(k))
        return [Ingress(str(p.get("ipProtocol")), _num(p.get("fromPort")), _num(p.get("toPort")), cidrs, others)]
    if r.type == SG_RULE and p.get("type") != "ingress":
        return []
    if r.type == SG_RULE:
        entries = [p]
    elif r.type in (SG, DEFAULT_SG):
        entries = [_map(e) for e in _seq(p.get("ingress"))]
    else:
        return []
    out = []
    for e in entries:
        cidrs = tuple(str(c) for k in ("cidrBlocks", "ipv6CidrBlocks") for c in _seq(e.get(k)))
        others = tuple(f"{k} {v}" for k in ("securityGroups", "prefixListIds") for v in _seq(e.get(k)))
        others += tuple(f"{k} {e.get(k)}" for k in ("sourceSecurityGroupId",) if e.get(k))
        others += ("self",) if e.get("self") else ()
        out.append(Ingress(str(e.get("protocol")), _num(e.get("fromPort")), _num(e.get("toPort")), cidrs, others))
    return out


def _network(cidr: str):
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


# ---------------------------------------------------------------- mandatory: resource rules
def hop_limit(ctx: Context) -> int:
    value = ctx.policy_config.get("hopLimit", IMDS_HOP_LIMIT)
    return int(value) if _num(value) is not None and value >= 1 else IMDS_HOP_LIMIT


def check_imdsv2(r: Resource, ctx: Context) -> list[str]:
    if r.type not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    options = _map(r.props.get("metadataOptions"))
    if options.get("httpEndpoint") == "disabled":
        return []  # no instance metadata service at all
    out = []
    tokens = options.get("httpTokens")
    if tokens != "required":
        out.append(f"{r.name}: metadataOptions.httpTokens is {tokens!r}: IMDSv1 answers without a token "
                   "(SSRF steals the instance role's credentials); set httpTokens: required")
    hops, limit = _num(options.get("httpPutResponseHopLimit")), hop_limit(ctx)
    if hops is None or hops > limit:
        shown = "not set (the image's default applies)" if hops is None else f"{hops:g}"
        out.append(f"{r.name}: metadataOptions.httpPutResponseHopLimit is {shown}; at most {limit}, so a "
                   "container on the host cannot get an IMDSv2 token")
    return out


def check_encrypted_volumes(r: Resource, ctx: Context) -> list[str]:
    if r.type == VOLUME:
        return [] if r.props.get("encrypted") is True else [
            f"{r.name}: EBS volume with encrypted {r.props.get('encrypted')!r}; set encrypted: true"]
    if r.type != INSTANCE:
        return []
    out = []
    root = r.props.get("rootBlockDevice")
    if not root:
        out.append(f"{r.name}: no rootBlockDevice: the root volume is encrypted only if the account's default "
                   "says so; declare rootBlockDevice with encrypted: true")
    elif _map(root).get("encrypted") is not True:
        out.append(f"{r.name}: rootBlockDevice.encrypted is {_map(root).get('encrypted')!r}; set encrypted: true")
    for i, device in enumerate(_seq(r.props.get("ebsBlockDevices"))):
        if _map(device).get("encrypted") is not True:
            out.append(f"{r.name}: ebsBlockDevices[{i}] ({_map(device).get('deviceName')}) is not encrypted; "
                       "set encrypted: true")
    return out


def check_no_world_ingress(r: Resource, ctx: Context) -> list[str]:
    out = []
    for ing in ingresses(r):
        for cidr in ing.cidrs:
            net = _network(cidr)
            if net is not None and net.prefixlen == 0:
                out.append(f"{r.name}: ingress from {cidr} (every address on the internet); allow named "
                           "sources only (operatorCidr, a host /32)")
    return out


def operator_cidr(ctx: Context) -> tuple[str | None, str]:
    """The operator's CIDR and where it came from; None when the stack says ``auto`` (resolved by the
    program at run time, so the pack only knows it is one address)."""
    if ctx.policy_config.get("operatorCidr"):
        return str(ctx.policy_config["operatorCidr"]), "policy config operatorCidr"
    value = _stack_value(ctx, "operatorCidr")
    if value and value != "auto":
        return str(value), f"stack config {PROJECT}:operatorCidr"
    return None, f"stack config {PROJECT}:operatorCidr is auto"


def check_admin_ports(r: Resource, ctx: Context) -> list[str]:
    admin = [(ing, [p for p in ADMIN_PORTS if ing.covers(p)]) for ing in ingresses(r)]
    admin = [(ing, ports) for ing, ports in admin if ports]
    if not admin:
        return []
    expected, source = operator_cidr(ctx)
    want = _network(expected) if expected else None
    if expected and want is None:
        return [f"{r.name}: cannot check SSH/Kubernetes API ingress: {source} {expected!r} is not a CIDR"]
    out = []
    for ing, ports in admin:
        what = "/".join(str(p) for p in ports)
        for other in ing.others:
            out.append(f"{r.name}: port {what} (SSH/Kubernetes API) open to {other}; only the operator CIDR may "
                       "reach it")
        for cidr in ing.cidrs:
            net = _network(cidr)
            if want is not None and net != want:
                out.append(f"{r.name}: port {what} (SSH/Kubernetes API) open to {cidr}; only the operator CIDR "
                           f"{expected} ({source}) may reach it")
            elif want is None and (net is None or net.version != 4 or net.prefixlen != 32):
                out.append(f"{r.name}: port {what} (SSH/Kubernetes API) open to {cidr}; with operatorCidr auto "
                           "only the one operator address (a /32) may reach it")
    return out


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


def ceiling(ctx: Context) -> tuple[float, str]:
    """The monthly ceiling and its origin: the policy config wins (a platform team pins it), then the
    stack's own maxMonthlyCostUsd, then the project default. A bad value raises SettingsError."""
    if "maxMonthlyCostUsd" in ctx.policy_config:
        value = _num(ctx.policy_config["maxMonthlyCostUsd"])
        if value is None or value <= 0:
            raise SettingsError([f"policy config cost-ceiling.maxMonthlyCostUsd: "
                                 f"{ctx.policy_config['maxMonthlyCostUsd']!r} is not a positive number"])
        return value, "policy config maxMonthlyCostUsd"
    stack_value = _stack_value(ctx, "maxMonthlyCostUsd")
    origin = f"stack config {PROJECT}:maxMonthlyCostUsd" if stack_value is not None else \
        "the project default maxMonthlyCostUsd"
    return float(parse_key("maxMonthlyCostUsd", stack_value)), origin


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
         "EC2 instances require IMDSv2 tokens with a PUT hop limit of at most the chosen one (1).",
         check_imdsv2, {"hopLimit": {"type": "integer", "minimum": 1, "maximum": 64}}),
    Rule("encrypted-volumes", MANDATORY, "resource",
         "EBS volumes, instance root and attached, are encrypted.", check_encrypted_volumes),
    Rule("no-world-ingress", MANDATORY, "resource",
         "No security-group ingress from 0.0.0.0/0 or ::/0.", check_no_world_ingress),
    Rule("admin-ports-operator-only", MANDATORY, "resource",
         "SSH (22) and the Kubernetes API (6443) are reachable from the operator CIDR only.",
         check_admin_ports, {"operatorCidr": {"type": "string"}}),
    Rule("no-key-material-in-commands", MANDATORY, "resource",
         "No command's triggers, scripts or environment hold a private key in plain text.", check_command_secrets),
    Rule("secret-outputs", MANDATORY, "stack",
         "No stack output carries a private key except the lab's secret outputs.", check_secret_outputs),
    Rule("cost-ceiling", MANDATORY, "stack",
         "The stack's on-demand cost (model/prices.json) stays within maxMonthlyCostUsd.",
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
