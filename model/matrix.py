"""The verification matrix (DESIGN.md §6): which probe should see what, computed once.

Both the stack's probes (pulumi-command on the kind host) and the offline data-plane lab
(tests/dataplane) are judged against ``expected(...)``. A probe result is classified from curl's
HTTP code and exit status into an ``Outcome``:

- ``reachable``: curl exited 0 with an HTTP status (any status: the far end answered);
- ``blocked``:   exit 28, status 000 - packets silently dropped (Cilium policy or security group);
- ``reset``:     exit 35/56 or 7 - refused or reset (e.g. the proxy refused the CONNECT);
- ``dns-fail``:  exit 6 - the name did not resolve (Cilium's DNS proxy refused it);
- ``error``:     anything else (the probe itself failing, ...).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .cilium import ALLOW_NAMESPACE, DENY_NAMESPACE
from .settings import Settings

REACHABLE, BLOCKED, RESET, DNS_FAIL, ERROR = "reachable", "blocked", "reset", "dns-fail", "error"
ALLOWED, CONTROL = "allowed", "control"


@dataclass(frozen=True)
class Cell:
    source: str      # the namespace whose curl pod runs the probe
    target: str      # ALLOWED (an allowedDomains URL) or CONTROL (matches none)
    url: str

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass(frozen=True)
class Expectation:
    outcome: str
    via_proxy: bool
    why: str


def classify(http_code: str, curl_exit: int | None) -> str:
    """curl's result -> outcome. Self-contained (literals only): its source also runs on the kind
    host inside every probe's convergence loop (model.remote.probe_command)."""
    if curl_exit == 0 and http_code not in ("", "000"):
        return "reachable"
    if curl_exit == 28:
        return "blocked"
    if curl_exit in (7, 35, 52, 56):
        return "reset"
    if curl_exit == 6:
        return "dns-fail"
    return "error"


@dataclass(frozen=True)
class Observation:
    http_code: str
    curl_exit: int | None
    detail: str = ""
    body: str = ""
    remote_ip: str = ""           # the address curl connected to (last hop)
    attempts: int = 1             # probe attempts within the convergence window
    elapsed_s: float = 0.0
    history: tuple = ()           # earlier attempts: ({"t", "outcome", "http_code", "curl_exit"}, ...)

    @property
    def outcome(self) -> str:
        return classify(self.http_code, self.curl_exit)


def egress_cells(settings: Settings) -> list[Cell]:
    return [Cell(src, tgt, settings.probe_url if tgt == ALLOWED else settings.control_url)
            for src in (ALLOW_NAMESPACE, DENY_NAMESPACE) for tgt in (ALLOWED, CONTROL)]


def expected(settings: Settings, cell: Cell, locked: bool | None = None) -> Expectation:
    """DESIGN.md §6. ``locked`` defaults to the settings' lock state."""
    locked = settings.restrict_egress if locked is None else locked
    if cell.source == ALLOW_NAMESPACE:
        if cell.target == ALLOWED:
            return Expectation(REACHABLE, True, "policy redirects allowed domains to Envoy, "
                                                "which tunnels them through the proxy (CONNECT)")
        return Expectation(DNS_FAIL, False, "test-allow's DNS rule allows only allowedDomains and the cluster's "
                                            "zones: Cilium's DNS proxy answers NXDOMAIN for any other name")
    if locked:
        return Expectation(BLOCKED, False, "locked: the security group drops direct egress")
    return Expectation(REACHABLE, False, "unlocked, no policy on test-deny: direct egress")


_HINTS = {
    (ALLOW_NAMESPACE, ALLOWED): "is the CiliumEnvoyConfig loaded (agent/Envoy logs), is the proxy "
                                "reachable on its port from the kind host, does it allow CONNECT?",
    (ALLOW_NAMESPACE, CONTROL): "is the CiliumNetworkPolicy applied to test-allow (kubectl get cnp), with its "
                                "DNS rule, and does the Helm release set dnsProxy.dnsRejectResponseCode?",
    (DENY_NAMESPACE, ALLOWED): "",
    (DENY_NAMESPACE, CONTROL): "",
}


def hint(settings: Settings, cell: Cell, exp: Expectation, obs: Observation) -> str:
    h = _HINTS.get((cell.source, cell.target), "")
    if cell.source == DENY_NAMESPACE:
        if exp.outcome == BLOCKED and obs.outcome == REACHABLE:
            h = "locked but test-deny reached the internet: are the egress rules applied?"
        elif exp.outcome == REACHABLE:
            h = "unlocked but test-deny could not get out: is the 'everything' egress rule there, " \
                "is DNS working in the cluster?"
    return h


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    expected: Expectation
    observed: Observation
    ok: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.cell.source, "to": self.cell.target, "url": self.cell.url,
                "expected": self.expected.outcome, "observed": self.observed.outcome,
                "http_code": self.observed.http_code, "curl_exit": self.observed.curl_exit,
                "remote_ip": self.observed.remote_ip, "attempts": self.observed.attempts,
                "elapsed_s": self.observed.elapsed_s, "ok": self.ok, "message": self.message}


