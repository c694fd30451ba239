"""Typed, validated settings: the one place configuration is read and checked (each value by its parser,
model/parsers.py).

Pure: no Pulumi import. ``load_settings`` takes the raw values (strings as Pulumi's config
returns them, or already-typed values from tests and the render CLI), checks every key, and
either returns a frozen ``Settings`` or raises ``SettingsError`` listing *every* bad key with
the value given and what is accepted. Callers do this before declaring any resource.

``CONFIG_KEYS`` is also the source of the ``config:`` block in ``Pulumi.yaml``; a unit test
keeps the two in step.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from cilium_verdicts.fqdn import matches_any
from scenarios import ONE_CLUSTER, PACKS, STAGE_NAMES, multi_cluster_refusals

from . import registries
from .kind_releases import KIND_VERSIONS
from .parsers import (  # noqa: F401 - ECHO_LIMIT, OPERATOR_MIN_PREFIX, shown, shown_name, url_host: read through settings too
    _DOMAIN,
    ECHO_LIMIT,
    MAX_VALUE_CHARS,
    OPERATOR_MIN_PREFIX,
    _ami_id,
    _bool,
    _cn,
    _context,
    _dns_name,
    _domain_list,
    _domains,
    _env_name,
    _instance_type,
    _int,
    _kind_version,
    _operator_cidr,
    _parse_value,
    _path,
    _platform,
    _scenario_list,
    _shown_reason,
    _stage_map,
    _url,
    _version,
    shown,
    shown_name,
    url_host,
)
from .platforms import config_problems

PROJECT = "cilium-egress-lab"

DEFAULT_CILIUM_VERSION = "1.18.10"
DEFAULT_KIND_VERSION = "v0.30.0"
# What the kind host's own boot fetches through the proxy: Ubuntu's archives (apt), GitHub release
# downloads (kind), dl.k8s.io (kubectl), Docker Hub (the kind node image, the lab's workloads: registry,
# auth and the hosts its blobs redirect to) and quay.io (Cilium's images). A name here also allows every
# name below it. Each origin's hosts and the source of that list: model/registries.py.
DEFAULT_BOOTSTRAP_DOMAINS = registries.DEFAULT_BOOTSTRAP_DOMAINS


class SettingsError(ValueError):
    """Raised with every configuration problem found, one line per key."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(
            f"invalid configuration ({len(self.errors)} problem"
            f"{'s' if len(self.errors) != 1 else ''}):\n{lines}\n"
            f"Fix with: pulumi config set <key> <value>   (or --set key=value for the render CLI)"
        )


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str  # Pulumi.yaml type: boolean | integer | string | array
    default: Any
    description: str
    accepted: str


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("platform", "string", "aws",
              "Where the lab runs: aws (two EC2 hosts, today's stack), local (kind on your Docker or Podman, "
              "no cloud account) or existing (a cluster you already run Cilium >= 1.16 on, kubeconfigPath). "
              "A stack keeps its platform: switching is refused.",
              "aws, local or existing"),
    ConfigKey("kubeconfigPath", "string", "",
              "platform existing: the kubeconfig file of the cluster (~ is expanded). Nothing at cluster level "
              "is created or deleted there.",
              "a file path; required with platform existing, unset otherwise"),
    ConfigKey("kubeContext", "string", "",
              "platform existing: the kubeconfig context to use (empty: the file's current context).",
              "a context name from the kubeconfig, or empty; only with platform existing"),
    ConfigKey("restrictEgress", "boolean", False,
              "Lock the kind host's egress to the proxy (plus DNS and NTP). Only egress rules change.",
              "true or false"),
    ConfigKey("envName", "string", "demo",
              "Suffix of every resource name (kind-<envName>, proxy-<envName>).",
              "1-20 characters from [a-z0-9-]"),
    ConfigKey("operatorCidr", "string", "auto",
              "Who may reach SSH and the Kubernetes API. 'auto' looks up your public IPv4 once.",
              "'auto' or a public IPv4 CIDR of /16 or narrower, such as 198.51.100.7/32"),
    ConfigKey("allowedDomains", "array", ["*.roche.com"],
              "Domains test-allow reaches through the proxy (Cilium toFQDNs patterns).",
              "a non-empty list of DNS names or '*.'-wildcard patterns, e.g. [\"*.roche.com\"]"),
    ConfigKey("bootstrapDomains", "array", list(DEFAULT_BOOTSTRAP_DOMAINS),
              "Domains the kind host itself fetches through the proxy (apt, kind, kubectl, container "
              "images); the proxy allows these (and every name below them) plus allowedDomains, and "
              "refuses everything else.",
              "a non-empty list of DNS names, e.g. [\"quay.io\", \"docker.io\"]"),
    ConfigKey("flowLogs", "boolean", True,
              "VPC flow logs of rejected traffic to CloudWatch Logs, kept 7 days (AWS FSBP EC2.6); a "
              "locked host's direct attempts show up as REJECT.",
              "true or false"),
    ConfigKey("proxyPort", "integer", 3128,
              "TCP port of the HTTP proxy on the proxy host.",
              "an integer from 1 to 65535"),
    ConfigKey("kindInstanceType", "string", "m7i.large",
              "EC2 type of the kind host (needs >= 8 GiB for kind + Cilium).",
              "an EC2 instance type such as m7i.large"),
    ConfigKey("proxyInstanceType", "string", "t3.small",
              "EC2 type of the proxy host.",
              "an EC2 instance type such as t3.small"),
    ConfigKey("rootVolumeGb", "integer", 30,
              "Size of each host's encrypted gp3 root volume in GiB.",
              "an integer from 8 to 1024"),
    ConfigKey("maxMonthlyCostUsd", "integer", 150,
              "Cost ceiling of the stack in USD per month (730 h) of on-demand list prices (model/prices.json): "
              "python -m model cost and the costEstimate output compare with it, the policy pack's cost-ceiling "
              "rule enforces it.",
              "an integer from 1 to 100000"),
    ConfigKey("amiId", "string", "auto",
              "Ubuntu 24.04 image of both hosts. 'auto' resolves Canonical's newest image when a host is "
              "created and keeps it (stack output amiId); an AMI id pins it, and changing it replaces both "
              "hosts on purpose.",
              "'auto' or an AMI id such as ami-0a1b2c3d4e5f60718"),
    ConfigKey("kindVersion", "string", DEFAULT_KIND_VERSION,
              "kind release installed on the kind host (the releases whose patch matching and node image the "
              "tests emulate, model/kind_releases.py).",
              "one of " + ", ".join(KIND_VERSIONS)),
    ConfigKey("ciliumVersion", "string", DEFAULT_CILIUM_VERSION,
              "Cilium Helm chart version.",
              "a version such as 1.18.10"),
    ConfigKey("probeUrl", "string", "https://www.roche.com",
              "URL the probes fetch that the policy sends through the proxy.",
              "an http(s) URL whose host matches an allowedDomains entry"),
    ConfigKey("controlUrl", "string", "https://www.example.com",
              "URL the probes fetch that no policy allows (the control).",
              "an http(s) URL whose host matches no allowedDomains entry"),
    ConfigKey("strictVerification", "boolean", True,
              "Fail the update when a probe's observed result differs from the expected matrix.",
              "true or false"),
    ConfigKey("convergenceSeconds", "integer", 180,
              "How long each probe retries until it observes the expected verdict: Cilium regenerates "
              "policy, Envoy gets its listeners and AWS applies rule changes asynchronously.",
              "an integer from 0 (one attempt) to 900"),
    ConfigKey("scenarios", "array", ["egress"],
              "The scenario packs the lab deploys and verifies (scenarios/).",
              "a non-empty list of distinct names from: egress, mtls, hoot51, eks-retail, stars"),
    ConfigKey("stages", "object", {},
              "The stage each scenario is at (pulumi config set --path stages.hoot51 deny-sleep-egress); a "
              "scenario not named here is at its last stage. Not declared in Pulumi.yaml: project config "
              "types cannot be maps.",
              "a map from a selected scenario to one of its stage names"),
    ConfigKey("mtlsClientCn", "string", "cilium-egress-lab-client",
              "Common name of the client certificate Envoy presents to the mTLS backend.",
              "1-64 characters from [A-Za-z0-9 .-]"),
    ConfigKey("mtlsServerName", "string", "mtls-server.cilium-egress-lab.internal",
              "DNS name in the backend's server certificate; Envoy sends it as SNI and verifies it.",
              "a DNS name"),
    ConfigKey("pkiCaValidityHours", "integer", 8760,
              "Validity of the root and intermediate CAs, in hours.",
              "an integer from 24 to 87600"),
    ConfigKey("pkiCertValidityHours", "integer", 2160,
              "Validity of the server and client certificates, in hours (not beyond the CAs').",
              "an integer from 1 to 87600, at most pkiCaValidityHours"),
    ConfigKey("edgeClusters", "integer", 1,
              "How many kind hosts (edge clusters) the stack builds, each with its own lockable security group "
              "and kubeconfig, all locked to the one shared proxy host (stacks/fleet.py).",
              "an integer from 1 to 20"),
)
KEYS_BY_NAME = {k.name: k for k in CONFIG_KEYS}
# Keys an older version of the lab had: a stack that still sets one is told what replaced it.
REPLACED_KEYS = {
    "mtlsInjection": "replaced by the key scenarios (the mTLS lab is now the scenario 'mtls'): run "
                     "`pulumi config rm mtlsInjection`, then `pulumi config set --path 'scenarios[1]' mtls` "
                     "(scenarios: [egress, mtls]); accepted keys: see Pulumi.yaml",
}


