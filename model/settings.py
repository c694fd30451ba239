"""Typed, validated settings: the one place configuration is read and checked.

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
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

PROJECT = "cilium-egress-lab"

DEFAULT_CILIUM_VERSION = "1.18.10"
DEFAULT_KIND_VERSION = "v0.30.0"


ECHO_LIMIT = 60  # characters of a bad value's repr an error message shows


def shown(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with "…" (a pasted
    certificate or a runaway list must not drown the message)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    close = text[-1] if text[-1] in "'\"])}" else ""  # keep the closing quote or bracket
    return text[:limit - 1 - len(close)] + "…" + close


def shown_name(name: Any, limit: int = ECHO_LIMIT) -> str:
    """A key name as given (no quotes), cut like ``shown``."""
    text = str(name)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _shown_reason(text: str, limit: int = 2 * ECHO_LIMIT) -> str:
    """A parser's reason (e.g. ipaddress's "Expected 4 octets in '…'"): quoted values cut like
    ``shown``, the whole reason at most ``limit`` characters."""
    text = re.sub(r"'([^']{%d,})'" % ECHO_LIMIT, lambda m: shown(m.group(1)), text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


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
    ConfigKey("restrictEgress", "boolean", False,
              "Lock the kind host's egress to the proxy (plus DNS and NTP). Only egress rules change.",
              "true or false"),
    ConfigKey("envName", "string", "demo",
              "Suffix of every resource name (kind-<envName>, proxy-<envName>).",
              "1-20 characters from [a-z0-9-]"),
    ConfigKey("operatorCidr", "string", "auto",
              "Who may reach SSH and the Kubernetes API. 'auto' looks up your public IPv4 once.",
              "'auto' or an IPv4 CIDR such as 198.51.100.7/32 (not 0.0.0.0/0)"),
    ConfigKey("allowedDomains", "array", ["*.roche.com"],
              "Domains test-allow reaches through the proxy (Cilium toFQDNs patterns).",
              "a non-empty list of DNS names or '*.'-wildcard patterns, e.g. [\"*.roche.com\"]"),
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
    ConfigKey("amiId", "string", "auto",
              "Ubuntu 24.04 image of both hosts. 'auto' resolves Canonical's newest image when a host is "
              "created and keeps it (stack output amiId); an AMI id pins it, and changing it replaces both "
              "hosts on purpose.",
              "'auto' or an AMI id such as ami-0a1b2c3d4e5f60718"),
    ConfigKey("kindVersion", "string", DEFAULT_KIND_VERSION,
              "kind release installed on the kind host.",
              "a version such as v0.30.0"),
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
    ConfigKey("mtlsInjection", "boolean", False,
              "Add the mTLS-injection scenario (PKI, mTLS backend, cluster-wide Envoy config, probes).",
              "true or false"),
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
)
KEYS_BY_NAME = {k.name: k for k in CONFIG_KEYS}


def pulumi_config_block() -> dict[str, dict]:
    """The ``config:`` block of Pulumi.yaml, derived from CONFIG_KEYS (a test keeps them equal)."""
    block = {}
    for k in CONFIG_KEYS:
        entry: dict[str, Any] = {"type": k.type}
        if k.type == "array":
            entry["items"] = {"type": "string"}
        entry["default"] = k.default
        entry["description"] = f"{k.description} Accepted: {k.accepted}."
        block[k.name] = entry
    return block


@dataclass(frozen=True)
class Settings:
    restrict_egress: bool
    env_name: str
    operator_cidr: str
    allowed_domains: tuple[str, ...]
    proxy_port: int
    kind_instance_type: str
    proxy_instance_type: str
    root_volume_gb: int
    ami_id: str
    kind_version: str
    cilium_version: str
    probe_url: str
    control_url: str
    strict_verification: bool
    convergence_seconds: int
    mtls_injection: bool
    mtls_client_cn: str
    mtls_server_name: str
    pki_ca_validity_hours: int
    pki_cert_validity_hours: int

    @property
    def probe_host(self) -> str:
        return url_host(self.probe_url)

    @property
    def control_host(self) -> str:
        return url_host(self.control_url)

    def name(self, role: str) -> str:
        """Resource name for a role, e.g. ``kind`` -> ``kind-demo``."""
        return f"{role}-{self.env_name}"


# ---------------------------------------------------------------- parsers (value -> typed, or ValueError)
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^(?:\*\.)?(?:{_DNS_LABEL}\.)+{_DNS_LABEL}$")
_ENV_RE = re.compile(r"^[a-z0-9-]{1,20}$")
_INSTANCE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_SEMVER_RE = re.compile(r"^v?\d+\.\d+\.\d+$")


def url_host(url: str) -> str:
    from urllib.parse import urlsplit
    return (urlsplit(url).hostname or "").lower()


def _url(v: Any) -> str:
    from urllib.parse import urlsplit
    if not isinstance(v, str):
        raise ValueError
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not _DOMAIN_RE.match(url_host(v)) or "*" in v:
        raise ValueError
    return v


def _cn(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9 .-]{1,64}", v) or v.strip() != v:
        raise ValueError
    return v


def _dns_name(v: Any) -> str:
    if not isinstance(v, str) or v.startswith("*") or not _DOMAIN_RE.match(v.lower()):
        raise ValueError
    return v.lower()


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise ValueError


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError
        if isinstance(v, str):
            if not re.fullmatch(r"\s*-?\d+\s*", v):
                raise ValueError
            v = int(v)
        if not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError
        return v
    return parse


def _env_name(v: Any) -> str:
    if not isinstance(v, str) or not _ENV_RE.match(v):
        raise ValueError
    return v


def _operator_cidr(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError
    if v == "auto":
        return v
    net = ipaddress.IPv4Network(v, strict=True)  # AddressValueError/ValueError both ValueError
    if net.prefixlen == 0:
        raise ValueError
    return str(net)


def _domains(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        text = v.strip()
        v = json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",")]
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError
    out: list[str] = []
    for item in v:
        if not isinstance(item, str) or not _DOMAIN_RE.match(item.lower()) or len(item) > 253:
            raise ValueError(f"{shown(item)} is not a DNS name or '*.'-wildcard pattern")
        if item.lower() in out:
            raise ValueError(f"{shown(item)} is listed twice")
        out.append(item.lower())
    return tuple(out)


def _ami_id(v: Any) -> str:
    if not isinstance(v, str) or not (v == "auto" or re.fullmatch(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})", v, re.ASCII)):
        raise ValueError
    return v


def _instance_type(v: Any) -> str:
    if not isinstance(v, str) or not _INSTANCE_RE.match(v):
        raise ValueError
    return v


def _version(prefix_v: bool) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if not isinstance(v, str) or not _SEMVER_RE.match(v):
            raise ValueError
        bare = v.lstrip("v")
        return f"v{bare}" if prefix_v else bare
    return parse


_PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "restrictEgress": ("restrict_egress", _bool),
    "envName": ("env_name", _env_name),
    "operatorCidr": ("operator_cidr", _operator_cidr),
    "allowedDomains": ("allowed_domains", _domains),
    "proxyPort": ("proxy_port", _int(1, 65535)),
    "kindInstanceType": ("kind_instance_type", _instance_type),
    "proxyInstanceType": ("proxy_instance_type", _instance_type),
    "rootVolumeGb": ("root_volume_gb", _int(8, 1024)),
    "amiId": ("ami_id", _ami_id),
    "kindVersion": ("kind_version", _version(prefix_v=True)),
    "ciliumVersion": ("cilium_version", _version(prefix_v=False)),
    "probeUrl": ("probe_url", _url),
    "controlUrl": ("control_url", _url),
    "strictVerification": ("strict_verification", _bool),
    "convergenceSeconds": ("convergence_seconds", _int(0, 900)),
    "mtlsInjection": ("mtls_injection", _bool),
    "mtlsClientCn": ("mtls_client_cn", _cn),
    "mtlsServerName": ("mtls_server_name", _dns_name),
    "pkiCaValidityHours": ("pki_ca_validity_hours", _int(24, 87600)),
    "pkiCertValidityHours": ("pki_cert_validity_hours", _int(1, 87600)),
}
assert set(_PARSERS) == set(KEYS_BY_NAME), "every config key needs a parser"


def load_settings(raw: Mapping[str, Any],
                  public_ip_lookup: Callable[[], str] | None = None,
                  resolve_operator_cidr: bool = True) -> Settings:
    """Parse and validate ``raw`` (key -> value or None for "not set").

    ``public_ip_lookup`` resolves ``operatorCidr: auto``; it is called at most once, and only
    when every other check passed, so a typo never costs a network round trip. Unknown keys are
    errors too (a misspelt key would otherwise be silently ignored). ``resolve_operator_cidr=False``
    leaves ``auto`` as it is (the render CLI: no Kubernetes object depends on it).
    """
    errors: list[str] = []
    values: dict[str, Any] = {}
    for key in raw:
        if key not in KEYS_BY_NAME:
            errors.append(f"{shown_name(key)}: unknown key; accepted keys: {', '.join(KEYS_BY_NAME)}")
    for key, (field, parse) in _PARSERS.items():
        spec = KEYS_BY_NAME[key]
        value = raw.get(key)
        if value is None:
            value = spec.default
        try:
            values[field] = parse(value)
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            detail = (f" ({_shown_reason(str(exc))})"
                      if str(exc) and not isinstance(exc, json.JSONDecodeError) else "")
            errors.append(f"{key}: {shown(value)} is not accepted{detail}; accepted: {spec.accepted}")
    errors += _cross_checks(values)
    if not errors and values["operator_cidr"] == "auto" and resolve_operator_cidr:
        values["operator_cidr"] = _resolve_auto(public_ip_lookup, errors)
    if errors:
        raise SettingsError(errors)
    return Settings(**values)


def _cross_checks(v: dict[str, Any]) -> list[str]:
    """Rules that relate two keys; only run on keys that parsed."""
    from .fqdn import matches_any
    errors = []
    domains = v.get("allowed_domains")
    if domains and "probe_url" in v and not matches_any(domains, url_host(v["probe_url"])):
        errors.append(f"probeUrl: {shown(v['probe_url'])} matches no allowedDomains entry {shown(list(domains))}; "
                      f"accepted: {KEYS_BY_NAME['probeUrl'].accepted}")
    if domains and "control_url" in v and matches_any(domains, url_host(v["control_url"])):
        errors.append(f"controlUrl: {shown(v['control_url'])} matches allowedDomains {shown(list(domains))}, so it "
                      f"would not be a control; accepted: {KEYS_BY_NAME['controlUrl'].accepted}")
    ca, cert = v.get("pki_ca_validity_hours"), v.get("pki_cert_validity_hours")
    if ca is not None and cert is not None and cert > ca:
        errors.append(f"pkiCertValidityHours: {cert} outlives pkiCaValidityHours {ca}; "
                      f"accepted: {KEYS_BY_NAME['pkiCertValidityHours'].accepted}")
    return errors


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
