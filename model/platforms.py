"""Platforms: where the lab runs (config ``platform``), what each offers the scenario packs, and the
checks each runs at program time, before any resource is declared. Pure: the tools and the cluster
are reached only through an injected ``which`` (shutil.which) and ``run`` (argv -> Completed).

- ``aws``: today's stack - two EC2 hosts (kind + Cilium, the egress proxy / mTLS backend), the
  security-group lock.
- ``local``: kind on the user's Docker or Podman, created and deleted by local commands; the egress
  proxy as a container on kind's network and the mTLS backend in that container's network namespace
  (one address, as the proxy host is on aws); the lock is a CiliumClusterwideNetworkPolicy (model.local).
- ``existing``: a cluster the user already runs Cilium >= 1.16 on (``kubeconfigPath``,
  ``kubeContext``): the stack adds scenarios and probes only, never creates or deletes the cluster.

A scenario pack states what it needs (``NEEDS``; plus what its stages' objects need, derived here);
a platform offers pieces (``OFFERS``); a pair that cannot work is refused by ``needs_problems``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from scenarios import PACKS, pack

PLATFORMS = ("aws", "local", "existing")
DEFAULT_PLATFORM = "aws"

# Pieces a scenario can need, and what each means to the user.
PIECES = {
    "proxy": "the egress proxy host (squid) the stack creates",
    "mtls-backend": "the mTLS backend (and its PKI) the stack creates",
    "egress-lock": "an egress lock the stack controls (restrictEgress)",
    "envoy-config": "Cilium's envoyConfig (CiliumEnvoyConfig/CiliumClusterwideEnvoyConfig)",
    "kube-proxy-replacement": "Cilium's kube-proxy replacement or nodePort (CEC redirects need it)",
}
# What the stack itself provides on each platform. On ``existing`` the cluster decides envoyConfig and
# kube-proxy replacement: they are checked there (existing_preflight), not offered.
OFFERS: dict[str, frozenset[str]] = {
    "aws": frozenset({"proxy", "mtls-backend", "egress-lock", "envoy-config", "kube-proxy-replacement"}),
    "local": frozenset({"proxy", "mtls-backend", "egress-lock", "envoy-config", "kube-proxy-replacement"}),
    "existing": frozenset({"envoy-config", "kube-proxy-replacement"}),  # if the cluster has them (checked)
}
ENVOY_KINDS = ("CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig")
MIN_CILIUM = (1, 16, 0)
# The node label a local kind cluster carries: which stack created it (model.userdata.kind_cluster_config).
OWNER_LABEL = "cilium-egress-lab/stack"
PLATFORM_OUTPUT = "platform"  # the stack output recording the platform (switching is refused)


def pack_needs(name: str, ctx) -> frozenset[str]:
    """A pack's ``NEEDS`` plus what its stages' objects need from Cilium: a CEC/CCEC in any stage
    needs envoyConfig and kube-proxy replacement (or nodePort) (DESIGN.md §5a)."""
    p = pack(name)
    derived = set()
    if any(o.get("kind") in ENVOY_KINDS for st in p.stages(ctx) for o in st.objects):
        derived |= {"envoy-config", "kube-proxy-replacement"}
    return frozenset(p.NEEDS) | derived


def needs_problems(platform: str, scenarios: Iterable[str], restrict_egress: bool) -> list[str]:
    """One line per impossible (platform, scenario) pair, naming both and what to do; ``restrictEgress``
    needs the egress lock. Only the packs' declared ``NEEDS`` (pure config, no objects built)."""
    offers = OFFERS[platform]
    problems = []
    fits = [n for n, p in PACKS.items() if not (set(p.NEEDS) - offers)]  # (no two-cluster pack fits)
    others = [p for p in PLATFORMS if p != platform]
    for name in scenarios:
        # only the pieces named here: a ClusterMesh pack's two clusters are refused by
        # scenarios.multi_cluster_refusals, on every platform that builds one cluster
        missing = sorted((set(PACKS[name].NEEDS) & set(PIECES)) - offers)
        if missing:
            what = "; ".join(f"{m} ({PIECES[m]})" for m in missing)
            ok_on = [p for p in others if not ((set(PACKS[name].NEEDS) & set(PIECES)) - OFFERS[p])]
            problems.append(
                f"scenarios: {name!r} needs {what}, which platform {platform!r} does not offer; run it with "
                f"platform {' or '.join(repr(p) for p in ok_on)}, or choose scenarios from: {', '.join(fits)}")
    if restrict_egress and "egress-lock" not in offers:
        problems.append(f"restrictEgress: true needs egress-lock ({PIECES['egress-lock']}), which platform "
                        f"{platform!r} does not offer; set restrictEgress false")
    return problems


