"""What the guardrails look at: resource type tokens, the plain-data ``Resource``/``Context``/``Rule``
the checks take, and small helpers over the policy SDK's read-only proxies. Pure (no Pulumi); the
checks themselves are guardrails/rules.py."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from model import mtls
from model.network import MESH_API_PORTS, SSH_PORT
from model.render import SECRET_MATERIAL_OUTPUT
from model.settings import OPERATOR_MIN_PREFIX, PROJECT

from . import shapes
from .shapes import (  # noqa: F401 - the value helpers the checks share with shapes.py
    Permission as Ingress,  # the name the tests and older callers use
)

MANDATORY, ADVISORY = "mandatory", "advisory"
STACK_TYPE = "pulumi:pulumi:Stack"
INSTANCE = shapes.INSTANCE
LAUNCH_TEMPLATE = shapes.LAUNCH_TEMPLATE
VOLUME = "aws:ebs/volume:Volume"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = shapes.DEFAULT_SG
SG = shapes.SG
SG_INGRESS = shapes.SG_INGRESS
SG_EGRESS = shapes.SG_EGRESS
SG_RULE = shapes.SG_RULE
EIP = "aws:ec2/eip:Eip"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
COMMANDS = ("command:remote:Command", "command:local:Command", "command:remote:CopyToRemote")
# What a command resource keeps in the state and shows in diffs besides its connection (which
# carries the SSH key and is secret by pulumi-command's schema); a CopyToRemote's source asset text
# is scanned too (COPY_SOURCE).
COMMAND_FIELDS = ("triggers", "create", "update", "delete", "stdin", "environment", "remotePath")
COPY_SOURCE = "source"
# The files a CopyToRemote may carry a private key in: the mTLS backend's server.pem (certificate
# chain + key, model/mtls.py), which the program passes as a Pulumi secret (tests/unit/
# test_policy_pack.py proves it under mocks; the pack sees secrets decrypted, see SECRET_OUTPUTS).
KEY_COPY_FILES = mtls.KEY_FILES
# Ingress no wider than the operator's own limit (model/settings.py OPERATOR_MIN_PREFIX) for IPv4;
# an IPv6 /48 is one site.
MIN_INGRESS_PREFIX = {4: OPERATOR_MIN_PREFIX, 6: 48}
ADMIN_PORTS = (SSH_PORT, *MESH_API_PORTS)  # the kind host's API ports: 6443, and 6444 for a two-cluster pack
# The outputs that carry key material on purpose; the program exports each as a Pulumi secret
# (tests/unit/test_policy_pack.py proves it under mocks). pulumi-policy hands a policy secret values
# already decrypted (pulumi_policy/policy.py: Analyze/AnalyzeStack deserialize without proxy_secrets),
# so the pack cannot see secretness and holds every other output to "no key material at all".
SECRET_OUTPUTS = ("sshPrivateKey", "kubeconfig", "kubeconfigs", SECRET_MATERIAL_OUTPUT)  # kubeconfigs: a fleet (stacks/fleet.py)
REQUIRED_TAGS = ("project", "env")  # stacks/lab.py tags every taggable resource with these
TAGGED_TYPES = (INSTANCE, VOLUME, VPC, SG, DEFAULT_SG, LOG_GROUP, FLOW_LOG, "aws:ec2/eip:Eip",
                "aws:ec2/subnet:Subnet", "aws:ec2/internetGateway:InternetGateway",
                "aws:ec2/routeTable:RouteTable", "aws:ec2/keyPair:KeyPair", "aws:iam/role:Role")
KEY_MATERIAL = shapes.KEY_MATERIAL


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
    # operatorCidr auto: how the pack learns the operator's address (model/operator_ip.py in the pack)
    operator_lookup: Callable[[], str] | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    level: str                   # MANDATORY | ADVISORY
    scope: str                   # "resource" | "stack"
    description: str
    check: Callable[..., list]   # resource: (Resource, Context) -> [msg]; stack: (list, Context) -> [(urn, msg)]
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # JSON schema of its policy config


# ---------------------------------------------------------------- helpers
def has_key_material(value: Any) -> str | None:
    """The first private-key marker in ``value``, in any spelling guardrails/shapes.py knows (PEM and PGP
    blocks, base64-encoded ones, kubeconfig client-key-data in YAML or JSON, bearer and
    service-account tokens, PuTTY keys), asset texts included."""
    return shapes.key_material(value)


def _stack_value(ctx: Context, key: str) -> Any:
    return ctx.stack_config.get(f"{PROJECT}:{key}")


def ingresses(r: Resource) -> list[shapes.Permission]:
    return shapes.permissions(r.type, r.props, "ingress")


def egresses(r: Resource) -> list[shapes.Permission]:
    return shapes.permissions(r.type, r.props, "egress")


def _network(cidr: str):
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


