"""Probes on the cluster: every LabProbe of a scenario's stage, run as curl from its source pod on
the kind host, and judged against what the offline evaluator predicts for that stage's objects,
plus what only the platform decides (DESIGN.md §8):

- the egress lock: an allowed connection to the world that does not go through an Envoy listener
  leaves the kind host directly, so the security group decides (model.security_groups);
- the listener: a connection redirected into Envoy goes where Envoy sends it (the egress proxy, the
  mTLS backend) - the scenario's application check looks at that (proxy log, echo);
- the destination itself: a server may refuse what the network let through (``server_answer``).

Nothing here is a hand-written matrix: ``plan`` derives every expectation. Observations use the
verdict vocabulary of cilium-cli's connectivity test, extended by what curl can see beyond it:

- ``allow``:    curl exited 0 (an HTTP answer other than 403, or a bare TCP connection);
- ``l7-deny``:  HTTP 403 (Envoy's "Access denied" for an L7 rule);
- ``drop``:     exit 28, a timeout (policy or security group dropped the packets);
- ``dns-fail``: exit 6, the name did not resolve (Cilium's DNS proxy refused it);
- ``refused``:  exit 7/35/52/56, refused or reset by the far end (a proxy or server said no);
- ``error``:    anything else (the probe itself failed).
"""
from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

import scenarios
from cilium_verdicts import ALLOW, DNS_FAIL, DROP, L7_DENY, Cluster, Verdict, evaluate
from cilium_verdicts.mesh import Mesh
from cilium_verdicts.verdict import WORLD_DEFAULT_IP
from scenarios.base import PROBE_CONTAINER_ANNOTATION, Context, LabProbe, Stage

from . import local, remote, security_groups
from .addresses import host_address
from .network import host_cidr
from .outcome import classify

REFUSED, ERROR = "refused", "error"
OUTCOMES = (ALLOW, DROP, L7_DENY, DNS_FAIL, REFUSED, ERROR)
PROXY_LOG, MTLS_ECHO = "proxy-log", "mtls-echo"


@dataclass(frozen=True)
class Observation:
    http_code: str
    curl_exit: int | None
    detail: str = ""
    body: str = ""
    remote_ip: str = ""           # the address curl connected to (last hop)
    attempts: int = 1             # probe attempts within the convergence window
    elapsed_s: float = 0.0
    history: tuple = ()           # ({"t", "outcome", "http_code", "curl_exit"}, ...)
    started_at: float = 0.0       # epoch seconds when the last attempt began (0: unknown)

    @property
    def outcome(self) -> str:
        return classify(self.http_code, self.curl_exit)


def parse(stdout: str) -> Observation:
    """The one JSON line a probe prints (model.remote.probe_command)."""
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip().startswith("{")]
    if not lines:
        return Observation("", None, f"no probe output: {stdout.strip()[:200]!r}")
    d = json.loads(lines[-1])
    return Observation(str(d.get("http_code", "")), d.get("curl_exit"), str(d.get("error", "")),
                       str(d.get("body", "")), str(d.get("remote_ip", "")), int(d.get("attempts", 1)),
                       float(d.get("elapsed_s", 0.0)), tuple(d.get("history", ())),
                       float(d.get("started_at") or 0.0))


# ------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class Planned:
    scenario: str
    stage: str
    probe: LabProbe
    verdict: Verdict      # the evaluator's, for the stage's objects
    expected: str         # what curl should observe (one of OUTCOMES)
    why: tuple[str, ...]  # the evaluator's chain, then the platform's part
    check: str | None     # the application check that applies (only through a listener)

    @property
    def name(self) -> str:
        return f"{self.scenario}-{self.probe.key}"

    def cell(self) -> dict[str, Any]:
        """The probe in the verdicts CLI's JSON contract (DESIGN.md §8, issue 13)."""
        t = self.probe.traffic
        return {"from": t.source, "to": t.to, "port": t.port, "protocol": t.protocol, "via": t.via,
                "request": t.request, "verdict": self.verdict.verdict, "egress": self.verdict.egress,
                "ingress": self.verdict.ingress, "why": list(self.why)}


@dataclass(frozen=True)
class Plan:
    scenario: str
    stage: Stage
    workloads: tuple[dict, ...]
    probes: tuple[Planned, ...]


def _world_address(p) -> str:
    """The address a world probe dials: its host if that is an address (read by
    ``model.addresses.host_address``, the parser the settings check used), else what the name
    resolves to."""
    host = p.to.split(":", 1)[1]
    address = host_address(host)
    return str(address) if address is not None else (p.address or WORLD_DEFAULT_IP)


