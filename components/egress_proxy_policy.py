"""EgressProxyPolicy: the CiliumEnvoyConfig (CONNECT tunnel to the proxy) and the
CiliumNetworkPolicy that redirects allowed domains into its listener (both from model.cilium).

The CNP is created after the CEC: a policy whose listener does not exist yet drops redirected
traffic until policies regenerate (DESIGN.md §5a).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from .k8s_objects import declare


@dataclass
class EnvoyPolicyArgs:
    envoy_config: dict                     # static rendering (names, metadata)
    envoy_config_live: pulumi.Output[dict]  # with the real address
    network_policy: dict
    network_policy_live: pulumi.Output[dict]
    provider: k8s.Provider
    after: Sequence[pulumi.Resource] = field(default_factory=list)  # the CRD wait, namespaces


def declare_envoy_policy(parent: pulumi.Resource, name: str, args: EnvoyPolicyArgs):
    """CEC (or CCEC) first, then the CNP that names its listener. Shared with MtlsInjection."""
    cec = declare(name, args.envoy_config, pulumi.ResourceOptions(
        parent=parent, provider=args.provider, depends_on=list(args.after)),
        live=args.envoy_config_live)
    cnp = declare(name, args.network_policy, pulumi.ResourceOptions(
        parent=parent, provider=args.provider, depends_on=[*args.after, cec]),
        live=args.network_policy_live)
    return cec, cnp


class EgressProxyPolicy(pulumi.ComponentResource):
    resources: list[pulumi.CustomResource]

    def __init__(self, name: str, args: EnvoyPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:cilium:EgressProxyPolicy", name, None, opts)
        self.resources = list(declare_envoy_policy(self, name, args))
        self.register_outputs({})
