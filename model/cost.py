"""What the lab costs while it exists: on-demand list prices from the pinned table model/prices.json.

Pure (no Pulumi import). The same pricing serves three readers, so they cannot disagree:
``python -m model cost`` and the ``costEstimate`` stack output price what the settings will declare
(``billables``), the policy pack's cost-ceiling rule prices what the program actually registered
(``billables_from_resources``: type tokens and provider input names, camelCase). A unit test keeps
the two lists equal for every scenario.

Billable here: EC2 instances (per hour by type), gp3 volumes (per GB-month, as a per-hour rate
over ``hoursPerMonth``), public IPv4 addresses (per hour each, Elastic IPs included, in use or not).
Free or usage-dependent: the VPC, subnets, route tables, security groups, key pairs and IAM cost
nothing; data transfer and CloudWatch Logs ingestion depend on use and are listed as not included.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from .edges import edge_settings
from .settings import Settings, shown

PRICES_PATH = pathlib.Path(__file__).with_name("prices.json")
PRICES_FILE = "model/prices.json"
DEFAULT_REGION = "eu-central-1"  # the driver's and Pulumi.dev.yaml's region

INSTANCE = "aws:ec2/instance:Instance"
EIP = "aws:ec2/eip:Eip"
VOLUME = "aws:ebs/volume:Volume"
# Billable resource types the table has no price for: registering one makes the estimate incomplete.
UNPRICED_TYPES = {
    "aws:ec2/natGateway:NatGateway": "NAT gateway",
    "aws:lb/loadBalancer:LoadBalancer": "load balancer",
    "aws:alb/loadBalancer:LoadBalancer": "load balancer",
    "aws:elb/loadBalancer:LoadBalancer": "classic load balancer",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "VPC endpoint",
    "aws:eks/cluster:Cluster": "EKS cluster",
    "aws:rds/instance:Instance": "RDS instance",
}


class CostError(ValueError):
    """The estimate cannot be made: one line per problem, each naming the key or resource."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("cannot estimate the cost:\n" + "\n".join(f"  - {e}" for e in self.errors))