def config_problems(platform: str, kubeconfig_path: str | None, kube_context: str | None,
                    scenarios: Iterable[str] | None, restrict_egress: bool | None, accepted: Mapping[str, str],
                    shown: Callable[[object], str]) -> list[str]:
    """The platform's own keys (kubeconfigPath required on existing, refused elsewhere) and
    needs_problems; ``accepted``: each key's accepted values (model.settings), ``shown``: its echo."""
    errors = []
    if platform == "existing" and kubeconfig_path == "":
        errors.append("kubeconfigPath: required with platform 'existing' (pulumi config set kubeconfigPath "
                      "~/.kube/config); accepted: " + accepted["kubeconfigPath"])
    for key, value in (("kubeconfigPath", kubeconfig_path), ("kubeContext", kube_context)):
        if platform != "existing" and value:
            errors.append(f"{key}: {shown(value)} is only used with platform 'existing' (platform is "
                          f"{platform!r}): pulumi config rm {key}; accepted: {accepted[key]}")
    if scenarios is not None and restrict_egress is not None:
        errors += needs_problems(platform, scenarios, restrict_egress)
    return errors


def recorded_platform(outputs: Mapping[str, object]) -> str | None:
    """The platform a deployed stack runs on: its ``platform`` output; a stack deployed before
    platforms existed (outputs, none of them ``platform``) runs on aws; no outputs: none yet."""
    if PLATFORM_OUTPUT in outputs:
        return str(getattr(outputs[PLATFORM_OUTPUT], "value", outputs[PLATFORM_OUTPUT]))
    return "aws" if outputs else None


class PlatformSwitchRefused(RuntimeError):
    """The stack exists on one platform and its config now names another."""


def refuse_switch(outputs: Mapping[str, object], configured: str) -> None:
    problem = check_switch(recorded_platform(outputs), configured)
    if problem:
        raise PlatformSwitchRefused(problem)


def refuse_stack_switch(stack, project: str) -> None:
    """Before any preview or update (stacks.automation): an automation-API stack that exists keeps its
    platform (its config's ``<project>:platform`` against its outputs)."""
    raw = stack.get_all_config().get(f"{project}:platform")
    refuse_switch(stack.outputs(), getattr(raw, "value", raw) or DEFAULT_PLATFORM)


def check_switch(recorded: str | None, configured: str) -> str | None:
    """A stack that exists records its platform (stack output ``platform``): switching would replace
    everything, so it is refused."""
    if recorded and recorded != configured:
        return (f"platform: this stack was deployed with platform {recorded!r}; switching it to {configured!r} "
                f"would delete everything on {recorded!r} and start again. Destroy the stack first "
                f"(pulumi destroy), or use another stack (pulumi stack init) for {configured!r}")
    return None


# ------------------------------------------------------------------------------------------- preflight
@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str = ""
    stderr: str = ""


Run = Callable[[Sequence[str]], Completed]
Which = Callable[[str], "str | None"]


class PreflightError(RuntimeError):
    """Raised with every problem found, one line each; nothing has been created."""

    def __init__(self, platform: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"platform {platform!r} is not ready ({len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''}); nothing was created:\n{lines}")


TOOL_HELP = {
    "docker": "install Docker (https://docs.docker.com/engine/install/) or Podman (https://podman.io/docs/installation) "
              "and make sure its CLI is on PATH",
    "kind": "install kind v0.30.0 (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/)",
    "helm": "install Helm 3 (https://helm.sh/docs/intro/install/)",
}


