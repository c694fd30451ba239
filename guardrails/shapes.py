"""Where a resource keeps what the guardrails judge, whatever resource type or provider declared it.

Pure (no Pulumi, no pulumi-policy import), like guardrails/rules.py, which uses it. One harm has many
spellings: an ingress permission may be a standalone rule (aws.vpc, legacy aws.ec2 SecurityGroupRule,
aws-native SecurityGroupIngress) or inline in the group (aws.ec2 / aws-native SecurityGroup); an
instance may be launched by an Instance, a SpotInstanceRequest, a LaunchConfiguration, a
LaunchTemplate or aws-native's Instance / LaunchTemplate; a private key may be a PEM block, the same
block base64-encoded, a kubeconfig ``client-key-data`` in YAML or JSON, a bearer or service-account
token, or a PGP private key block. The rules ask these functions, so a new spelling is added once.

Input names are the providers' camelCase ones (pulumi-aws 6/7, pulumi-aws-native 1.x schemas).
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from model import cost

# ---------------------------------------------------------------- type tokens
INSTANCE = "aws:ec2/instance:Instance"
SPOT_INSTANCE = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
NATIVE_INSTANCE = "aws-native:ec2:Instance"
NATIVE_LAUNCH_TEMPLATE = "aws-native:ec2:LaunchTemplate"
# Every type that launches or templates an instance, and the shape of its inputs:
# "instance": metadataOptions, rootBlockDevice, ebsBlockDevices (aws.ec2 Instance, SpotInstanceRequest,
#             LaunchConfiguration);
# "template": metadataOptions, blockDeviceMappings[].ebs (aws.ec2 LaunchTemplate);
# "native-template": launchTemplateData.{metadataOptions, blockDeviceMappings[].ebs};
# "native-instance": metadataOptions (CloudFormation AWS::EC2::Instance MetadataOptions) and
#             blockDeviceMappings[].ebs. Options that come only from a referenced launch template cannot
#             be seen by a resource rule: the instance must state them itself (fail closed).
LAUNCHERS = {INSTANCE: "instance", SPOT_INSTANCE: "instance", LAUNCH_CONFIGURATION: "instance",
             LAUNCH_TEMPLATE: "template", NATIVE_LAUNCH_TEMPLATE: "native-template",
             NATIVE_INSTANCE: "native-instance"}

SG = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
NATIVE_SG = "aws-native:ec2:SecurityGroup"
NATIVE_SG_INGRESS = "aws-native:ec2:SecurityGroupIngress"
NATIVE_SG_EGRESS = "aws-native:ec2:SecurityGroupEgress"
GROUP_TYPES = (SG, DEFAULT_SG, NATIVE_SG)


def _seq(value: Any) -> list:
    return cost._seq(value)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


# ---------------------------------------------------------------- security-group permissions
@dataclass(frozen=True)
class Permission:
    """One ingress or egress permission, whatever resource shape declared it."""
    protocol: str
    from_port: float | None
    to_port: float | None
    cidrs: tuple[str, ...]         # IPv4 and IPv6 CIDRs
    others: tuple[str, ...]        # non-CIDR peers: security groups, prefix lists ("<field> <id>")
    self_ref: bool = False         # the group itself

    def covers(self, port: int) -> bool:
        if str(self.protocol).lower() in ("-1", "all"):
            return True
        if str(self.protocol).lower() not in ("tcp", "6"):
            return False
        lo = self.from_port if self.from_port is not None else 0
        hi = self.to_port if self.to_port is not None else 65535
        return lo <= port <= hi


def _peers(entry: Mapping[str, Any], cidr_keys: Iterable[str], list_keys: Iterable[str],
           one_keys: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cidrs = []
    for k in cidr_keys:
        value = entry.get(k)
        cidrs += [str(c) for c in _seq(value)] if not isinstance(value, str) else ([value] if value else [])
    others = [f"{k} {v}" for k in list_keys for v in _seq(entry.get(k))]
    others += [f"{k} {entry.get(k)}" for k in one_keys if entry.get(k)]
    return tuple(cidrs), tuple(others)


def _protocol(entry: Mapping[str, Any]) -> str:
    return str(entry.get("ipProtocol", entry.get("protocol")))


def permissions(r_type: str, props: Mapping[str, Any], direction: str) -> list[Permission]:
    """The ``direction`` ("ingress" | "egress") permissions a resource declares."""
    p = props
    ingress = direction == "ingress"
    if r_type in (SG_INGRESS, SG_EGRESS):
        if (r_type == SG_INGRESS) != ingress:
            return []
        cidrs, others = _peers(p, ("cidrIpv4", "cidrIpv6"), (), ("referencedSecurityGroupId", "prefixListId"))
        return [Permission(_protocol(p), _num(p.get("fromPort")), _num(p.get("toPort")), cidrs, others)]
    if r_type in (NATIVE_SG_INGRESS, NATIVE_SG_EGRESS):
        if (r_type == NATIVE_SG_INGRESS) != ingress:
            return []
        keys = (("sourcePrefixListId", "sourceSecurityGroupId", "sourceSecurityGroupName") if ingress
                else ("destinationPrefixListId", "destinationSecurityGroupId"))
        cidrs, others = _peers(p, ("cidrIp", "cidrIpv6"), (), keys)
        return [Permission(_protocol(p), _num(p.get("fromPort")), _num(p.get("toPort")), cidrs, others)]
    if r_type == NATIVE_SG:
        key = "securityGroupIngress" if ingress else "securityGroupEgress"
        keys = (("sourcePrefixListId", "sourceSecurityGroupId", "sourceSecurityGroupName") if ingress
                else ("destinationPrefixListId", "destinationSecurityGroupId"))
        out = []
        for e in (_map(x) for x in _seq(p.get(key))):
            cidrs, others = _peers(e, ("cidrIp", "cidrIpv6"), (), keys)
            out.append(Permission(_protocol(e), _num(e.get("fromPort")), _num(e.get("toPort")), cidrs, others))
        return out
    if r_type == SG_RULE:
        if p.get("type") != direction:
            return []
        entries = [p]
    elif r_type in (SG, DEFAULT_SG):
        entries = [_map(e) for e in _seq(p.get(direction))]
    else:
        return []
    out = []
    for e in entries:
        cidrs, others = _peers(e, ("cidrBlocks", "ipv6CidrBlocks"), ("securityGroups", "prefixListIds"),
                               ("sourceSecurityGroupId",))
        out.append(Permission(_protocol(e), _num(e.get("fromPort")), _num(e.get("toPort")), cidrs, others,
                              bool(e.get("self"))))
    return out


# ---------------------------------------------------------------- instance launchers
@dataclass(frozen=True)
class Launch:
    """What a launching resource says about instance metadata and volumes."""
    metadata: Mapping[str, Any]              # the metadata options ({} when not declared)
    metadata_where: str                      # the input path, for messages
    volumes: tuple[tuple[str, Any], ...]     # (input path, the volume's encrypted value)
    no_root: str | None                      # why the root volume's encryption is unknown, if it is


def _encrypted_of_mappings(mappings: Any, where: str) -> list[tuple[str, Any]]:
    out = []
    for i, m in enumerate(_seq(mappings)):
        m = _map(m)
        if m.get("virtualName") or m.get("noDevice"):
            continue  # an instance-store or suppressed device: no EBS volume
        out.append((f"{where}[{i}] ({m.get('deviceName')}).ebs.encrypted", _map(m.get("ebs")).get("encrypted")))
    return out


def launch(r_type: str, props: Mapping[str, Any]) -> Launch | None:
    shape = LAUNCHERS.get(r_type)
    if shape is None:
        return None
    if shape == "instance":
        root = props.get("rootBlockDevice")
        volumes = [("rootBlockDevice.encrypted", _map(root).get("encrypted"))] if root else []
        volumes += [(f"ebsBlockDevices[{i}] ({_map(d).get('deviceName')}).encrypted", _map(d).get("encrypted"))
                    for i, d in enumerate(_seq(props.get("ebsBlockDevices")))]
        return Launch(_map(props.get("metadataOptions")), "metadataOptions", tuple(volumes),
                      None if root else "no rootBlockDevice")
    if shape == "template":
        mappings = props.get("blockDeviceMappings")
        return Launch(_map(props.get("metadataOptions")), "metadataOptions",
                      tuple(_encrypted_of_mappings(mappings, "blockDeviceMappings")),
                      None if _seq(mappings) else "no blockDeviceMappings")
    if shape == "native-template":
        data = _map(props.get("launchTemplateData"))
        mappings = data.get("blockDeviceMappings")
        return Launch(_map(data.get("metadataOptions")), "launchTemplateData.metadataOptions",
                      tuple(_encrypted_of_mappings(mappings, "launchTemplateData.blockDeviceMappings")),
                      None if _seq(mappings) else "no launchTemplateData.blockDeviceMappings")
    mappings = props.get("blockDeviceMappings")
    return Launch(_map(props.get("metadataOptions")), "metadataOptions",
                  tuple(_encrypted_of_mappings(mappings, "blockDeviceMappings")),
                  None if _seq(mappings) else "no blockDeviceMappings")


def is_true(value: Any) -> bool:
    """An encrypted flag: True, or the string "true" (pulumi-aws LaunchTemplate's ebs.encrypted)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


# ---------------------------------------------------------------- key material
_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")  # PKCS#1/8, EC, OpenSSH, PGP
KEY_MATERIAL = re.compile(
    _PEM.pattern
    + r"|PuTTY-User-Key-File-\d"
    + r"""|client-key-data["']?\s*[:=]\s*["']?[A-Za-z0-9+/=]{8,}"""       # kubeconfig, YAML or JSON
    + r"|(?i:\bbearer)\s+[A-Za-z0-9._~+/-]{16,}=*"                      # an HTTP bearer token
    + r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"  # a JWT (service-account token)
    + r"""|\btoken["']?\s*[:=]\s*["']?[a-z0-9]{6}\.[a-z0-9]{16}\b""")       # a kubeadm bootstrap token
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_SCAN_LIMIT = 4 * 1024 * 1024  # characters of one string scanned (asset texts, user-data are far smaller)


def _asset_text(value: Any) -> str | None:
    """A Pulumi StringAsset's text, or a FileAsset's file (read, bounded): the text a CopyToRemote
    sends. Duck-typed (no Pulumi import): pulumi.StringAsset has ``text``, FileAsset ``path``."""
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return text
    path = getattr(value, "path", None)
    if isinstance(path, str):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read(_SCAN_LIMIT)
        except OSError:
            return None
    return None


def strings(value: Any) -> Iterable[str]:
    """Every string inside a value (nested lists and maps, asset texts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k in value:
            yield from strings(value[k])
    elif _asset_text(value) is not None:
        yield _asset_text(value)  # type: ignore[misc]
    else:
        for item in _seq(value):
            yield from strings(item)


def key_material_in_text(text: str, depth: int = 0) -> str | None:
    text = text[:_SCAN_LIMIT]
    m = KEY_MATERIAL.search(text)
    if m:
        return m.group(0)[:40]
    if depth >= 2:
        return None
    for run in _BASE64_RUN.finditer(text):  # a PEM (or kubeconfig) base64-encoded, once or twice
        blob = run.group(0)
        try:
            decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue
        found = key_material_in_text(decoded, depth + 1)
        if found:
            return f"base64 of {found}"[:60]
    return None


def key_material(value: Any) -> str | None:
    """The first private-key marker anywhere in ``value``, or None."""
    for text in strings(value):
        found = key_material_in_text(text)
        if found:
            return found
    return None
