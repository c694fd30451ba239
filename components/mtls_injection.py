"""MtlsInjection: the Kubernetes half of the mTLS scenario (all objects from model.mtls).

Namespace ``mtls-inject`` with a curl pod; the client certificate and the CA as secrets in
cilium-secrets (Envoy's SDS source); the CiliumClusterwideEnvoyConfig that originates mTLS; the
CiliumNetworkPolicy redirecting backend:8083 into its listener (after the CCEC and the secrets).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from .egress_proxy_policy import EnvoyPolicyArgs, declare_envoy_policy
from .k8s_objects import declare


@dataclass
class MtlsInjectionArgs:
    workloads: Sequence[dict]                 # namespace, then pod
    secrets: Sequence[dict]                   # static renderings (placeholders)
    secrets_live: Sequence[pulumi.Output[dict]]
    policy: EnvoyPolicyArgs                   # CCEC + CNP
    provider: k8s.Provider
    after: Sequence[pulumi.Resource] = field(default_factory=list)  # release, CRD wait


class MtlsInjection(pulumi.ComponentResource):
    pods: list[pulumi.CustomResource]

    def __init__(self, name: str, args: MtlsInjectionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:mtls:MtlsInjection", name, None, opts)
        k8s_opts = lambda deps: pulumi.ResourceOptions(  # noqa: E731
            parent=self, provider=args.provider, depends_on=[*args.after, *deps])
        namespace = declare(name, args.workloads[0], k8s_opts([]))
        self.pods = [declare(name, pod, k8s_opts([namespace])) for pod in args.workloads[1:]]
        secrets = [declare(name, static, k8s_opts([]), live=live)
                   for static, live in zip(args.secrets, args.secrets_live)]
        declare_envoy_policy(self, name, dataclasses.replace(
            args.policy, after=[*args.after, *args.policy.after, namespace, *secrets]))
        self.register_outputs({})
