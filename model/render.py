"""Every Kubernetes object the stack applies, as one list (the render CLI and the round-trip test
use it; the stack declares the same builders' output), and the render's YAML.

The mTLS scenario's two Secrets render with placeholders unless their material comes from a
deployed stack (``render --stack S --secrets-from-stack``): the CLI runs
``pulumi stack output --json --show-secrets --stack S`` and reads the SECRET stack output
``mtlsSecretMaterial`` = {"clientChain": PEM (client certificate, then the intermediate),
"clientKey": PEM (the client's private key), "caBundle": PEM (intermediate, then root)} - exactly
what ``stacks/mtls.py`` puts into the Secrets - and ``proxyPublicIp`` for the backend address.
"""
from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from typing import Any

import yaml

import scenarios
from cilium_verdicts import PolicyInputError, Probe
from cilium_verdicts.mesh import ClusterObjects
from scenarios import mtls

from . import helm, local
from .settings import Settings, load_settings, shown

# Documented placeholder (TEST-NET-1, RFC 5737) for addresses not known offline.
PLACEHOLDER_ADDRESS = "192.0.2.10"

# The stack outputs ``--secrets-from-stack`` reads (the stack must export the first as a secret).
SECRET_MATERIAL_OUTPUT = "mtlsSecretMaterial"
SECRET_MATERIAL_KEYS = ("clientChain", "clientKey", "caBundle")
PROXY_ADDRESS_OUTPUT = "proxyPublicIp"
PULUMI_TIMEOUT_S = 120


def scenario_objects(settings: Settings, proxy_address: str, name: str,
                     mtls_material: dict[str, str] | None = None) -> list[dict]:
    """One scenario at its configured stage: its workloads, its secrets (placeholders unless
    ``mtls_material``), then the stage's objects - what the stack's Scenario component applies."""
    ctx = scenarios.Context(settings, proxy_address)
    pack = scenarios.pack(name)
    secrets = getattr(pack, "secret_objects", lambda c, m=None: [])(ctx, mtls_material)
    return [*pack.workloads(ctx), *secrets, *scenarios.stage(name, ctx, settings.stage_of(name)).objects]


def lab_objects(settings: Settings, proxy_address: str, mtls_material: dict[str, str] | None = None) -> list[dict]:
    """Everything the stack applies to the cluster: the platform's own policy objects (the egress
    proxy's guard), then every selected scenario at its stage."""
    platform = list(local.platform_objects(scenarios.Context(settings, proxy_address)))
    return platform + [o for name in settings.scenarios
                       for o in scenario_objects(settings, proxy_address, name, mtls_material)]


def has_placeholder_secrets(settings: Settings) -> bool:
    return any(hasattr(scenarios.pack(n), "secret_objects") for n in settings.scenarios)


def placeholder_warning() -> str:
    """Why the rendered mTLS Secrets are not usable as they are, and how to fill them."""
    names = " and ".join(mtls.sds_name(n) for n in (mtls.CLIENT_SECRET, mtls.CA_SECRET))
    return (f"the Secrets {names} carry placeholder data ({mtls.PLACEHOLDER!r}), not certificates: "
            "Envoy cannot originate mTLS with them. Fill them from a deployed stack with "
            "--stack <stack> --secrets-from-stack, or replace their data before applying.")


def scenario_objects_and_probes(name: str, stage: str | None) -> tuple[list[dict], list[Probe]]:
    """For ``verdicts --scenario NAME [--stage S]``: the pack's workloads, the platform's policy
    objects (the proxy guard) and the stage's objects, and its probes' traffic (default settings, the documented placeholder proxy address)."""
    try:
        ctx = scenarios.Context(load_settings({}, resolve_operator_cidr=False), PLACEHOLDER_ADDRESS)
        pack, st = scenarios.pack(name), scenarios.stage(name, ctx, stage)
    except ValueError as exc:
        raise PolicyInputError(f"--scenario/--stage: {exc}") from None
    if hasattr(pack, "cluster_objects"):  # a ClusterMesh pack: per-cluster objects (cilium_verdicts.mesh)
        objects = ClusterObjects(pack.cluster_objects(ctx, st, local.platform_objects(ctx)))
        objects.policy_default_local_cluster = pack.POLICY_DEFAULT_LOCAL_CLUSTER
        return objects, [lp.traffic for lp in pack.probes(ctx, st)]
    return ([*pack.workloads(ctx), *local.platform_objects(ctx), *st.objects],
            [lp.traffic for lp in pack.probes(ctx, st)])