@lru_cache(maxsize=1)
def load_prices() -> dict[str, Any]:
    return json.loads(PRICES_PATH.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Billable:
    """One billable thing, named after the resource that incurs it."""
    resource: str            # the registered resource's name (kind-demo-instance, kind-eip-demo)
    kind: str                # "instance" | "volume" | "public-ipv4"
    spec: str = ""           # instance type, or volume type
    size_gb: float = 0       # volumes only
    key: str = ""            # the config key that decides it (for error messages), if any
    urn: str = ""            # set when read from registered resources

    @property
    def item(self) -> str:
        if self.kind == "instance":
            return f"EC2 {self.spec}"
        if self.kind == "volume":
            return f"{self.spec} volume {self.size_gb:g} GB"
        return "public IPv4 address"


@dataclass(frozen=True)
class Line:
    resource: str
    item: str
    hourly: float
    monthly: float
    urn: str = ""


@dataclass
class Estimate:
    region: str
    lines: list[Line]
    problems: list[str] = field(default_factory=list)  # unpriced items: the totals leave them out
    max_monthly_usd: float | None = None

    @property
    def hourly(self) -> float:
        return sum(line.hourly for line in self.lines)

    @property
    def monthly(self) -> float:
        return self.hourly * hours_per_month()

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def within_ceiling(self) -> bool | None:
        if self.max_monthly_usd is None:
            return None
        return self.complete and round(self.monthly, 2) <= self.max_monthly_usd

    def as_dict(self) -> dict[str, Any]:
        prices = load_prices()
        out: dict[str, Any] = {
            "region": self.region, "currency": prices["currency"], "pricesDate": prices["pricesDate"],
            "pricesFile": PRICES_FILE, "hoursPerMonth": hours_per_month(),
            "lines": [{"resource": ln.resource, "item": ln.item, "hourly": round(ln.hourly, 5),
                       "monthly": round(ln.monthly, 2)} for ln in self.lines],
            "hourly": round(self.hourly, 5), "monthly": round(self.monthly, 2),
            "complete": self.complete, "notIncluded": list(prices["notIncluded"]),
        }
        if self.problems:
            out["problems"] = list(self.problems)
        if self.max_monthly_usd is not None:
            out["maxMonthlyCostUsd"] = self.max_monthly_usd
            out["withinCeiling"] = self.within_ceiling
        return out


def hours_per_month() -> int:
    return int(load_prices()["hoursPerMonth"])


def regions() -> list[str]:
    return sorted(load_prices()["regions"])


# ---------------------------------------------------------------- what is billable
def billables(settings: Settings) -> list[Billable]:
    """What the program declares for these settings (components/ec2.py, stacks/lab.py): per host an
    instance with its gp3 root volume, and one Elastic IP each. Names as the program registers them."""
    # edgeClusters = N: N kind hosts (each named like a one-cluster stack's)
    hosts = [(e, "kind") for e in edge_settings(settings)] + [(settings, "proxy")]
    out: list[Billable] = []
    if getattr(settings, "platform", "aws") != "aws":  # local and existing declare nothing billable
        return out
    for owner, role in hosts:
        instance = f"{owner.name(role)}-instance"
        instance_type = settings.kind_instance_type if role == "kind" else settings.proxy_instance_type
        out.append(Billable(instance, "instance", instance_type, key=f"{role}InstanceType"))
        out.append(Billable(instance, "volume", "gp3", settings.root_volume_gb, key="rootVolumeGb"))
    for owner, role in hosts:
        out.append(Billable(owner.name(f"{role}-eip"), "public-ipv4"))
    return out


def _seq(value: Any) -> list:
    """A list-like value (list, tuple or a policy SDK proxy) as a list; anything else: []."""
    if isinstance(value, (str, bytes)) or value is None:
        return []
    try:
        return list(value)
    except TypeError:
        return []


def billables_from_resources(resources: Iterable[Mapping[str, Any]]) -> tuple[list[Billable], list[str]]:
    """What registered resources cost: each is ``{"type", "name", "props"[, "urn"]}`` with the
    provider's input names (camelCase). Returns the billables and the billable resources the table
    cannot price (one line each, naming the resource)."""
    out: list[Billable] = []
    unpriced: list[str] = []
    for r in resources:
        typ, name, props, urn = r["type"], r["name"], r.get("props") or {}, r.get("urn", "")
        if typ == INSTANCE:
            out.append(Billable(name, "instance", str(props.get("instanceType")), urn=urn))
            root = props.get("rootBlockDevice")
            if not root:
                unpriced.append(f"{name}: no rootBlockDevice: the root volume's size comes from the image "
                                "and cannot be priced")
            else:
                out.append(Billable(name, "volume", str(root.get("volumeType") or "gp2"),
                                    float(root.get("volumeSize") or 0), urn=urn))
            for device in _seq(props.get("ebsBlockDevices")):
                out.append(Billable(name, "volume", str(device.get("volumeType") or "gp2"),
                                    float(device.get("volumeSize") or 0), urn=urn))
            if props.get("associatePublicIpAddress"):
                out.append(Billable(name, "public-ipv4", urn=urn))
        elif typ == VOLUME:
            out.append(Billable(name, "volume", str(props.get("type") or "gp2"), float(props.get("size") or 0),
                                urn=urn))
        elif typ == EIP:
            out.append(Billable(name, "public-ipv4", urn=urn))
        elif typ in UNPRICED_TYPES:
            unpriced.append(f"{name}: a {UNPRICED_TYPES[typ]} ({typ}) is billable and not in {PRICES_FILE}")
        elif not free_type(typ):  # fail closed: a type the table does not know is not free
            unpriced.append(f"{name}: resource type {typ} is neither priced nor listed as free in {PRICES_FILE} "
                            "(freeTypes)")
    return out, unpriced


def free_type(typ: str) -> bool:
    """Is ``typ`` known to cost nothing by itself (model/prices.json ``freeTypes``, fnmatch patterns)?"""
    from fnmatch import fnmatchcase
    return any(fnmatchcase(typ, pattern) for pattern in load_prices().get("freeTypes", {}))


# ---------------------------------------------------------------- pricing
def region_prices(region: str) -> dict[str, Any]:
    table = load_prices()["regions"]
    if region not in table:
        raise CostError([f"aws:region: {shown(region)} is not in the price table {PRICES_FILE}; "
                         f"accepted: {', '.join(sorted(table))}"])
    return table[region]


def price(items: Iterable[Billable], region: str, max_monthly_usd: float | None = None) -> Estimate:
    """Hourly and monthly cost of ``items`` in ``region``. An unknown region raises CostError; an
    item the table has no price for becomes a problem naming its resource (and config key)."""
    table = region_prices(region)
    hours = hours_per_month()
    lines: list[Line] = []
    problems: list[str] = []
    for b in items:
        if b.kind == "instance":
            rate = table["ec2PerHour"].get(b.spec)
            if rate is None:
                who = f"{b.key}: {shown(b.spec)}" if b.key else f"{b.resource}: instance type {shown(b.spec)}"
                problems.append(f"{who} is not in the price table {PRICES_FILE} for {region}; priced: "
                                f"{', '.join(sorted(table['ec2PerHour']))}")
                continue
            hourly = float(rate)
        elif b.kind == "volume":
            if b.spec != "gp3":
                problems.append(f"{b.resource}: a {b.spec} volume is not in the price table {PRICES_FILE} "
                                "(gp3 only)")
                continue
            hourly = float(table["gp3PerGbMonth"]) * b.size_gb / hours
        else:
            hourly = float(table["publicIpv4PerHour"])
        lines.append(Line(b.resource, b.item, hourly, hourly * hours, b.urn))
    return Estimate(region, lines, problems, max_monthly_usd)


def estimate(settings: Settings, region: str) -> Estimate:
    """The settings' estimate with its ceiling; raises CostError if anything cannot be priced."""
    result = price(billables(settings), region, settings.max_monthly_cost_usd)
    if result.problems:
        raise CostError(result.problems)
    return result


def stack_output(settings: Settings, region: str | None) -> dict[str, Any]:
    """The ``costEstimate`` output: never fails the update; what cannot be priced is said in it."""
    region = region or DEFAULT_REGION
    try:
        return price(billables(settings), region, settings.max_monthly_cost_usd).as_dict()
    except CostError as exc:
        return {"region": region, "complete": False, "problems": exc.errors,
                "maxMonthlyCostUsd": settings.max_monthly_cost_usd, "withinCeiling": None}


# ---------------------------------------------------------------- rendering
def render_text(est: Estimate, stack: str | None = None) -> str:
    prices = load_prices()
    hours = hours_per_month()
    head = ("RESOURCE", "ITEM", "USD/HOUR", f"USD/MONTH ({hours} h)")
    rows = [(ln.resource, ln.item, f"{ln.hourly:.5f}", f"{ln.monthly:.2f}") for ln in est.lines]
    rows.append(("total", "", f"{est.hourly:.5f}", f"{est.monthly:.2f}"))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(r):
        return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]),
                          r[3].rjust(widths[3])]).rstrip()
    where = f"stack {stack}, " if stack else ""
    lines = [f"Cost estimate ({where}region {est.region}, on-demand {prices['currency']}, prices of "
             f"{prices['pricesDate']} from {PRICES_FILE})", fmt(head), *map(fmt, rows)]
    lines += [f"not priced: {p}" for p in est.problems]
    if est.max_monthly_usd is not None:
        verdict = ("within" if est.within_ceiling else
                   "ABOVE" if est.complete else "cannot be checked (incomplete estimate) against")
        lines.append(f"ceiling: {verdict} maxMonthlyCostUsd {est.max_monthly_usd:g} "
                     f"(${est.max_monthly_usd / hours:.4f}/hour)")
    lines.append("not included: " + "; ".join(prices["notIncluded"]))
    return "\n".join(lines) + "\n"


def as_json(est: Estimate) -> str:
    return json.dumps(est.as_dict(), indent=2) + "\n"


__all__ = ["Billable", "CostError", "Estimate", "Line", "billables", "billables_from_resources", "estimate",
           "price", "region_prices", "render_text", "stack_output", "as_json"]