def expected_outcome(v: Verdict, lp: LabProbe, ctx: Context) -> tuple[str, tuple[str, ...]]:
    """What curl should see, given the evaluator's verdict: the platform's part (lock, listener,
    destination) and the reason, for the explanation chain."""
    if v.verdict != ALLOW:
        return v.verdict, ()
    if v.listener:
        return ALLOW, (f"through {v.listener}: Envoy carries it on (the scenario's check looks at the far end)",)
    if lp.traffic.to.startswith("world:"):
        dest = _world_address(lp.traffic)
        rules = security_groups.kind_egress(ctx.settings, host_cidr(ctx.proxy_address))
        proto = {"TCP": "tcp", "UDP": "udp"}.get(lp.traffic.protocol, lp.traffic.protocol.lower())
        if not security_groups.allows(rules, proto, dest, lp.traffic.port):
            return DROP, (f"leaves the kind host directly to {dest}:{lp.traffic.port}: the security group "
                          f"drops it ({'locked' if ctx.settings.restrict_egress else 'no rule'}): drop",)
    if lp.server_answer == REFUSED:
        return REFUSED, ("the network lets it through, and the destination itself refuses it: refused",)
    return ALLOW, ()


def plan(name: str, ctx: Context, stage_name: str | None = None) -> Plan:
    """Every probe of scenario ``name`` at ``stage_name`` (default: the last), with its expected
    outcome: the evaluator on the scenario's workloads, the platform's own policy objects and the
    stage's objects, then the platform's network."""
    pack = scenarios.pack(name)
    st = scenarios.stage(name, ctx, stage_name)
    workloads = tuple(pack.workloads(ctx))
    if hasattr(pack, "cluster_objects"):  # ClusterMesh: each cluster's objects, verdicts in the source's cluster
        mesh = Mesh.from_objects(pack.cluster_objects(ctx, st, local.platform_objects(ctx)),
                                 policy_default_local_cluster=pack.POLICY_DEFAULT_LOCAL_CLUSTER)
        judge_one = lambda t: mesh.evaluate(t)[1]  # noqa: E731
    else:
        cluster = Cluster.from_objects([*workloads, *local.platform_objects(ctx), *st.objects])
        judge_one = lambda t: evaluate(cluster, t)  # noqa: E731
    out = []
    for lp in pack.probes(ctx, st):
        v = judge_one(lp.traffic)
        expected, more = expected_outcome(v, lp, ctx)
        check = lp.check if (lp.check and v.listener and expected == ALLOW) else None
        out.append(Planned(name, st.name, lp, v, expected, (*v.why, *more), check))
    keys = [p.probe.key for p in out]
    if len(set(keys)) != len(keys):
        raise ValueError(f"scenario {name}: two probes share a name: {sorted(k for k in keys if keys.count(k) > 1)}")
    return Plan(name, st, workloads, tuple(out))


# --------------------------------------------------------------------------------- on the kind host
def _workload(workloads: Iterable[dict], ref: str) -> dict:
    ns, name = ref.split("/", 1)
    for obj in workloads:
        meta = obj.get("metadata", {})
        if obj.get("kind") in ("Pod", "Deployment", "StatefulSet", "DaemonSet") and \
                (meta.get("namespace"), meta.get("name")) == (ns, name):
            return obj
    raise ValueError(f"no workload {ref} among the scenario's objects")


def exec_target(obj: dict) -> tuple[str, str]:
    """``(kubectl exec target, container)`` of a workload: ``deploy/x``, ``sts/x``, ``ds/x`` or the
    pod's name; the container named by the probe-container annotation, else the first."""
    prefix = {"Deployment": "deploy/", "StatefulSet": "sts/", "DaemonSet": "ds/", "Pod": ""}[obj["kind"]]
    spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    container = (obj["metadata"].get("annotations") or {}).get(PROBE_CONTAINER_ANNOTATION) or spec["containers"][0]["name"]
    return prefix + obj["metadata"]["name"], container