def pulumi_config_block() -> dict[str, dict]:
    """The ``config:`` block of Pulumi.yaml, derived from CONFIG_KEYS (a test keeps them equal)."""
    block = {}
    for k in CONFIG_KEYS:
        if k.type == "object":  # Pulumi.yaml config types are string, integer, boolean or array
            continue
        entry: dict[str, Any] = {"type": k.type}
        if k.type == "array":
            entry["items"] = {"type": "string"}
        entry["default"] = k.default
        entry["description"] = f"{k.description} Accepted: {k.accepted}."
        block[k.name] = entry
    return block


@dataclass(frozen=True)
class Settings:
    platform: str
    kubeconfig_path: str
    kube_context: str
    restrict_egress: bool
    env_name: str
    operator_cidr: str
    allowed_domains: tuple[str, ...]
    bootstrap_domains: tuple[str, ...]
    flow_logs: bool
    proxy_port: int
    kind_instance_type: str
    proxy_instance_type: str
    root_volume_gb: int
    max_monthly_cost_usd: int
    ami_id: str
    kind_version: str
    cilium_version: str
    probe_url: str
    control_url: str
    strict_verification: bool
    convergence_seconds: int
    scenarios: tuple[str, ...]
    stages: tuple[tuple[str, str], ...]
    mtls_client_cn: str
    mtls_server_name: str
    pki_ca_validity_hours: int
    pki_cert_validity_hours: int
    edge_clusters: int = 1

    @property
    def probe_host(self) -> str:
        return url_host(self.probe_url)

    @property
    def control_host(self) -> str:
        return url_host(self.control_url)

    def needs(self, piece: str) -> bool:
        """Does any selected scenario need this platform piece ("proxy", "mtls-backend")?"""
        return any(piece in PACKS[name].NEEDS for name in self.scenarios)

    def stage_of(self, scenario: str) -> str | None:
        """The configured stage of ``scenario`` (None: its last stage)."""
        return dict(self.stages).get(scenario)

    def name(self, role: str) -> str:
        """Resource name for a role, e.g. ``kind`` -> ``kind-demo``."""
        return f"{role}-{self.env_name}"


_PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "platform": ("platform", _platform),
    "kubeconfigPath": ("kubeconfig_path", _path),
    "kubeContext": ("kube_context", _context),
    "restrictEgress": ("restrict_egress", _bool),
    "envName": ("env_name", _env_name),
    "operatorCidr": ("operator_cidr", _operator_cidr),
    "allowedDomains": ("allowed_domains", _domains),
    "bootstrapDomains": ("bootstrap_domains", _domain_list(_DOMAIN, "a DNS name (no wildcard: it covers every name below it)")),
    "flowLogs": ("flow_logs", _bool),
    "proxyPort": ("proxy_port", _int(1, 65535)),
    "kindInstanceType": ("kind_instance_type", _instance_type),
    "proxyInstanceType": ("proxy_instance_type", _instance_type),
    "rootVolumeGb": ("root_volume_gb", _int(8, 1024)),
    "maxMonthlyCostUsd": ("max_monthly_cost_usd", _int(1, 100000)),
    "amiId": ("ami_id", _ami_id),
    "kindVersion": ("kind_version", _kind_version),
    "ciliumVersion": ("cilium_version", _version(prefix_v=False)),
    "probeUrl": ("probe_url", _url),
    "controlUrl": ("control_url", _url),
    "strictVerification": ("strict_verification", _bool),
    "convergenceSeconds": ("convergence_seconds", _int(0, 900)),
    "scenarios": ("scenarios", _scenario_list),
    "stages": ("stages", _stage_map),
    "mtlsClientCn": ("mtls_client_cn", _cn),
    "mtlsServerName": ("mtls_server_name", _dns_name),
    "pkiCaValidityHours": ("pki_ca_validity_hours", _int(24, 87600)),
    "pkiCertValidityHours": ("pki_cert_validity_hours", _int(1, 87600)),
    "edgeClusters": ("edge_clusters", _int(1, 20)),
}
assert set(_PARSERS) == set(KEYS_BY_NAME), "every config key needs a parser"


