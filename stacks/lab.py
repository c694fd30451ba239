"""The lab composition: the platform (network, key, two hosts with their security groups, Cilium,
the egress proxy's guard policy, the egress lock, the mTLS backend when a scenario needs it), then every selected scenario at its
stage, its probes, and the verification."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

import scenarios
from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.ec2 import HostArgs
from components.egress_lock import EgressLock, EgressLockArgs
from components.kind_host import KindHost
from components.network import Network, NetworkArgs
from components.platform_policies import PlatformPolicies, PlatformPoliciesArgs
from components.probes import Probes, ProbesArgs, VerificationFailed
from components.proxy_host import ProxyHost
from components.scenario import Scenario, ScenarioArgs
from components.security_group import LockableSecurityGroup, LockableSecurityGroupArgs
from components.ssh_key import SshKey
from model import cost, helm, network, probes, render, userdata
from model import security_groups as sg
from model.settings import PROJECT, Settings
from scenarios import Context, cilium

from .mtls import MtlsPlatform, declare_mtls_backend


def declare(settings: Settings) -> dict[str, Any]:
    """Declare every resource; return the stack outputs (name -> value or Output)."""
    tags = {"project": PROJECT, "env": settings.env_name}
    net = Network(settings.name("net"), NetworkArgs(network.VPC_CIDR, network.PUBLIC_SUBNET_CIDR, tags,
                                                    flow_logs=settings.flow_logs))
    key = SshKey(settings.name("ssh"), tags)
    # amiId auto: Canonical's newest image when a host is created, then kept (a newer image must
    # not replace the hosts on a later `up`, e.g. a lock toggle); an explicit id pins it.
    if settings.ami_id == "auto":
        ami_id: pulumi.Input[str] = aws.ec2.get_ami_output(
            most_recent=True, owners=[network.UBUNTU_OWNER],
            filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[network.UBUNTU_NAME_FILTER]),
                     aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"])]).id
    else:
        ami_id = settings.ami_id

    # Both Elastic IPs exist before either host boots: each host's user-data and security group
    # name the other's address, with no cycle and no serial boot.
    eip_opts = pulumi.ResourceOptions(depends_on=[net.internet_gateway])
    kind_eip = aws.ec2.Eip(settings.name("kind-eip"), domain="vpc",
                           tags={**tags, "Name": settings.name("kind")}, opts=eip_opts)
    proxy_eip = aws.ec2.Eip(settings.name("proxy-eip"), domain="vpc",
                            tags={**tags, "Name": settings.name("proxy")}, opts=eip_opts)
    kind_cidr = kind_eip.public_ip.apply(network.host_cidr)
    proxy_cidr = proxy_eip.public_ip.apply(network.host_cidr)

    kind_sg = LockableSecurityGroup(settings.name("kind") + "-sg", LockableSecurityGroupArgs(
        vpc_id=net.vpc_id, description="cilium-egress-lab kind host", tags=tags,
        ingress=sg.kind_ingress(settings), egress=sg.kind_egress_base(settings, proxy_cidr)))
    proxy_sg = LockableSecurityGroup(settings.name("proxy") + "-sg", LockableSecurityGroupArgs(
        vpc_id=net.vpc_id, description="cilium-egress-lab proxy host", tags=tags,
        ingress=sg.proxy_ingress(settings, kind_cidr), egress=sg.proxy_egress(settings)))

    def host_args(eip: aws.ec2.Eip, group: LockableSecurityGroup, instance_type: str,
                  user_data: pulumi.Input[str]) -> HostArgs:
        return HostArgs(ami_id=ami_id, keep_ami=settings.ami_id == "auto", subnet_id=net.subnet_id, security_group_id=group.security_group_id,
                        key_name=key.key_name, private_key=key.private_key_openssh, eip=eip,
                        instance_type=instance_type, root_volume_gb=settings.root_volume_gb,
                        user_data=user_data, tags=tags,
                        after=[net.route_table_association, *group.egress_rules])

    kind = KindHost(settings.name("kind"), host_args(
        kind_eip, kind_sg, settings.kind_instance_type,
        pulumi.Output.all(kind_eip.public_ip, proxy_eip.public_ip).apply(
            lambda ips: userdata.kind_host_user_data(settings, ips[0], ips[1]))))
    proxy = ProxyHost(settings.name("proxy"), host_args(
        proxy_eip, proxy_sg, settings.proxy_instance_type,
        kind_eip.public_ip.apply(lambda ip: userdata.proxy_host_user_data(settings, ip))))

    # Kubernetes: Cilium, then every selected scenario (model/scenarios) at its configured stage.
    provider = k8s.Provider(settings.name("kind-k8s"), kubeconfig=kind.kubeconfig,
                            delete_unreachable=True)
    release = CiliumRelease(settings.name("cilium"), CiliumReleaseArgs(
        version=settings.cilium_version, values=helm.helm_values(settings), provider=provider,
        connection=kind.connection, host_id=kind.instance_id))
    mtls = (declare_mtls_backend(settings, proxy_eip, proxy.connection, proxy.instance_id, proxy.ready)
            if settings.needs("mtls-backend") else None)
    ctx_static = Context(settings, render.PLACEHOLDER_ADDRESS)
    ctx_live = proxy_eip.public_ip.apply(lambda ip: Context(settings, ip))
    guard = PlatformPolicies(settings.name("platform"), PlatformPoliciesArgs(
        objects=list(scenarios.platform_objects(ctx_static)),
        objects_live=ctx_live.apply(lambda c: list(scenarios.platform_objects(c))),
        provider=provider, after=[release.release, release.crds_ready]))
    deployed = {name: declare_scenario(settings, name, ctx_static, ctx_live, provider,
                                       [release.release, release.crds_ready], mtls)
                for name in settings.scenarios}

    # The lock switches only once Cilium runs and every scenario's workloads are up (images
    # pulled), so restrictEgress=true works on the very first up.
    toggle = sg.kind_egress_toggle(settings, proxy_cidr)
    lock = EgressLock(settings.name("kind") + "-sg-lock", EgressLockArgs(
        security_group_id=kind_sg.security_group_id, rules=toggle,
        after=[kind.ready, release.release, *guard.policies, *[r for d in deployed.values() for r in d.component.workload_resources]]))

    # Verification: every scenario's probes, re-run whenever their answer can change.
    checks = {}
    for name, d in deployed.items():
        triggers = [settings.restrict_egress, kind.instance_id, proxy.instance_id, d.static.stage.name,
                    d.live.apply(lambda pl: cilium.content_hash(*pl.stage.objects)),
                    ctx_live.apply(lambda c: cilium.content_hash(*scenarios.platform_objects(c)))]
        if mtls is not None and "mtls-backend" in scenarios.pack(name).NEEDS:
            triggers.append(mtls.digest)
        checks[name] = Probes(settings.name(f"probes-{name}"), ProbesArgs(
            names=[p.name for p in d.static.probes],
            commands=[d.live.apply(lambda pl, i=i: probes.command(pl.probes[i], pl.workloads,
                                                                   settings.convergence_seconds))
                      for i in range(len(d.static.probes))],
            kind=kind.connection, proxy=proxy.connection, triggers=triggers,
            evidence={p.name: (lambda out, p=p: kind_eip.public_ip.apply(
                lambda ip: probes.evidence_command(p, out, ip)))
                for p in d.static.probes if p.check == probes.PROXY_LOG},
            after=[lock, proxy.ready, *guard.policies, *d.component.policies, *d.component.workload_resources,
                   *([mtls.backend] if mtls is not None else [])]))
    verification = verify(settings, {n: d.live for n, d in deployed.items()}, checks)
    extra_outputs: dict[str, Any] = {}
    if mtls is not None:
        extra_outputs[render.SECRET_MATERIAL_OUTPUT] = mtls.material

    effective = sg.kind_egress(settings, proxy_cidr)
    ssh = lambda ip: f"ssh -i lab.key {network.SSH_USER}@{ip}"  # noqa: E731
    return {
        "kindPublicIp": kind.public_ip,
        "proxyPublicIp": proxy.public_ip,
        "sshKind": kind.public_ip.apply(ssh),
        "sshProxy": proxy.public_ip.apply(ssh),
        "sshPrivateKey": key.private_key_openssh,
        "kubeconfig": kind.kubeconfig,
        "restrictEgress": settings.restrict_egress,
        "amiId": kind.ami_id,
        "ciliumStatus": release.status,
        "stages": {name: d.static.stage.name for name, d in deployed.items()},
        "costEstimate": cost.stack_output(settings, aws.config.region),  # on-demand list prices, model/prices.json
        "verification": verification,
        "kindEgressRules": pulumi.Output.all(*[r.cidr for r in effective]).apply(
            lambda cidrs: [{**r.as_dict(), "cidr": c} for r, c in zip(effective, cidrs)]),
        **extra_outputs,
        **({"flowLogGroup": net.flow_log_group} if net.flow_log_group is not None else {}),
    }


@dataclass
class Deployed:
    static: probes.Plan                  # names, stage objects' shapes (placeholder addresses)
    live: pulumi.Output                  # Output[probes.Plan] with the real addresses
    component: Scenario


def declare_scenario(settings: Settings, name: str, ctx_static: Context, ctx_live: pulumi.Output,
                     provider: k8s.Provider, after: list[pulumi.Resource], mtls: MtlsPlatform | None) -> Deployed:
    """One scenario pack at its configured stage: its workloads, (secrets), the stage's objects."""
    pack, stage = scenarios.pack(name), settings.stage_of(name)
    static = probes.plan(name, ctx_static, stage)
    live = ctx_live.apply(lambda c: probes.plan(name, c, stage))
    secrets = list(getattr(pack, "secret_objects", lambda ctx, m=None: [])(ctx_static))
    secrets_live = [pulumi.Output.secret(mtls.material.apply(lambda m, i=i: pack.secret_objects(ctx_static, m)[i]))
                    for i in range(len(secrets))] if mtls is not None else []
    component = Scenario(settings.name(name), ScenarioArgs(
        workloads=list(static.workloads), stage_objects=list(static.stage.objects),
        stage_objects_live=live.apply(lambda pl: list(pl.stage.objects)), provider=provider,
        secrets=secrets if secrets_live else [], secrets_live=secrets_live, after=after))
    return Deployed(static, live, component)