def container_engine(which: Which) -> str | None:
    """``docker``, else ``podman`` (kind then needs KIND_EXPERIMENTAL_PROVIDER=podman), else None."""
    return next((t for t in ("docker", "podman") if which(t)), None)


def missing_tools(which: Which, tools: Iterable[str]) -> list[str]:
    problems = []
    for tool in tools:
        if tool == "docker":
            if container_engine(which) is None:
                problems.append(f"neither docker nor podman is on PATH: {TOOL_HELP['docker']}")
        elif not which(tool):
            problems.append(f"{tool} is not on PATH: {TOOL_HELP[tool]}")
    return problems


LOCAL_TOOLS = ("docker", "kind", "kubectl", "helm")


def kind_env(engine: str | None) -> dict[str, str]:
    return {"KIND_EXPERIMENTAL_PROVIDER": "podman"} if engine == "podman" else {}


def local_preflight(cluster: str, owner: str, which: Which, run: Run) -> None:
    """Before any resource on ``local``: every tool on PATH, and no kind cluster named ``cluster``
    that this stack (``owner``, the value of OWNER_LABEL on its node) did not create."""
    problems = missing_tools(which, LOCAL_TOOLS)
    if problems:
        raise PreflightError("local", problems)
    engine = container_engine(which)
    kind = ["env", *(f"{k}={v}" for k, v in kind_env(engine).items()), "kind"] if kind_env(engine) else ["kind"]
    listed = run([*kind, "get", "clusters"])
    if listed.returncode != 0:
        raise PreflightError("local", [f"`kind get clusters` failed ({listed.stderr.strip()[-300:]}): is the "
                                       f"{engine} daemon running?"])
    # kind v0.30.0 prints one name per line on stdout, "No kind clusters found." on stderr when none
    # (pkg/cmd/kind/get/clusters/clusters.go)
    if cluster in listed.stdout.split():
        nodes = run(["kubectl", "--context", f"kind-{cluster}", "get", "nodes", "-l", f"{OWNER_LABEL}={owner}",
                     "-o", "name"])
        if nodes.returncode != 0 or not nodes.stdout.strip():
            raise PreflightError("local", [
                f"a kind cluster named {cluster!r} already exists and this stack did not create it (no node "
                f"labelled {OWNER_LABEL}={owner}): the stack will not take it over or delete it. Delete it "
                f"yourself (kind delete cluster --name {cluster}) if you no longer need it, or run this stack "
                f"where no such cluster exists"])


def kubectl_args(kubeconfig: str, context: str | None) -> list[str]:
    return ["kubectl", "--kubeconfig", kubeconfig, *(["--context", context] if context else [])]


def parse_cilium_version(image: str) -> tuple[int, int, int] | None:
    """``quay.io/cilium/cilium:v1.18.10@sha256:...`` -> (1, 18, 10)."""
    m = re.search(r":v?(\d+)\.(\d+)\.(\d+)", image)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "strict")