def parse_key(key: str, value: Any) -> Any:
    """One key's value (None: its default), parsed like ``load_settings`` does; a bad value raises
    SettingsError with the same one-line message (for readers of a single key, e.g. the policy pack)."""
    spec, (_, parse) = KEYS_BY_NAME[key], _PARSERS[key]
    value = spec.default if value is None else value
    try:
        return _parse_value(parse, value)
    except (ValueError, TypeError, RecursionError):
        raise SettingsError([f"{key}: {shown(value)} is not accepted; accepted: {spec.accepted}"]) from None


def load_settings(raw: Mapping[str, Any],
                  public_ip_lookup: Callable[[], str] | None = None,
                  resolve_operator_cidr: bool = True, aws_region: str | None = None) -> Settings:
    """Parse and validate ``raw`` (key -> value or None for "not set").

    ``public_ip_lookup`` resolves ``operatorCidr: auto``; it is called at most once, and only
    when every other check passed, so a typo never costs a network round trip. Unknown keys are
    errors too (a misspelt key would otherwise be silently ignored). ``resolve_operator_cidr=False``
    leaves ``auto`` as it is (the render CLI: no Kubernetes object depends on it). ``aws_region`` (the
    stack's ``aws:region``, None: not known) is checked against what the boot needs there
    (model.registries.region_problems).
    """
    errors: list[str] = []
    values: dict[str, Any] = {}
    for key in raw:
        if key in REPLACED_KEYS:
            errors.append(f"{key}: {REPLACED_KEYS[key]}")
        elif key not in KEYS_BY_NAME:
            errors.append(f"{shown_name(key)}: unknown key; accepted keys: {', '.join(KEYS_BY_NAME)}")
    for key, (field, parse) in _PARSERS.items():
        spec = KEYS_BY_NAME[key]
        value = raw.get(key)
        if value is None:
            value = spec.default
        try:
            values[field] = _parse_value(parse, value)
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            detail = (f" ({_shown_reason(str(exc))})"
                      if str(exc) and not isinstance(exc, json.JSONDecodeError) else "")
            errors.append(f"{key}: {shown(value)} is not accepted{detail}; accepted: {spec.accepted}")
    errors += _cross_checks(values)
    if "bootstrap_domains" in values:
        errors += registries.region_problems(aws_region, values["bootstrap_domains"])
    # operatorCidr guards SSH and the API of the EC2 hosts: only the aws platform has any
    if not errors and values["operator_cidr"] == "auto" and resolve_operator_cidr and values.get("platform") == "aws":
        values["operator_cidr"] = _resolve_auto(public_ip_lookup, errors)
    if errors:
        raise SettingsError(errors)
    return Settings(**values)