class StackOutputError(ValueError):
    """The deployed stack's outputs cannot be read or lack the mTLS material (one line)."""


def read_stack_outputs(stack: str, project_dir, timeout: float = PULUMI_TIMEOUT_S) -> dict:
    """The stack's outputs, secrets in clear, from the Pulumi CLI run in the project directory
    (so Pulumi.yaml's backend and the usual PULUMI_* environment apply)."""
    flag = "--secrets-from-stack"
    exe = shutil.which("pulumi")
    if exe is None:
        raise StackOutputError(f"{flag}: the pulumi CLI is not on PATH; install it "
                               "(https://www.pulumi.com/docs/iac/download-install/) or render without "
                               f"{flag} (placeholder Secrets)")
    command = [exe, "stack", "output", "--json", "--show-secrets", "--stack", stack, "--non-interactive"]
    try:
        run = subprocess.run(command, cwd=project_dir, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise StackOutputError(f"{flag}: `pulumi stack output --stack {shown(stack)}` did not answer "
                               f"within {timeout:.0f} s") from None
    except OSError as exc:
        raise StackOutputError(f"{flag}: cannot run {exe}: {exc}") from None
    if run.returncode != 0:
        lines = [ln.strip() for ln in run.stderr.splitlines() if ln.strip()]
        reason = shown(lines[-1] if lines else f"exit {run.returncode}", 200)
        if "no stack named" in run.stderr:
            raise StackOutputError(f"{flag}: stack {shown(stack)} does not exist in this project's backend "
                                   f"(pulumi: {reason}); deploy it first (pulumi stack select/init, "
                                   "the mtls scenario in scenarios, pulumi up)")
        raise StackOutputError(f"{flag}: `pulumi stack output --stack {shown(stack)}` failed "
                               f"(exit {run.returncode}): {reason}")
    try:
        outputs = json.loads(run.stdout)
    except ValueError:
        raise StackOutputError(f"{flag}: `pulumi stack output --json` did not print JSON: "
                               f"{shown(run.stdout.strip())}") from None
    if not isinstance(outputs, dict):
        raise StackOutputError(f"{flag}: `pulumi stack output --json` printed {shown(outputs)}, not an object")
    return outputs


def secrets_from_outputs(stack: str, outputs: dict) -> dict[str, str]:
    """The mTLS material of the stack output ``mtlsSecretMaterial`` (the scenario builds the two
    Secrets from it with the same builders as the stack: ``mtls.tls_secret`` / ``mtls.ca_secret``)."""
    flag = "--secrets-from-stack"
    if SECRET_MATERIAL_OUTPUT not in outputs:
        raise StackOutputError(
            f"{flag}: stack {shown(stack)} has no output {SECRET_MATERIAL_OUTPUT}; deploy the mTLS scenario "
            "first: pulumi config set --path 'scenarios[1]' mtls && pulumi up")
    material = outputs[SECRET_MATERIAL_OUTPUT]
    accepted = (f"accepted: a secret object {{{', '.join(SECRET_MATERIAL_KEYS)}}} of PEM strings")
    if not isinstance(material, dict):
        raise StackOutputError(f"{flag}: output {SECRET_MATERIAL_OUTPUT} of stack {shown(stack)} is "
                               f"{shown(material)}; {accepted}")
    problems = []
    for key in SECRET_MATERIAL_KEYS:
        value = material.get(key)
        if value is None:
            problems.append(f"{key} is missing")
        elif not isinstance(value, str) or "-----BEGIN " not in value or "-----END " not in value:
            problems.append(f"{key} is {shown(value)}, not PEM")
    if problems:
        raise StackOutputError(f"{flag}: output {SECRET_MATERIAL_OUTPUT} of stack {shown(stack)}: "
                               f"{'; '.join(problems)}; {accepted}")
    return {k: material[k] for k in SECRET_MATERIAL_KEYS}


def address_from_outputs(outputs: dict) -> str | None:
    """The proxy (and mTLS backend) address the stack deployed, if it exported a valid one."""
    try:
        return str(ipaddress.IPv4Address(outputs.get(PROXY_ADDRESS_OUTPUT)))
    except (ValueError, TypeError):
        return None


def helm_command(settings: Settings, values_for: str) -> str:
    """How to apply the Helm values of ``values_for`` (a ``helm.HELM_TARGETS`` entry)."""
    if values_for == "existing":  # merge into the cluster's own release, keep its version
        return ("helm upgrade cilium cilium/cilium -n kube-system --version <the cluster's Cilium version> "
                "--reuse-values -f values.yaml")
    return (f"helm upgrade --install cilium cilium/cilium --version {settings.cilium_version} "
            "-n kube-system -f values.yaml")


_AUDIENCE = {"kind": "the lab's kind cluster", "existing": "an existing Cilium >= 1.16 cluster"}


def values_yaml(settings: Settings, values_for: str = "kind") -> str:
    """Only the Helm values of ``values_for``, as a file for ``helm -f`` (render --values-only)."""
    values = yaml.safe_dump(helm.helm_values(settings, target=values_for), sort_keys=False)
    return (f"# Cilium Helm values for {_AUDIENCE[values_for]} (python -m model render --values-only "
            f"--values-for {values_for}):\n# {helm_command(settings, values_for)}\n{values}")


def render_yaml(settings: Settings, proxy_address: str, values_for: str = "kind",
                mtls_material: dict[str, str] | None = None, secrets_stack: str | None = None) -> str:
    """The whole render: a comment (Helm values, proxy address, scenarios and stages, what the
    Secrets hold), then the objects. ``mtls_material`` is read from stack ``secrets_stack``, if any."""
    values = yaml.safe_dump(helm.helm_values(settings, target=values_for), sort_keys=False).rstrip()
    header = [
        "# cilium-egress-lab manifests (python -m model render). Apply after Cilium is installed:",
        f"# Helm values for {_AUDIENCE[values_for]} (--values-for {values_for}):",
        f"# {helm_command(settings, values_for)}, with these values:",
        *("#   " + line for line in values.splitlines()),
        f"# proxy address: {proxy_address}",
        "# scenarios (stage): " + ", ".join(f"{n} ({settings.stage_of(n) or 'last'})" for n in settings.scenarios),
        *platform_note(settings, proxy_address),
    ]
    if has_placeholder_secrets(settings) and mtls_material is None:
        lines = _wrap(placeholder_warning())
        header += ["# WARNING: " + lines[0], *("#          " + line for line in lines[1:])]
    elif has_placeholder_secrets(settings):
        header += [f"# The mTLS Secrets hold stack {secrets_stack}'s client certificate and PRIVATE KEY "
                   "(--secrets-from-stack):", "# keep this file out of version control in clear "
                   "(seal or encrypt the Secrets)."]
    body = yaml.safe_dump_all(lab_objects(settings, proxy_address, mtls_material), sort_keys=False)
    return "\n".join(header) + "\n---\n" + body


def platform_note(settings: Settings, proxy_address: str) -> list[str]:
    """Header lines on what the platform adds: local's egress lock (below, commented out, while
    restrictEgress is false; among the objects when true), existing's lack of platform policies."""
    if settings.platform == "existing":
        return ["# platform existing: no platform policy is applied (no proxy guard, no lock); scenarios only"]
    if settings.platform != "local":
        return [f"# platform {settings.platform}"]
    lock_policy = local.lock_policy
    if settings.restrict_egress:
        return [f"# platform local: restrictEgress=true, so the egress lock (CiliumClusterwideNetworkPolicy "
                f"{lock_policy(settings, proxy_address)['metadata']['name']}) is among the objects below"]
    lock = yaml.safe_dump(lock_policy(settings, proxy_address), sort_keys=False).rstrip()
    return ["# platform local: restrictEgress=true would add this egress lock (not applied now):",
            *("#   " + line for line in lock.splitlines())]


def _wrap(text: str, width: int = 96) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width)


def parse_assignment(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ValueError(f"--set {shown(text)}: expected key=value")
    key, value = text.split("=", 1)
    return key.strip(), value