def existing_preflight(kubeconfig: str, context: str | None, needs: frozenset[str], namespaces: Iterable[str],
                       lab_label: tuple[str, str], run: Run, which: Which) -> None:
    """Before any resource on ``existing``: the cluster answers with this kubeconfig/context; Cilium
    (DaemonSet kube-system/cilium) runs at >= 1.16; envoyConfig and kube-proxy replacement (or
    nodePort) are on when a scenario needs them (cilium-config); no namespace the scenarios create
    exists without the lab's label (the stack never adopts or changes one it did not create)."""
    problems = missing_tools(which, ("kubectl",))
    if problems:
        raise PreflightError("existing", problems)
    k = kubectl_args(kubeconfig, context)
    where = f"kubeconfigPath {kubeconfig!r}" + (f", kubeContext {context!r}" if context else "")
    reach = run([*k, "version", "-o", "json"])
    if reach.returncode != 0 or '"serverVersion"' not in reach.stdout:
        raise PreflightError("existing", [f"the cluster is not reachable with {where}: "
                                          f"{(reach.stderr or reach.stdout).strip()[-300:]}"])
    ds = run([*k, "-n", "kube-system", "get", "daemonset", "cilium", "-o",
              "jsonpath={.spec.template.spec.containers[0].image}"])
    version = parse_cilium_version(ds.stdout) if ds.returncode == 0 else None
    if ds.returncode != 0:
        problems.append(f"Cilium is not installed on the cluster at {where} (no DaemonSet kube-system/cilium): "
                        f"install Cilium >= {'.'.join(map(str, MIN_CILIUM))} or use platform 'local'")
    elif version is None:
        problems.append(f"Cilium's version could not be read from its image {ds.stdout.strip()!r}; the lab needs "
                        f">= {'.'.join(map(str, MIN_CILIUM))}")
    elif version < MIN_CILIUM:
        problems.append(f"Cilium {'.'.join(map(str, version))} runs on the cluster; the lab needs >= "
                        f"{'.'.join(map(str, MIN_CILIUM))}: upgrade Cilium")
    if ds.returncode == 0 and needs & {"envoy-config", "kube-proxy-replacement"}:
        cm = run([*k, "-n", "kube-system", "get", "configmap", "cilium-config", "-o", "json"])
        data = json.loads(cm.stdout).get("data", {}) if cm.returncode == 0 and cm.stdout.strip() else {}
        if "envoy-config" in needs and not _true(data.get("enable-envoy-config")):
            problems.append("Cilium's envoyConfig is off (cilium-config enable-envoy-config is not true) and a "
                            "scenario needs CiliumEnvoyConfig: helm upgrade cilium with --set envoyConfig.enabled=true")
        if "kube-proxy-replacement" in needs and not (_true(data.get("kube-proxy-replacement"))
                                                        or _true(data.get("enable-node-port"))):
            problems.append("Cilium's kube-proxy replacement is off (cilium-config kube-proxy-replacement and "
                            "enable-node-port are not true) and a scenario needs it: enable kubeProxyReplacement "
                            "or nodePort.enabled")
    key, value = lab_label
    for ns in sorted(set(namespaces)):
        got = run([*k, "get", "namespace", ns, "-o", "json"])
        if got.returncode != 0:
            continue  # does not exist: the stack creates it
        labels = (json.loads(got.stdout or "{}").get("metadata", {}).get("labels") or {})
        if labels.get(key) != value:
            problems.append(f"namespace {ns!r} already exists on the cluster and the lab did not create it (no "
                            f"label {key}={value}): the stack will not adopt or change it; remove the scenario "
                            f"that uses it or use another cluster")
    if problems:
        raise PreflightError("existing", problems)


# ------------------------------------------------------------------------------- acceptance runs
EXISTING_KUBECONFIG_VAR = "LAB_EXISTING_KUBECONFIG"   # the existing-platform acceptance run's cluster
EXISTING_CONTEXT_VAR = "LAB_EXISTING_CONTEXT"


def acceptance_problems(platform: str, env: Mapping[str, str], which: Which) -> str | None:
    """None when an acceptance run on ``platform`` (local, existing) can run here, else why not: the
    pulumi CLI and the platform's tools on PATH; existing also needs LAB_EXISTING_KUBECONFIG."""
    reasons = [] if which("pulumi") else ["no `pulumi` CLI on PATH: install it "
                                           "(https://www.pulumi.com/docs/iac/download-install/)"]
    reasons += missing_tools(which, LOCAL_TOOLS if platform == "local" else ("kubectl",))
    if platform == "existing" and not env.get(EXISTING_KUBECONFIG_VAR):
        reasons.append(f"no {EXISTING_KUBECONFIG_VAR}: set it to the kubeconfig of a cluster running Cilium >= 1.16 "
                       f"(and {EXISTING_CONTEXT_VAR} to a context, optionally)")
    if not reasons:
        return None
    return reasons[0] + (f" (also: {'; '.join(reasons[1:])})" if len(reasons) > 1 else "")
