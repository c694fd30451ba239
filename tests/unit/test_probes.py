"""Verification: probe commands (run for real against shims), the expected matrix, the probes in
the stack (mocks simulate the world from the *declared* rules and policy), strict failures."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from model import matrix, remote
from model.matrix import Observation
from model.settings import load_settings

from .harness import INTERNET_IP, KIND_IP, PROXY_IP, run_program

SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32"}, resolve_operator_cidr=False)


# ------------------------------------------------------------------ the probe commands themselves
def _fake_curl(code: str, rc: int, body: str = "", ip: str = "93.184.215.14") -> str:
    """Like curl: the body unless ``-o`` was given, then its ``-w`` format (http_code, remote_ip)."""
    return _fake_curl_seq(tmp=None, results=[(code, rc)], body=body, ip=ip)


def _fake_curl_seq(tmp, results: list[tuple[str, int]], body: str = "", ip: str = "93.184.215.14") -> str:
    """A curl whose n-th call gives results[n] (the last one repeats): a world that converges."""
    table = "\n".join(f"{c} {r}" for c, r in results)
    counter = f'{tmp}/curl-calls' if tmp else '"$(dirname "$0")/curl-calls"'
    return (f'printf "%s|" "$@" > "$(dirname "$0")/args"\n'
            f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}\n'
            f'line=$(printf "%s\\n" {" ".join(repr(f"{c} {r}") for c, r in results)} | sed -n "$((n + 1))p")\n'
            f'[ -n "$line" ] || line={repr(f"{results[-1][0]} {results[-1][1]}")}\n'
            f'code=${{line% *}}; rc=${{line#* }}\n'
            f'w=""; prev=""; for a in "$@"; do [ "$prev" = -w ] && w="$a"; prev="$a"; done\n'
            f'[ "$rc" = 0 ] && addr={ip} || addr=""\n'
            "p1='%{http_code}'; p2='%{remote_ip}'; w=${w//\"$p1\"/$code}; w=${w//\"$p2\"/$addr}\n"
            f'case " $* " in *" -o "*) ;; *) printf %s {body!r} ;; esac\n'
            f'printf "$w"; exit "$rc"') if table else ""


def _shims(tmp_path: pathlib.Path, curl_body: str, kubectl_fails: bool = False) -> dict:
    """A fake ``sudo`` that plays kubectl exec by running the pod's ``sh -c`` locally, and a fake
    curl; the command under test is otherwise run unchanged by bash."""
    (tmp_path / "curl").write_text(f"#!/bin/bash\n{curl_body}\n")
    sudo = ("#!/bin/bash\n"
            "if [ \"$1\" = kubectl ]; then\n"
            + ("  echo 'Error from server (NotFound): pods \"curl\" not found' >&2; exit 1\n" if kubectl_fails else "")
            + "  while [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\nfi\nexec \"$@\"\n")
    (tmp_path / "sudo").write_text(sudo)
    for f in ("curl", "sudo"):
        (tmp_path / f).chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def _run(cmd: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=60)


def _probe(*args, expect="reachable", window_s=0, interval_s=0.05, **kw) -> str:
    return remote.probe_command(*args, expect=expect, window_s=window_s, interval_s=interval_s, **kw)


@pytest.mark.parametrize("code,rc", [("200", 0), ("000", 28), ("000", 35)])
def test_probe_prints_one_json_line_and_a_timeout_is_a_result(tmp_path, code, rc):
    run = _run(_probe("test-deny", "control", "https://www.example.com"),
               _shims(tmp_path, _fake_curl(code, rc, body="<html>not wanted</html>")))
    assert run.returncode == 0, run.stderr
    line = json.loads(run.stdout)
    assert {k: line[k] for k in ("from", "to", "url", "http_code", "curl_exit", "body", "error")} == {
        "from": "test-deny", "to": "control", "url": "https://www.example.com",
        "http_code": code, "curl_exit": rc, "body": "", "error": ""}
    assert line["remote_ip"] == ("93.184.215.14" if rc == 0 else "")  # where curl connected
    assert line["attempts"] == 1 and line["outcome"] == matrix.classify(code, rc)


def test_probe_keeps_the_body_when_asked_and_passes_extra_args(tmp_path):
    echo = '{"headers": {"x-ssl-client-cn": "lab"}}'
    run = _run(_probe("mtls-inject", "plain", "http://203.0.113.20:8083/", body=True,
                      extra_args=("-k",)), _shims(tmp_path, _fake_curl("200", 0, echo)))
    line = json.loads(run.stdout)
    assert (line["http_code"], line["curl_exit"], line["body"]) == ("200", 0, echo)
    assert "-k" in (tmp_path / "args").read_text().split("|")
    assert matrix.parse_probe_line(run.stdout).body == echo


def test_probe_passes_the_url_and_bounded_timeouts_to_curl(tmp_path):
    run = _run(_probe("test-allow", "allowed", "https://www.roche.com/a b"),
               _shims(tmp_path, _fake_curl("200", 0)))
    assert run.returncode == 0
    args = (tmp_path / "args").read_text().split("|")
    assert args[args.index("--connect-timeout") + 1] == "5" and args[args.index("-m") + 1] == "10"
    assert "https://www.roche.com/a b" in args  # one argument, spaces and all


def test_probe_reports_kubectl_failures_as_errors_not_as_curl_results(tmp_path):
    run = _run(_probe("test-allow", "allowed", "https://www.roche.com"),
               _shims(tmp_path, _fake_curl("200", 0), kubectl_fails=True))
    line = json.loads(run.stdout)
    assert line["curl_exit"] is None and "NotFound" in line["error"]
    assert matrix.parse_probe_line(run.stdout).outcome == matrix.ERROR


# ------------------------------------------------------------------ convergence (issue 11)
def test_a_probe_that_converges_after_k_tries_passes_with_its_history(tmp_path):
    """Cilium/Envoy/AWS converge asynchronously: dropped twice, then through."""
    curl = _fake_curl_seq(tmp_path, [("000", 28), ("000", 28), ("200", 0)])
    run = _run(_probe("test-allow", "allowed", "https://www.roche.com", window_s=10), _shims(tmp_path, curl))
    obs = matrix.parse_probe_line(run.stdout)
    assert obs.outcome == "reachable" and obs.attempts == 3
    assert [h["outcome"] for h in obs.history] == ["blocked", "blocked", "reachable"]
    cell = matrix.egress_cells(SETTINGS)[0]
    assert matrix.judge(SETTINGS, cell, obs).ok


def test_a_probe_that_never_converges_fails_inside_the_window_with_the_history(tmp_path):
    curl = _fake_curl_seq(tmp_path, [("000", 28)])
    run = _run(_probe("test-allow", "allowed", "https://www.roche.com", window_s=1, interval_s=0.2),
               _shims(tmp_path, curl))
    obs = matrix.parse_probe_line(run.stdout)
    assert obs.outcome == "blocked" and obs.attempts >= 3 and obs.elapsed_s <= 1.0 + 0.05
    result = matrix.judge(SETTINGS, matrix.egress_cells(SETTINGS)[0], obs)
    assert not result.ok
    assert f"after {obs.attempts} attempts in {obs.elapsed_s} s (blocked@0.0s" in result.message


def test_a_probe_already_as_expected_does_not_retry(tmp_path):
    curl = _fake_curl_seq(tmp_path, [("000", 28), ("200", 0)])
    run = _run(_probe("test-deny", "allowed", "https://www.roche.com", expect="blocked", window_s=10),
               _shims(tmp_path, curl))
    obs = matrix.parse_probe_line(run.stdout)
    assert (obs.outcome, obs.attempts) == ("blocked", 1)


def test_the_remote_loop_classifies_with_the_model_itself():
    import inspect
    cmd = _probe("test-deny", "allowed", "https://www.roche.com")
    assert inspect.getsource(matrix.classify).splitlines()[1] in cmd.replace("'\"'\"'", "'")
    assert (matrix.classify("200", 0), matrix.classify("000", 28), matrix.classify("000", 56),
            matrix.classify("000", 6), matrix.classify("000", 3)) == (
        matrix.REACHABLE, matrix.BLOCKED, matrix.RESET, matrix.DNS_FAIL, matrix.ERROR)


def test_proxy_log_command_lists_connects_of_the_kind_host_only(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(
        f"1.0 5 {KIND_IP} TCP_TUNNEL/200 10 CONNECT 127.0.0.1:443 - HIER_DIRECT/127.0.0.1 -\n"
        f"1.1 5 198.51.100.9 TCP_TUNNEL/200 10 CONNECT 127.0.0.2:443 - HIER_DIRECT/127.0.0.2 -\n"
        f"1.2 5 {KIND_IP} TCP_MISS/200 10 GET http://x/ - HIER_DIRECT/1.2.3.4 text/html\n")
    run = _run(remote.proxy_log_command(KIND_IP, "127.0.0.1:443", log=str(log)), _shims(tmp_path, ""))
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data == {"target": "127.0.0.1:443", "connects": ["127.0.0.1:443"], "attempts": 1}
    assert matrix.judge_proxy(SETTINGS, run.stdout)["ok"] is True


def test_proxy_log_command_waits_a_bounded_time_for_the_connect(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("")
    run = _run(remote.proxy_log_command(KIND_IP, "127.0.0.9:443", window_s=1, interval_s=0.3, log=str(log)),
               _shims(tmp_path, ""))
    data = json.loads(run.stdout)
    assert data["connects"] == [] and 2 <= data["attempts"] <= 4
    judged = matrix.judge_proxy(SETTINGS, run.stdout)
    assert not judged["ok"] and "127.0.0.9:443" in judged["message"]


# ------------------------------------------------------------------ the expected matrix
def test_expected_matrix_is_design_section_6():
    assert matrix.expectation_table(SETTINGS) == [
        {"cell": "test-allow->allowed", "unlocked": "reachable", "locked": "reachable"},
        # the DNS rule allows only allowedDomains and the cluster's zones (issue 12): no name, no request
        {"cell": "test-allow->control", "unlocked": "dns-fail", "locked": "dns-fail"},
        {"cell": "test-deny->allowed", "unlocked": "reachable", "locked": "blocked"},
        {"cell": "test-deny->control", "unlocked": "reachable", "locked": "blocked"},
    ]
    assert matrix.expected(SETTINGS, matrix.egress_cells(SETTINGS)[0]).via_proxy is True


@pytest.mark.parametrize("code,rc,outcome", [
    ("200", 0, "reachable"), ("403", 0, "reachable"), ("000", 28, "blocked"), ("000", 35, "reset"),
    ("000", 56, "reset"), ("000", 6, "dns-fail"), ("", None, "error"), ("000", 0, "error")])
def test_outcome_classification(code, rc, outcome):
    assert Observation(code, rc).outcome == outcome


def test_judge_names_cell_expected_observed_and_a_hint():
    locked = load_settings({"operatorCidr": "198.51.100.0/24", "restrictEgress": "true"}, resolve_operator_cidr=False)
    cell = matrix.egress_cells(locked)[2]
    result = matrix.judge(locked, cell, Observation("200", 0))
    assert not result.ok
    assert "test-deny->allowed" in result.message and "expected blocked, observed reachable" in result.message
    assert "are the egress rules applied?" in result.message


def test_proxy_judgement_requires_a_connect_to_exactly_the_address_the_pod_used():
    ok = json.dumps({"target": "93.184.215.14:443", "connects": ["10.1.1.1:443", "93.184.215.14:443"]})
    wrong_port = json.dumps({"target": "93.184.215.14:443", "connects": ["93.184.215.14:80"]})
    redirect_addr = json.dumps({"target": "93.184.215.14:443", "connects": ["10.244.0.5:443"]})
    never = json.dumps({"target": "", "connects": ["93.184.215.14:443"]})
    assert matrix.judge_proxy(SETTINGS, ok)["ok"]
    assert not matrix.judge_proxy(SETTINGS, wrong_port)["ok"]
    assert not matrix.judge_proxy(SETTINGS, redirect_addr)["ok"]
    assert "never connected" in matrix.judge_proxy(SETTINGS, never)["message"]
    assert not matrix.judge_proxy(SETTINGS, "ssh: connect refused")["ok"]
    line = json.dumps({"http_code": "200", "curl_exit": 0, "remote_ip": "93.184.215.14"})
    assert matrix.connect_target(line, "https://www.roche.com/x") == "93.184.215.14:443"
    assert matrix.connect_target(json.dumps({"http_code": "000", "curl_exit": 28}), "http://a.b") == ""


# ------------------------------------------------------------------ the probes in the stack
def _probes(p):
    return [r for r in p.resources if r.type == "command:remote:Command" and r.name.startswith("probes-")]


def test_one_probe_per_cell_on_the_right_host_after_lock_and_policy(unlocked):
    names = {r.name for r in _probes(unlocked)}
    assert names == {"probes-demo-test-allow-allowed", "probes-demo-test-allow-control",
                     "probes-demo-test-deny-allowed", "probes-demo-test-deny-control", "probes-demo-proxy-log"}
    # depends_on a component expands to its children: every lock rule and both Cilium CRs
    lock = {r.urn for r in unlocked.resources if r.name.startswith("kind-demo-sg-lock-")}
    policy = {r.urn for r in unlocked.resources if r.name.startswith("egress-policy-demo-")}
    assert lock and len(policy) == 2
    for r in _probes(unlocked):
        assert lock <= set(r.deps) and policy <= set(r.deps), r.name
        host = r.inputs["connection"]["host"]
        assert host == (PROXY_IP if r.name.endswith("proxy-log") else KIND_IP), r.name
    assert all(unlocked.named(n).urn in unlocked.named("probes-demo-proxy-log").deps
               for n in names - {"probes-demo-proxy-log"})


def test_triggers_follow_everything_the_answer_depends_on(unlocked, locked):
    t_open = unlocked.named("probes-demo-test-deny-allowed").inputs["triggers"]
    t_locked = locked.named("probes-demo-test-deny-allowed").inputs["triggers"]
    assert t_open != t_locked and False in t_open and True in t_locked
    assert "kind-demo-instance-id" in t_open
    again = run_program({}).named("probes-demo-test-deny-allowed").inputs["triggers"]
    assert again == t_open  # idempotent: nothing changed, nothing re-runs
    other_port = run_program({"proxyPort": 3130}).named("probes-demo-test-deny-allowed").inputs["triggers"]
    assert other_port != t_open  # the CEC changed (proxy port), so the answer may have changed


def test_verification_output_for_both_lock_states(unlocked, locked):
    for p, is_locked in ((unlocked, False), (locked, True)):
        v = p.outputs["verification"]
        assert v["ok"] is True and v["locked"] is is_locked
        observed = {f"{c['from']}->{c['to']}": c["observed"] for c in v["cells"]}
        assert observed == {row["cell"]: row["locked" if is_locked else "unlocked"]
                            for row in matrix.expectation_table(SETTINGS)}
        assert v["proxy"]["ok"] and v["proxy"]["connects"] == [f"{INTERNET_IP}:443"]
        assert "verification" not in p.secret_outputs


def test_strict_mismatch_fails_the_update_naming_cell_and_hint():
    p = run_program({"restrictEgress": True}, world={"test-deny->allowed": ("200", 0)})
    assert p.error is not None
    msg = str(p.error)
    assert "test-deny->allowed" in msg and "expected blocked, observed reachable" in msg
    assert "locked but test-deny reached the internet: are the egress rules applied?" in msg
    assert "test-allow->allowed" not in msg


def test_non_strict_mismatch_is_reported_not_raised():
    p = run_program({"strictVerification": False}, world={"test-allow->allowed": ("000", 28), "proxy": []})
    assert p.error is None
    v = p.outputs["verification"]
    assert v["ok"] is False
    bad = [c for c in v["cells"] if not c["ok"]]
    assert [(c["from"], c["to"], c["expected"], c["observed"]) for c in bad] == [
        ("test-allow", "allowed", "reachable", "blocked")]
    assert v["proxy"]["ok"] is False and "no CONNECT" in v["proxy"]["message"]


def test_without_the_policy_the_simulated_world_breaks_verification(monkeypatch):
    """Guard against a vacuous simulation: drop the listener from the CNP and the probe fails."""
    from model import cilium
    real = cilium.egress_network_policy

    def no_listener(settings, cec):
        cnp = real(settings, cec)
        del cnp["spec"]["egress"][0]["toPorts"][0]["listener"]
        return cnp
    monkeypatch.setattr(cilium, "egress_network_policy", no_listener)
    p = run_program({})
    assert p.error is not None and "test-allow->allowed" in str(p.error)


def test_proxy_evidence_is_the_address_the_pod_actually_used():
    """CDNs rotate addresses: the proxy host resolving the probe's name again finds another address
    than the one the pod's curl used. The CONNECT to look for is curl's own remote_ip."""
    p = run_program({}, world={"cdn": "198.51.100.77"})
    assert p.error is None, p.error
    proxy = p.outputs["verification"]["proxy"]
    assert proxy["ok"] is True, proxy["message"]
    assert "198.51.100.77:443" in proxy["message"]