def judge(settings: Settings, cell: Cell, obs: Observation, locked: bool | None = None) -> CellResult:
    exp = expected(settings, cell, locked)
    ok = obs.outcome == exp.outcome
    if ok:
        msg = f"{cell.id}: {obs.outcome} as expected ({exp.why})"
    else:
        msg = (f"{cell.id} ({cell.url}): expected {exp.outcome}, observed {obs.outcome} "
               f"(http_code {obs.http_code or '-'}, curl exit {obs.curl_exit}"
               f"{', ' + obs.detail if obs.detail else ''}) {convergence(obs)}. "
               f"{hint(settings, cell, exp, obs)}").rstrip()
    return CellResult(cell, exp, obs, ok, msg)


def convergence(obs: Observation) -> str:
    """"after 3 attempts in 10.2 s (blocked@0.0s, blocked@5.1s, reset@10.2s)": the last observation
    is the one judged; the history shows it was not a one-off."""
    seen = ", ".join(f"{h.get('outcome')}@{h.get('t')}s" for h in obs.history[-6:])
    return f"after {obs.attempts} attempt{'s' if obs.attempts != 1 else ''} in {obs.elapsed_s} s" + (
        f" ({seen})" if seen else "")


def parse_probe_line(stdout: str) -> Observation:
    """Parse the one JSON line a probe prints (``{"from", "to", "http_code", "curl_exit"}``)."""
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip().startswith("{")]
    if not lines:
        return Observation("", None, f"no probe output: {stdout.strip()[:200]!r}")
    data = json.loads(lines[-1])
    return Observation(str(data.get("http_code", "")), data.get("curl_exit"), str(data.get("error", "")),
                       str(data.get("body", "")), str(data.get("remote_ip", "")), int(data.get("attempts", 1)),
                       float(data.get("elapsed_s", 0.0)), tuple(data.get("history", ())))


def summary(results: list[CellResult]) -> dict[str, Any]:
    return {"ok": all(r.ok for r in results), "cells": [r.as_dict() for r in results]}


def expectation_table(settings: Settings) -> list[dict[str, Any]]:
    """The expected matrix for both lock states (README, tests and the driver print it)."""
    return [{"cell": c.id, "unlocked": expected(settings, c, False).outcome,
             "locked": expected(settings, c, True).outcome} for c in egress_cells(settings)]




def proxy_port(url: str) -> int:
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def connect_target(probe_stdout: str, url: str) -> str:
    """``<ip>:<port>`` the allowed probe's curl connected to (Envoy CONNECTs to exactly that
    original destination), or "" when it never connected."""
    ip = parse_probe_line(probe_stdout).remote_ip
    return f"{ip}:{proxy_port(url)}" if ip else ""


def judge_proxy(settings: Settings, stdout: str) -> dict[str, Any]:
    """Did the proxy log a CONNECT from the kind host to the address the allowed probe used?
    (Envoy CONNECTs to the original destination IP, so the log shows ``<ip>:443``, not a name.)"""
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip().startswith("{")]
    if not lines:
        return {"ok": False, "connects": [], "message": f"no proxy-log output: {stdout.strip()[:200]!r}"}
    data = json.loads(lines[-1])
    connects, target = data.get("connects", []), data.get("target", "")
    if not target:
        return {"ok": False, "connects": connects,
                "message": f"the allowed probe to {settings.probe_host} never connected, so there is no "
                           "CONNECT to look for in the proxy log"}
    if target in connects:
        return {"ok": True, "connects": connects,
                "message": f"proxy logged CONNECT {target} ({settings.probe_host}) from the kind host"}
    return {"ok": False, "connects": connects,
            "message": f"proxy logged no CONNECT {target} (the address the pod used for {settings.probe_host}) "
                       f"from the kind host after {data.get('attempts', 1)} looks: is the CiliumEnvoyConfig "
                       "tunnelling to the proxy?"}


def verification(settings: Settings, cells: list[Cell], stdouts: list[str], proxy_stdout: str,
                 judge_cell=None) -> dict[str, Any]:
    """The ``verification`` stack output: every cell's expected/observed/ok, and the proxy check."""
    judge_cell = judge_cell or (lambda c, o: judge(settings, c, o))
    results = [judge_cell(c, parse_probe_line(out)) for c, out in zip(cells, stdouts)]
    proxy = judge_proxy(settings, proxy_stdout)
    return {"ok": all(r.ok for r in results) and proxy["ok"], "locked": settings.restrict_egress,
            "cells": [r.as_dict() for r in results], "proxy": proxy}


def failures(report: dict[str, Any]) -> list[str]:
    msgs = [c["message"] for c in report["cells"] if not c["ok"]]
    if not report["proxy"]["ok"]:
        msgs.append(report["proxy"]["message"])
    return msgs