def _selector(obj: dict) -> str:
    labels = obj["metadata"].get("labels", {}) if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]["labels"]
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def url_expression(planned: Planned, workloads: tuple[dict, ...], kubectl: str = remote.KUBECTL) -> str:
    """The URL curl fetches, as a shell word evaluated on the kind host at each attempt (service and
    pod addresses are looked up there: they exist only once the cluster runs)."""
    lp, t = planned.probe, planned.probe.traffic
    if lp.url:
        return shlex.quote(lp.url)
    path = t.request.split(" ", 1)[1] if t.request else ""
    scheme = "telnet" if t.request is None else ("https" if t.port == 443 else "http")
    if t.to.startswith("world:"):
        host = t.to.split(":", 1)[1]
    else:
        ns, name = t.to.split("/", 1)
        dest = _workload(workloads, t.to)
        if t.via == "service-name":
            svc, _ = Cluster.from_objects(workloads).service_port(
                Cluster.from_objects(workloads).workload(t.to), t.port, t.protocol, t.service)
            host = f"{svc.name}.{ns}"
        elif t.via == "service-ip":
            svc, _ = Cluster.from_objects(workloads).service_port(
                Cluster.from_objects(workloads).workload(t.to), t.port, t.protocol, t.service)
            host = f"$({kubectl} -n {shlex.quote(ns)} get svc {shlex.quote(svc.name)} -o jsonpath='{{.spec.clusterIP}}')"
        else:  # pod-ip
            host = (f"$({kubectl} -n {shlex.quote(ns)} get pods -l {shlex.quote(_selector(dest))} "
                    f"--field-selector=status.phase=Running -o jsonpath='{{.items[0].status.podIP}}')")
    return f'"{scheme}://{host}:{t.port}{path}"'


def command(planned: Planned, workloads: tuple[dict, ...], window_s: int, kubectl: str = remote.KUBECTL,
            label_traffic: Any = None) -> str:
    """The command of one probe: (setup), then curl from the source pod until the expected outcome is
    seen or the window ends; prints one JSON line (model.remote.probe_command). ``kubectl``: the
    kind host's (aws, over SSH) or the user's own (local, existing: run on the user's machine)."""
    lp, t = planned.probe, planned.probe.traffic
    source = _workload(workloads, t.source)
    target, container = exec_target(source)
    ns = t.source.split("/", 1)[0]
    method = t.request.split(" ", 1)[0] if t.request else "GET"
    args = (*lp.curl_args, *(("-X", method) if method not in ("GET", "HEAD") else ()))
    run = remote.exec_curl(ns, target, container, url_expression(planned, workloads, kubectl), args,
                           body=planned.check == MTLS_ECHO, kubectl=kubectl)
    setup = remote.rollout_restart(ns, target, kubectl=kubectl) if lp.setup == "rollout-restart" else ""
    # label_traffic: what the result reports, when it differs from the ids used here (mesh: ns/name@cluster)
    label = {"scenario": planned.scenario, "probe": planned.name, "traffic": asdict(label_traffic or t)}
    return remote.probe_command(label, run, expect=planned.expected, window_s=window_s, setup=setup)


# ----------------------------------------------------------------------------------------- judge
def _hint(p: Planned, obs: Observation) -> str:
    t = p.probe.traffic
    if p.expected == DROP and obs.outcome == ALLOW and t.to.startswith("world:") and p.verdict.verdict == ALLOW:
        return f"locked but {t.source} reached {t.to} directly: are the egress rules applied?"
    if p.verdict.listener and obs.outcome != ALLOW:
        return (f"is {p.verdict.listener} loaded (cilium-envoy logs), and does the far end (proxy, backend) "
                "accept it?")
    if p.expected in (DROP, L7_DENY, DNS_FAIL) and obs.outcome == ALLOW:
        return f"is the stage's policy applied (kubectl get netpol,cnp,ccnp -A) and selecting {t.source}?"
    if p.expected == ALLOW and obs.outcome in (DROP, DNS_FAIL):
        return "is DNS working in the cluster, and is nothing else (an old policy, the lock) in the way?"
    return ""


def convergence(obs: Observation) -> str:
    seen = ", ".join(f"{h.get('outcome')}@{h.get('t')}s" for h in obs.history[-6:])
    return f"after {obs.attempts} attempt{'s' if obs.attempts != 1 else ''} in {obs.elapsed_s} s" + (
        f" ({seen})" if seen else "")


def judge(p: Planned, obs: Observation, settings: Any) -> dict[str, Any]:
    """One verification cell: the JSON contract plus expected/observed/ok/message."""
    problems = [] if obs.outcome == p.expected else [
        f"expected {p.expected}, observed {obs.outcome} (http_code {obs.http_code or '-'}, curl exit "
        f"{obs.curl_exit}{', ' + obs.detail if obs.detail else ''}) {convergence(obs)}"]
    if not problems and p.check == MTLS_ECHO:
        problems = scenarios.pack(p.scenario).check(p.check, settings, obs.body)
    label = f"{p.probe.traffic.source}->{p.probe.traffic.to}:{p.probe.traffic.port}"
    message = (f"{p.name}: {obs.outcome} as expected" if not problems else
               f"{p.name} ({label}): {'; '.join(problems)}. {_hint(p, obs)}".rstrip())
    return {**p.cell(), "probe": p.name, "expected": p.expected, "observed": obs.outcome,
            "http_code": obs.http_code, "curl_exit": obs.curl_exit, "remote_ip": obs.remote_ip,
            "attempts": obs.attempts, "elapsed_s": obs.elapsed_s, "ok": not problems, "message": message}


