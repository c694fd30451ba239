"""Egress via the proxy (seed 000): chosen domains leave the cluster only through Envoy, which
tunnels them with HTTP CONNECT to the proxy host; everything else from test-allow is dropped, and
test-deny (no policy) is stopped only by the security group once ``restrictEgress`` locks it.

Workloads: namespaces ``test-allow`` and ``test-deny`` with a ``curl`` pod each (the seed's). Stages:
``open`` (the cluster before ``make apply_manifests``: no Cilium objects) and ``proxy-policy`` (the
seed's CiliumEnvoyConfig ``proxy-envoy`` and CiliumNetworkPolicy ``proxy-policy``, from
model/cilium.py). Probes: curl from each pod to ``probeUrl`` (an allowed domain) and ``controlUrl``,
and from each pod through the proxy by name (``curl -x``), which the platform's guard drops.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from cilium_verdicts import Probe

from . import cilium, k8s
from .base import Context, LabProbe, Stage

NAME = "egress"
SEED = "000"
TITLE = "Egress via an HTTP proxy: *.roche.com through Envoy's CONNECT tunnel, the rest dropped or locked"
NEEDS: frozenset[str] = frozenset({"proxy"})
STAGES = ("open", "proxy-policy")
ALLOWED, CONTROL, PROXY_DIRECT = "allowed", "control", "proxy-direct"


def workloads(ctx: Context) -> list[dict]:
    return k8s.test_workloads()


def stages(ctx: Context) -> list[Stage]:
    cec = cilium.egress_envoy_config(ctx.settings, ctx.proxy_address)
    return [
        Stage(STAGES[0], '"At this point, the kubernetes cluster cannot connect to any external destination" '
                      "only once locked: no Cilium objects yet (Execute the demo, before step 1)", ()),
        Stage(STAGES[1], '"make apply_manifests": cec_proxy.yaml and cnp_proxy.yaml (Execute the demo, '
                              "step 1): *.roche.com from test-allow through the proxy",
              (cec, cilium.egress_network_policy(ctx.settings, cec))),
    ]


def _probe(source_ns: str, target: str, url: str, check: str | None) -> LabProbe:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return LabProbe(traffic=Probe(source=f"{source_ns}/{k8s.CURL_POD}", to=f"world:{parts.hostname}", port=port,
                                  via="fqdn", request=f"GET {path}"),
                    check=check, name=f"{source_ns}-{target}", url=url,
                    note=f"make test_{'allow' if source_ns == cilium.ALLOW_NAMESPACE else 'deny'}: curl {url}")


def _proxy_direct(ctx: Context, source_ns: str) -> LabProbe:
    """A pod uses the proxy itself (``curl -x``) for the control URL: squid would pass what it passes
    for the kind host (the bootstrap domains, port 80 by address), so the platform's guard
    (scenarios.cilium.proxy_guard_policy) drops it at the pod - in every stage, locked or not."""
    s = ctx.settings
    return LabProbe(traffic=Probe(source=f"{source_ns}/{k8s.CURL_POD}", to=f"world:{ctx.proxy_address}",
                                  port=s.proxy_port, via="fqdn"),
                    name=f"{source_ns}-{PROXY_DIRECT}", url=s.control_url,
                    curl_args=("-x", f"http://{ctx.proxy_address}:{s.proxy_port}"),
                    note=f"not in the seed: a pod bypasses its policy by naming the proxy (curl -x ... {s.control_url})")


def probes(ctx: Context, stage: Stage) -> list[LabProbe]:
    """The seed's two checks and their controls: each test pod to ``probeUrl`` and ``controlUrl``.
    The allowed probe from test-allow also looks for its CONNECT in the proxy's log. Then each pod
    naming the proxy itself, which no pod may use (the platform's guard)."""
    s = ctx.settings
    return [*(_probe(ns, target, url, "proxy-log" if (ns, target) == (cilium.ALLOW_NAMESPACE, ALLOWED) else None)
              for ns in (cilium.ALLOW_NAMESPACE, cilium.DENY_NAMESPACE)
              for target, url in ((ALLOWED, s.probe_url), (CONTROL, s.control_url))),
            *(_proxy_direct(ctx, ns) for ns in (cilium.ALLOW_NAMESPACE, cilium.DENY_NAMESPACE))]