def verify(settings: Settings, plans: dict[str, pulumi.Output], checks: dict[str, Probes]) -> pulumi.Output:
    """The ``verification`` output (model.probes.report); with strictVerification a mismatch fails
    the update, naming every probe that differs, what was expected and why."""
    names = list(plans)

    def conclude(args: list) -> dict:
        n = len(names)
        live = dict(zip(names, args[:n]))
        stdouts = {k: v for d in args[n:2 * n] for k, v in d.items()}
        proxy = {k: v for d in args[2 * n:] for k, v in d.items()}
        report = probes.report(live, stdouts, proxy, settings)
        if settings.strict_verification and not report["ok"]:
            raise VerificationFailed(
                "verification failed (strictVerification=true; set it false to keep the stack and inspect "
                "`pulumi stack output verification`):\n  - " + "\n  - ".join(probes.failures(report)))
        return report
    return pulumi.Output.all(*[plans[n] for n in names], *[checks[n].stdouts for n in names],
                             *[checks[n].proxy_stdouts for n in names]).apply(conclude)


def main(read_settings: Callable[[], Settings], export: Callable[[str, Any], None] = pulumi.export):
    """The whole program: settings first (fails before any resource), then resources, then outputs."""
    settings = read_settings()
    for name, value in declare(settings).items():
        export(name, value)