# ------------------------------------------------------------------------------------ proxy evidence
def proxy_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def connect_target(probe_stdout: str, port: int) -> str:
    """``<ip>:<port>`` the probe's curl connected to (Envoy CONNECTs to exactly that original
    destination), or "" when it never connected."""
    ip = parse(probe_stdout).remote_ip
    return f"{ip}:{port}" if ip else ""


def judge_proxy(p: Planned, stdout: str) -> dict[str, Any]:
    """Did the proxy log a CONNECT from the kind host for the probe's connection? Envoy CONNECTs
    TLS by its SNI name (``<name>:443``) and plain HTTP by the original address (``<ip>:80``)."""
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip().startswith("{")]
    host = p.probe.traffic.to.split(":", 1)[1]
    if not lines:
        return {"probe": p.name, "ok": False, "connects": [], "message": f"no proxy-log output: {stdout.strip()[:200]!r}"}
    data = json.loads(lines[-1])
    connects, targets = data.get("connects", []), [t for t in data.get("targets", []) if t]
    if not targets:
        return {"probe": p.name, "ok": False, "connects": connects,
                "message": f"{p.name}: the probe to {host} never connected, so there is no CONNECT to look for"}
    hits = [t for t in targets if t in connects]
    if hits:
        return {"probe": p.name, "ok": True, "connects": connects,
                "message": f"proxy logged CONNECT {hits[-1]} ({host}) from the kind host"}
    return {"probe": p.name, "ok": False, "connects": connects,
            "message": f"proxy logged no CONNECT {' or '.join(targets)} for {host} from the kind host after "
                       f"{data.get('attempts', 1)} looks: is the CiliumEnvoyConfig tunnelling to the proxy?"}


def evidence_targets(p: Planned, probe_stdout: str) -> list[str]:
    """What the proxy log must show for ``p``: ``<SNI name>:<port>`` for TLS (the SNI chain) and
    ``<remote ip>:<port>`` (the plain-HTTP chain, or a proxy that logs addresses)."""
    host, port = p.probe.traffic.to.split(":", 1)[1], p.probe.traffic.port
    by_address = connect_target(probe_stdout, port)
    return [t for t in (f"{host}:{port}", by_address) if t] if by_address else []


def evidence_command(p: Planned, probe_stdout: str, client_ip: str, **options: Any) -> str:
    """The proxy-host command that looks for ``p``'s tunnel in squid's log: its evidence targets,
    logged from ``client_ip`` after the probe's last attempt began (model.remote.proxy_log_command;
    ``options`` are that function's, e.g. ``window_s``, ``log``)."""
    return remote.proxy_log_command(client_ip, evidence_targets(p, probe_stdout),
                                    since=parse(probe_stdout).started_at, **options)


# ------------------------------------------------------------------------------------- verification
def report(plans: dict[str, Plan], stdouts: dict[str, str], proxy_stdouts: dict[str, str],
           settings: Any) -> dict[str, Any]:
    """The ``verification`` stack output: per scenario its stage and every cell, and the proxy
    evidence of the probes that go through the egress proxy."""
    out: dict[str, Any] = {"ok": True, "locked": settings.restrict_egress, "scenarios": {}}
    for name, pl in plans.items():
        cells = [judge(p, parse(stdouts.get(p.name, "")), settings) for p in pl.probes]
        proxies = [judge_proxy(p, proxy_stdouts.get(p.name, "")) for p in pl.probes if p.check == PROXY_LOG]
        ok = all(c["ok"] for c in cells) and all(x["ok"] for x in proxies)
        out["scenarios"][name] = {"stage": pl.stage.name, "ok": ok, "cells": cells, "proxy": proxies}
        out["ok"] = out["ok"] and ok
    return out


def failures(verification: dict[str, Any]) -> list[str]:
    msgs = []
    for sc in verification.get("scenarios", {}).values():
        msgs += [c["message"] for c in sc["cells"] if not c["ok"]]
        msgs += [x["message"] for x in sc.get("proxy", []) if not x["ok"]]
    return msgs
