"""Every Kubernetes object the stack applies, as one list (the render CLI and the round-trip test
use it; the stack declares the same builders' output)."""
from __future__ import annotations

from typing import Any

import yaml

from . import cilium, k8s
from .settings import Settings, shown

# Documented placeholder (TEST-NET-1, RFC 5737) for addresses not known offline.
PLACEHOLDER_ADDRESS = "192.0.2.10"


def egress_objects(settings: Settings, proxy_address: str) -> list[dict]:
    cec = cilium.egress_envoy_config(settings, proxy_address)
    return [*k8s.test_workloads(), cec, cilium.egress_network_policy(settings, cec)]


def mtls_objects(settings: Settings, backend_address: str) -> list[dict]:
    """The mTLS scenario's objects; secrets carry placeholders here (pulumi up fills them)."""
    from . import mtls
    ccec = mtls.mtls_envoy_config(settings, backend_address)
    return [*mtls.workloads(), *mtls.placeholder_secrets(), ccec,
            mtls.mtls_network_policy(settings, ccec, backend_address)]


def lab_objects(settings: Settings, proxy_address: str) -> list[dict]:
    """Everything the stack applies to the cluster. The mTLS backend runs on the proxy host."""
    objects = egress_objects(settings, proxy_address)
    if settings.mtls_injection:
        objects += mtls_objects(settings, proxy_address)
    return objects


def helm_command(settings: Settings, values_for: str) -> str:
    """How to apply the Helm values of ``values_for`` (a ``cilium.HELM_TARGETS`` entry)."""
    if values_for == "existing":  # merge into the cluster's own release, keep its version
        return ("helm upgrade cilium cilium/cilium -n kube-system --version <the cluster's Cilium version> "
                "--reuse-values -f values.yaml")
    return (f"helm upgrade --install cilium cilium/cilium --version {settings.cilium_version} "
            "-n kube-system -f values.yaml")


_AUDIENCE = {"kind": "the lab's kind cluster", "existing": "an existing Cilium >= 1.16 cluster"}


def values_yaml(settings: Settings, values_for: str = "kind") -> str:
    """Only the Helm values of ``values_for``, as a file for ``helm -f`` (render --values-only)."""
    values = yaml.safe_dump(cilium.helm_values(settings, target=values_for), sort_keys=False)
    return (f"# Cilium Helm values for {_AUDIENCE[values_for]} (python -m model render --values-only "
            f"--values-for {values_for}):\n# {helm_command(settings, values_for)}\n{values}")


def render_yaml(settings: Settings, proxy_address: str, values_for: str = "kind") -> str:
    values = yaml.safe_dump(cilium.helm_values(settings, target=values_for), sort_keys=False).rstrip()
    header = [
        "# cilium-egress-lab manifests (python -m model render). Apply after Cilium is installed:",
        f"# Helm values for {_AUDIENCE[values_for]} (--values-for {values_for}):",
        f"# {helm_command(settings, values_for)}, with these values:",
        *("#   " + line for line in values.splitlines()),
        f"# proxy address: {proxy_address}",
    ]
    body = yaml.safe_dump_all(lab_objects(settings, proxy_address), sort_keys=False)
    return "\n".join(header) + "\n---\n" + body


def parse_assignment(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ValueError(f"--set {shown(text)}: expected key=value")
    key, value = text.split("=", 1)
    return key.strip(), value
