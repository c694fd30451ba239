"""All probe cells of the lab (egress matrix + mTLS when enabled), their commands and verdicts."""
from __future__ import annotations

from typing import Any

from . import matrix, mtls, remote
from .matrix import Cell, CellResult, Observation
from .settings import Settings

MTLS_TARGETS = (mtls.PLAIN, mtls.DIRECT_TLS)


def lab_cells(settings: Settings, backend_address: str) -> list[Cell]:
    cells = matrix.egress_cells(settings)
    if settings.mtls_injection:
        cells += mtls.mtls_cells(settings, backend_address)
    return cells


def expected(settings: Settings, cell: Cell) -> matrix.Expectation:
    return mtls.mtls_expected(cell) if cell.target in MTLS_TARGETS else matrix.expected(settings, cell)


def command(settings: Settings, cell: Cell) -> str:
    """The probe of one cell: retries until it sees the expected outcome or the convergence window
    (``convergenceSeconds``) ends."""
    return remote.probe_command(cell.source, cell.target, cell.url, expect=expected(settings, cell).outcome,
                                window_s=settings.convergence_seconds,
                                extra_args=mtls.curl_extra_args(cell) if cell.target in MTLS_TARGETS else (),
                                body=cell.target == mtls.PLAIN)


def judge_cell(settings: Settings, cell: Cell, obs: Observation) -> CellResult:
    if cell.target not in MTLS_TARGETS:
        return matrix.judge(settings, cell, obs)
    exp = expected(settings, cell)
    problems = [] if obs.outcome == exp.outcome else [
        f"expected {exp.outcome}, observed {obs.outcome} (http_code {obs.http_code or '-'}, "
        f"curl exit {obs.curl_exit}{', ' + obs.detail if obs.detail else ''}) {matrix.convergence(obs)}"]
    if not problems and cell.target == mtls.PLAIN:
        problems = mtls.check_echo(settings, obs.body)
    hint = ("is the CiliumClusterwideEnvoyConfig loaded, are tls-client-cert and mtls-ca in "
            "cilium-secrets, is the backend up on the proxy host?" if cell.target == mtls.PLAIN
            else "the backend must refuse TLS without a client certificate (haproxy verify required)")
    ok = not problems
    msg = (f"{cell.id}: {obs.outcome} as expected ({exp.why})" if ok
           else f"{cell.id} ({cell.url}): {'; '.join(problems)}. {hint}")
    return CellResult(cell, exp, obs, ok, msg)


def verification(settings: Settings, cells: list[Cell], stdouts: list[str], proxy_stdout: str) -> dict[str, Any]:
    return matrix.verification(settings, cells, stdouts, proxy_stdout,
                               judge_cell=lambda c, o: judge_cell(settings, c, o))