def _cross_checks(v: dict[str, Any]) -> list[str]:
    """Rules that relate two keys; only run on keys that parsed."""
    errors = []
    domains = v.get("allowed_domains")
    if domains and "probe_url" in v and not matches_any(domains, url_host(v["probe_url"])):
        errors.append(f"probeUrl: {shown(v['probe_url'])} matches no allowedDomains entry {shown(list(domains))}; "
                      f"accepted: {KEYS_BY_NAME['probeUrl'].accepted}")
    if domains and "control_url" in v and matches_any(domains, url_host(v["control_url"])):
        errors.append(f"controlUrl: {shown(v['control_url'])} matches allowedDomains {shown(list(domains))}, so it "
                      f"would not be a control; accepted: {KEYS_BY_NAME['controlUrl'].accepted}")
    for scenario, stage in v.get("stages", ()):
        if "scenarios" in v and scenario not in v["scenarios"]:
            errors.append(f"stages.{scenario}: {shown(scenario)} is not in scenarios {list(v['scenarios'])}; "
                          f"accepted: {KEYS_BY_NAME['stages'].accepted}")
            continue
        if scenario in STAGE_NAMES and stage not in STAGE_NAMES[scenario]:
            errors.append(f"stages.{scenario}: {shown(stage)} is not a stage of {scenario}; accepted: "
                          f"{', '.join(STAGE_NAMES[scenario])}")
    errors += _platform_checks(v)
    if v.get("edge_clusters", 1) > 1 and "scenarios" in v:  # the fleet's proxy host runs no mTLS backend
        for n in v["scenarios"]:
            if "mtls-backend" in PACKS[n].NEEDS:
                errors.append(f"edgeClusters: {v['edge_clusters']} with scenario {n}: the mTLS backend is built for "
                              "one cluster only; accepted: edgeClusters 1 with mtls, or a fleet without it")
            elif n not in ONE_CLUSTER:   # both mesh clusters run on the one kind host (model/mesh_aws.py)
                errors.append(f"edgeClusters: {v['edge_clusters']} with scenario {n}: its two clusters run on one "
                              f"kind host; accepted: edgeClusters 1 with {n}, or a fleet of single-cluster scenarios")
    # a ClusterMesh pack needs a two-cluster platform
    errors += multi_cluster_refusals(v.get("scenarios", ()), v.get("platform"))
    ca, cert = v.get("pki_ca_validity_hours"), v.get("pki_cert_validity_hours")
    if ca is not None and cert is not None and cert > ca:
        errors.append(f"pkiCertValidityHours: {cert} outlives pkiCaValidityHours {ca}; "
                      f"accepted: {KEYS_BY_NAME['pkiCertValidityHours'].accepted}")
    return errors


def _platform_checks(v: dict[str, Any]) -> list[str]:
    """platform with its own keys, every selected scenario against what it offers (model.platforms)."""
    if v.get("platform") is None:
        return []
    fleet = ([f"edgeClusters: {v['edge_clusters']} builds a fleet of EC2 hosts, only on platform 'aws' (platform is "
              f"{v['platform']!r}); accepted: 1 there"] if v["platform"] != "aws" and v.get("edge_clusters", 1) > 1 else [])
    return fleet + config_problems(v["platform"], v.get("kubeconfig_path"), v.get("kube_context"), v.get("scenarios"),
                           v.get("restrict_egress"), {k: KEYS_BY_NAME[k].accepted for k in KEYS_BY_NAME}, shown)


def _resolve_auto(lookup: Callable[[], str] | None, errors: list[str]) -> str:
    hint = ("set it explicitly: pulumi config set operatorCidr <your-public-ip>/32 "
            "(accepted: " + KEYS_BY_NAME["operatorCidr"].accepted + ")")
    if lookup is None:
        errors.append(f"operatorCidr: 'auto' needs a public-IP lookup, none is available here; {hint}")
        return "auto"
    try:
        ip = ipaddress.IPv4Address(lookup().strip())
    except Exception as exc:  # noqa: BLE001 - any failure becomes one clear config error
        errors.append(f"operatorCidr: 'auto' could not look up your public IPv4 ({exc}); {hint}")
        return "auto"
    return f"{ip}/32"
