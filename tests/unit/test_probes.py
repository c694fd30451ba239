"""Verification: the probe commands (run for real against kubectl/curl shims), the model's plan of
expected outcomes, and the probes in the stack (mocks simulate the world from the *declared*
objects and rules), strict failures."""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import pathlib
import re
import subprocess

import pytest

from model import probes, remote
from model.probes import Observation
from model.settings import load_settings
from scenarios import Context

from .harness import KIND_IP, PROXY_IP, run_program

SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32"}, resolve_operator_cidr=False)
LOCKED = dataclasses.replace(SETTINGS, restrict_egress=True)
CTX = Context(SETTINGS, PROXY_IP)


def _planned(scenario: str, probe_key: str, ctx: Context = CTX, stage: str | None = None):
    plan = probes.plan(scenario, ctx, stage)
    return next(p for p in plan.probes if p.probe.key == probe_key), plan


# ------------------------------------------------------------------ the probe commands themselves
def _fake_curl_seq(tmp, results: list[tuple[str, int]], body: str = "", ip: str = "93.184.215.14") -> str:
    """A curl whose n-th call gives results[n] (the last one repeats): a world that converges.
    Like curl: the body unless ``-o`` was given, then its ``-w`` format (http_code, remote_ip)."""
    counter = f"{tmp}/curl-calls"
    return (f'printf "%s|" "$@" > "$(dirname "$0")/args"\n'
            f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}\n'
            f'line=$(printf "%s\\n" {" ".join(repr(f"{c} {r}") for c, r in results)} | sed -n "$((n + 1))p")\n'
            f'[ -n "$line" ] || line={repr(f"{results[-1][0]} {results[-1][1]}")}\n'
            'code=${line% *}; rc=${line#* }\n'
            'w=""; prev=""; for a in "$@"; do [ "$prev" = -w ] && w="$a"; prev="$a"; done\n'
            f'[ "$rc" = 0 ] && addr={ip} || addr=""\n'
            "p1='%{http_code}'; p2='%{remote_ip}'; w=${w//\"$p1\"/$code}; w=${w//\"$p2\"/$addr}\n"
            f'case " $* " in *" -o "*) ;; *) printf %s {body!r} ;; esac\n'
            'printf "$w"; exit "$rc"')


def _shims(tmp_path: pathlib.Path, curl_body: str, kubectl_fails: bool = False) -> dict:
    """A fake ``sudo`` that plays kubectl: ``exec ... -- sh -c`` runs the pod's command locally,
    ``get svc``/``get pods`` answer a ClusterIP/pod IP, ``rollout`` is recorded; and a fake curl."""
    (tmp_path / "curl").write_text(f"#!/bin/bash\n{curl_body}\n")
    sudo = ("#!/bin/bash\n"
            'echo "$*" >> "$(dirname "$0")/kubectl-calls"\n'
            "if [ \"$1\" = kubectl ]; then\n"
            + ("  echo 'Error from server (NotFound): pods \"curl\" not found' >&2; exit 1\n" if kubectl_fails else "")
            + '  case " $* " in *" get svc "*) printf 10.96.0.42; exit 0;; *" get pods "*) printf 10.244.0.9; exit 0;;'
            ' *" rollout "*) exit 0;; esac\n'
            "  while [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\nfi\nexec \"$@\"\n")
    (tmp_path / "sudo").write_text(sudo)
    for f in ("curl", "sudo"):
        (tmp_path / f).chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def _run(cmd: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=60)


def _cmd(planned, plan, window_s: int = 0, interval_s: float = 0.05, expect: str | None = None) -> str:
    p = dataclasses.replace(planned, expected=expect or planned.expected)
    cmd = probes.command(p, plan.workloads, window_s)
    return cmd.replace(" 5 10 ", f" {interval_s} 10 ", 1) if window_s else cmd


@pytest.mark.parametrize("code,rc", [("200", 0), ("000", 28), ("000", 35)])
def test_probe_prints_one_json_line_and_a_timeout_is_a_result(tmp_path, code, rc):
    planned, plan = _planned("egress", "test-deny-control")
    run = _run(_cmd(planned, plan), _shims(tmp_path, _fake_curl_seq(tmp_path, [(code, rc)], body="<html>no</html>")))
    assert run.returncode == 0, run.stderr
    line = json.loads(run.stdout)
    assert (line["probe"], line["scenario"], line["traffic"]["to"]) == (
        "egress-test-deny-control", "egress", "world:www.example.com")
    assert (line["http_code"], line["curl_exit"], line["body"], line["error"]) == (code, rc, "", "")
    assert line["remote_ip"] == ("93.184.215.14" if rc == 0 else "")  # where curl connected
    assert line["attempts"] == 1 and line["outcome"] == probes.classify(code, rc)
    args = (tmp_path / "args").read_text().split("|")
    assert "https://www.example.com" in args  # the configured controlUrl, one argument
    assert "exec deploy/" not in (tmp_path / "kubectl-calls").read_text()  # a bare pod: exec curl -c curl
    assert "-n test-deny exec curl -c curl" in (tmp_path / "kubectl-calls").read_text()


def test_the_mtls_probe_keeps_the_body_and_passes_extra_args(tmp_path):
    echo = '{"headers": {"x-ssl-client-cn": "lab"}}'
    plain, plan = _planned("mtls", "inject-plain")
    run = _run(_cmd(plain, plan), _shims(tmp_path, _fake_curl_seq(tmp_path, [("200", 0)], echo)))
    assert probes.parse(run.stdout).body == echo
    direct, plan = _planned("mtls", "direct-tls")
    run = _run(_cmd(direct, plan), _shims(tmp_path, _fake_curl_seq(tmp_path, [("000", 56)], echo)))
    args = (tmp_path / "args").read_text().split("|")
    assert "-k" in args and f"https://{PROXY_IP}:8083/" in args and probes.parse(run.stdout).body == ""


def test_service_probes_resolve_the_service_on_the_host_and_send_the_method(tmp_path):
    """By service IP: the ClusterIP is looked up on the kind host when the probe runs (it exists only
    then); the policy sees the pod and its target port, the client dials the Service port."""
    planned, plan = _planned("hoot51", "sleep-sleep-default-httpbin-8000-service-ip-post-post")
    run = _run(_cmd(planned, plan), _shims(tmp_path, _fake_curl_seq(tmp_path, [("200", 0)])))
    assert run.returncode == 0, run.stderr
    args = (tmp_path / "args").read_text().split("|")
    assert "http://10.96.0.42:8000/post" in args and args[args.index("-X") + 1] == "POST"
    calls = (tmp_path / "kubectl-calls").read_text()
    assert "-n default get svc httpbin" in calls and "-n sleep exec deploy/sleep -c sleep" in calls
    by_name, plan = _planned("hoot51", "sleep-sleep-default-httpbin-8000-service-name-get-headers")
    _run(_cmd(by_name, plan), _shims(tmp_path, _fake_curl_seq(tmp_path, [("200", 0)])))
    assert "http://httpbin.default:8000/headers" in (tmp_path / "args").read_text().split("|")


def test_a_bare_tcp_probe_uses_telnet_and_a_restart_runs_once_before_it(tmp_path):
    planned, plan = _planned("eks-retail", "catalog-catalog-catalog-catalog-mysql-3306-service-name-tcp-rollout-restart")
    run = _run(_cmd(planned, plan, window_s=5, expect="allow"),
               _shims(tmp_path, _fake_curl_seq(tmp_path, [("000", 28), ("000", 0)])))
    assert run.returncode == 0, run.stderr
    assert "telnet://catalog-mysql.catalog:3306" in (tmp_path / "args").read_text().split("|")
    calls = (tmp_path / "kubectl-calls").read_text().splitlines()
    assert [c for c in calls if "rollout" in c] == [
        "kubectl --kubeconfig /root/.kube/config -n catalog rollout restart deploy/catalog",
        "kubectl --kubeconfig /root/.kube/config -n catalog rollout status deploy/catalog --timeout=180s"]
    assert calls.index(next(c for c in calls if "rollout status" in c)) < calls.index(next(c for c in calls if " exec " in c))
    assert probes.parse(run.stdout).outcome == "allow"  # a TCP connection with no HTTP answer: 000 and exit 0


def test_probe_reports_kubectl_failures_as_errors_not_as_curl_results(tmp_path):
    planned, plan = _planned("egress", "test-allow-allowed")
    run = _run(_cmd(planned, plan), _shims(tmp_path, _fake_curl_seq(tmp_path, [("200", 0)]), kubectl_fails=True))
    line = json.loads(run.stdout)
    assert line["curl_exit"] is None and "NotFound" in line["error"]
    assert probes.parse(run.stdout).outcome == probes.ERROR


# ------------------------------------------------------------------ convergence (issue 11)
def test_a_probe_that_converges_after_k_tries_passes_with_its_history(tmp_path):
    """Cilium/Envoy/AWS converge asynchronously: dropped twice, then through."""
    planned, plan = _planned("egress", "test-allow-allowed")
    curl = _fake_curl_seq(tmp_path, [("000", 28), ("000", 28), ("200", 0)])
    run = _run(_cmd(planned, plan, window_s=10), _shims(tmp_path, curl))
    obs = probes.parse(run.stdout)
    assert obs.outcome == "allow" and obs.attempts == 3
    assert [h["outcome"] for h in obs.history] == ["drop", "drop", "allow"]
    assert probes.judge(planned, obs, SETTINGS)["ok"]


def test_a_probe_that_never_converges_fails_inside_the_window_with_the_history(tmp_path):
    planned, plan = _planned("egress", "test-allow-allowed")
    run = _run(_cmd(planned, plan, window_s=1, interval_s=0.2), _shims(tmp_path, _fake_curl_seq(tmp_path, [("000", 28)])))
    obs = probes.parse(run.stdout)
    assert obs.outcome == "drop" and obs.attempts >= 3 and obs.elapsed_s <= 1.0 + 0.05
    cell = probes.judge(planned, obs, SETTINGS)
    assert not cell["ok"]
    # the history's times depend on the machine's load: only their shape is asserted
    assert re.search(rf"after {obs.attempts} attempts in {obs.elapsed_s} s \(drop@\d+\.\ds(, drop@\d+\.\ds)+\)",
                     cell["message"]), cell["message"]


def test_a_probe_already_as_expected_does_not_retry(tmp_path):
    planned, plan = _planned("egress", "test-deny-allowed", Context(LOCKED, PROXY_IP))
    run = _run(_cmd(planned, plan, window_s=10), _shims(tmp_path, _fake_curl_seq(tmp_path, [("000", 28), ("200", 0)])))
    obs = probes.parse(run.stdout)
    assert (obs.outcome, obs.attempts) == ("drop", 1)


def test_the_remote_loop_classifies_with_the_model_itself():
    planned, plan = _planned("egress", "test-deny-allowed")
    cmd = probes.command(planned, plan.workloads, 0)
    assert inspect.getsource(probes.classify).splitlines()[1] in cmd.replace("'\"'\"'", "'")


@pytest.mark.parametrize("code,rc,outcome", [
    ("200", 0, "allow"), ("404", 0, "allow"), ("403", 0, "l7-deny"), ("000", 0, "allow"), ("000", 28, "drop"),
    ("000", 35, "refused"), ("000", 56, "refused"), ("000", 7, "refused"), ("000", 6, "dns-fail"),
    ("", None, "error"), ("000", 3, "error")])
def test_outcome_classification(code, rc, outcome):
    """curl's exit codes (curl(1) EXIT CODES: 6 couldn't resolve host, 7 failed to connect, 28
    timeout, 35 TLS handshake, 52 empty reply, 56 receive failure) in cilium-cli's vocabulary."""
    assert Observation(code, rc).outcome == outcome


def test_proxy_log_command_lists_connects_of_the_kind_host_only(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(
        f"1.0 5 {KIND_IP} TCP_TUNNEL/200 10 CONNECT www.roche.com:443 - HIER_DIRECT/1.2.3.4 -\n"
        f"1.1 5 198.51.100.9 TCP_TUNNEL/200 10 CONNECT 127.0.0.2:443 - HIER_DIRECT/127.0.0.2 -\n"
        f"1.2 5 {KIND_IP} TCP_MISS/200 10 GET http://x/ - HIER_DIRECT/1.2.3.4 text/html\n")
    run = _run(remote.proxy_log_command(KIND_IP, ["www.roche.com:443"], log=str(log)), _shims(tmp_path, ""))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"targets": ["www.roche.com:443"], "connects": ["www.roche.com:443"], "attempts": 1}
    planned, _ = _planned("egress", "test-allow-allowed")
    assert probes.judge_proxy(planned, run.stdout)["ok"] is True


def test_proxy_evidence_counts_only_connects_logged_after_the_probe_started(tmp_path):
    """With TLS tunnelled by name, every probe's CONNECT is ``www.roche.com:443``: an entry from an
    earlier run must not stand in for this probe's (squid's native log starts with the epoch time
    the transaction was logged, at its end). The probe reports when its last attempt began."""
    started = 1_800_000_000.0
    probe_line = json.dumps({"http_code": "200", "curl_exit": 0, "remote_ip": "93.184.215.14", "started_at": started})
    assert probes.parse(probe_line).started_at == started
    planned, _ = _planned("egress", "test-allow-allowed")
    log = tmp_path / "access.log"
    log.write_text(f"{started - 600:.3f} 5 {KIND_IP} TCP_TUNNEL/200 10 CONNECT www.roche.com:443 - HIER_DIRECT/1.2.3.4 -\n")
    cmd = lambda: remote.proxy_log_command(KIND_IP, probes.evidence_targets(planned, probe_line),  # noqa: E731
                                           since=probes.parse(probe_line).started_at, window_s=1,
                                           interval_s=0.3, log=str(log))
    stale = _run(cmd(), _shims(tmp_path, ""))
    assert json.loads(stale.stdout)["connects"] == [] and not probes.judge_proxy(planned, stale.stdout)["ok"]
    with log.open("a") as f:
        f.write(f"{started + 0.8:.3f} 700 {KIND_IP} TCP_TUNNEL/200 10 CONNECT www.roche.com:443 - HIER_DIRECT/1.2.3.4 -\n")
    fresh = _run(cmd(), _shims(tmp_path, ""))
    assert probes.judge_proxy(planned, fresh.stdout)["ok"], fresh.stdout


def test_proxy_log_command_waits_a_bounded_time_for_the_connect(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("")
    run = _run(remote.proxy_log_command(KIND_IP, ["127.0.0.9:443"], window_s=1, interval_s=0.3, log=str(log)),
               _shims(tmp_path, ""))
    data = json.loads(run.stdout)
    assert data["connects"] == [] and 2 <= data["attempts"] <= 4
    planned, _ = _planned("egress", "test-allow-allowed")
    judged = probes.judge_proxy(planned, run.stdout)
    assert not judged["ok"] and "127.0.0.9:443" in judged["message"]


# ------------------------------------------------------------------ the plan (expected outcomes)
def _expected(settings, scenario="egress", stage=None) -> dict[str, str]:
    return {p.probe.key: p.expected for p in probes.plan(scenario, Context(settings, PROXY_IP), stage).probes}


def test_the_egress_plan_is_the_design_matrix():
    """DESIGN.md §6 and issue 12 (test-allow's DNS answers only the allowed domains)."""
    direct = {"test-allow-proxy-direct": "drop", "test-deny-proxy-direct": "drop"}  # the guard, always
    assert _expected(SETTINGS) == {"test-allow-allowed": "allow", "test-allow-control": "dns-fail",
                                   "test-deny-allowed": "allow", "test-deny-control": "allow", **direct}
    assert _expected(LOCKED) == {"test-allow-allowed": "allow", "test-allow-control": "dns-fail",
                                 "test-deny-allowed": "drop", "test-deny-control": "drop", **direct}
    # before the seed's `make apply_manifests`: no policy, so only the lock stops test-allow too
    assert _expected(LOCKED, stage="open") == {k: "drop" for k in _expected(LOCKED)}
    planned, _ = _planned("egress", "test-allow-allowed")
    assert planned.check == probes.PROXY_LOG and planned.verdict.listener.endswith("#proxy-listener")
    assert _planned("egress", "test-allow-allowed", stage="open")[0].check is None  # no listener, no proxy


def test_no_pod_may_use_the_proxy_itself_in_any_stage_or_lock_state():
    """Issue 12: squid sees every pod as the kind host, so a pod naming the proxy (curl -x) would get
    what the host gets. The platform's guard denies it (a deny rule wins over every allow, docs
    "Deny Policies"), before and after the seed's policy, locked or not - the lock itself allows the
    proxy port, so only the guard stops it. The command really goes through the proxy."""
    for settings in (SETTINGS, LOCKED):
        for stage in ("open", "proxy-policy"):
            for ns in ("test-allow", "test-deny"):
                p, _ = _planned("egress", f"{ns}-proxy-direct", Context(settings, PROXY_IP), stage=stage)
                assert p.expected == "drop" and p.verdict.egress == "drop:policy-deny", (stage, ns)
                assert any("egress-proxy-guard egressDeny[0]" in w for w in p.why), p.why
                assert f"-x http://{PROXY_IP}:{settings.proxy_port}" in \
                    probes.command(p, probes.plan("egress", Context(settings, PROXY_IP)).workloads, 60)
    # the tunnel itself is untouched: Envoy's connection leaves from the node, not from a pod
    assert _planned("egress", "test-allow-allowed", Context(LOCKED, PROXY_IP))[0].expected == "allow"


def test_the_mtls_plan_follows_the_listener_and_the_backend():
    """Seed 002: plain HTTP is answered with the client CN through the injection; TLS without a
    client certificate is refused by the backend (curl exit 56); before the injection, plain HTTP to
    the TLS port is refused too. The lock does not matter: the backend is the proxy /32."""
    for settings in (SETTINGS, LOCKED):
        assert _expected(settings, "mtls") == {"inject-plain": "allow", "direct-tls": "refused"}
        assert _expected(settings, "mtls", "open") == {"inject-plain": "refused", "direct-tls": "refused"}
    assert _planned("mtls", "inject-plain")[0].check == probes.MTLS_ECHO


def test_expected_outcomes_do_not_depend_on_the_platforms_address():
    """The stack names its resources from a placeholder rendering and runs the live one: both plans
    must agree on every name and expectation."""
    for name in ("egress", "mtls", "hoot51", "eks-retail", "stars"):
        a = probes.plan(name, Context(SETTINGS, "192.0.2.10"))
        b = probes.plan(name, Context(SETTINGS, PROXY_IP))
        assert [(p.name, p.expected, p.check) for p in a.probes] == [(p.name, p.expected, p.check) for p in b.probes]


def test_judge_names_probe_expected_observed_and_a_hint():
    planned, _ = _planned("egress", "test-deny-allowed", Context(LOCKED, PROXY_IP))
    cell = probes.judge(planned, Observation("200", 0), LOCKED)
    assert not cell["ok"]
    assert "egress-test-deny-allowed" in cell["message"] and "expected drop, observed allow" in cell["message"]
    assert "are the egress rules applied?" in cell["message"]
    assert {k: cell[k] for k in ("from", "to", "port", "via", "verdict", "expected", "observed")} == {
        "from": "test-deny/curl", "to": "world:www.roche.com", "port": 443, "via": "fqdn",
        "verdict": "allow", "expected": "drop", "observed": "allow"}


def test_proxy_judgement_requires_the_probes_own_connect():
    planned, _ = _planned("egress", "test-allow-allowed")
    ok = json.dumps({"targets": ["www.roche.com:443", "93.184.215.14:443"], "connects": ["10.1.1.1:443", "www.roche.com:443"]})
    wrong_port = json.dumps({"targets": ["www.roche.com:443"], "connects": ["www.roche.com:80"]})
    never = json.dumps({"targets": [], "connects": ["www.roche.com:443"]})
    assert probes.judge_proxy(planned, ok)["ok"]
    assert not probes.judge_proxy(planned, wrong_port)["ok"]
    assert "never connected" in probes.judge_proxy(planned, never)["message"]
    assert not probes.judge_proxy(planned, "ssh: connect refused")["ok"]
    line = json.dumps({"http_code": "200", "curl_exit": 0, "remote_ip": "93.184.215.14"})
    assert probes.evidence_targets(planned, line) == ["www.roche.com:443", "93.184.215.14:443"]
    assert probes.evidence_targets(planned, json.dumps({"http_code": "000", "curl_exit": 28})) == []


# ------------------------------------------------------------------ the probes in the stack
def _probes(p):
    return [r for r in p.resources if r.type == "command:remote:Command" and r.name.startswith("probes-")]


def test_one_probe_per_planned_probe_on_the_right_host_after_lock_and_policy(unlocked):
    names = {r.name for r in _probes(unlocked)}
    assert names == {"probes-egress-demo-egress-test-allow-allowed", "probes-egress-demo-egress-test-allow-control",
                     "probes-egress-demo-egress-test-deny-allowed", "probes-egress-demo-egress-test-deny-control",
                     "probes-egress-demo-egress-test-allow-allowed-proxy-log",
                     "probes-egress-demo-egress-test-allow-proxy-direct", "probes-egress-demo-egress-test-deny-proxy-direct"}
    # depends_on a component expands to its children: every lock rule, both Cilium CRs and the guard
    lock = {r.urn for r in unlocked.resources if r.name.startswith("kind-demo-sg-lock-")}
    policy = {r.urn for r in unlocked.resources if r.type.startswith("kubernetes:cilium.io")}
    assert lock and len(policy) == 3
    for r in _probes(unlocked):
        assert lock <= set(r.deps) and policy <= set(r.deps), r.name
        host = r.inputs["connection"]["host"]
        assert host == (PROXY_IP if r.name.endswith("proxy-log") else KIND_IP), r.name
    assert unlocked.named("probes-egress-demo-egress-test-allow-allowed").urn in \
        unlocked.named("probes-egress-demo-egress-test-allow-allowed-proxy-log").deps


def test_triggers_follow_everything_the_answer_depends_on(unlocked, locked):
    name = "probes-egress-demo-egress-test-deny-allowed"
    t_open, t_locked = unlocked.named(name).inputs["triggers"], locked.named(name).inputs["triggers"]
    assert t_open != t_locked and False in t_open and True in t_locked
    assert "kind-demo-instance-id" in t_open and "proxy-policy" in t_open  # host identity, stage
    assert run_program({}).named(name).inputs["triggers"] == t_open  # idempotent: nothing re-runs
    other_port = run_program({"proxyPort": 3130}).named(name).inputs["triggers"]
    assert other_port != t_open  # the CEC changed (proxy port), so the answer may have changed


def test_verification_output_for_both_lock_states(unlocked, locked):
    for p, is_locked in ((unlocked, False), (locked, True)):
        v = p.outputs["verification"]
        assert v["ok"] is True and v["locked"] is is_locked
        egress = v["scenarios"]["egress"]
        assert egress["stage"] == "proxy-policy"
        observed = {c["probe"]: c["observed"] for c in egress["cells"]}
        assert observed == {f"egress-{k}": e for k, e in _expected(LOCKED if is_locked else SETTINGS).items()}
        assert [x["ok"] for x in egress["proxy"]] == [True]
        assert "verification" not in p.secret_outputs
        assert p.outputs["stages"] == {"egress": "proxy-policy"}


def test_strict_mismatch_fails_the_update_naming_probe_and_hint():
    p = run_program({"restrictEgress": True}, world={"egress-test-deny-allowed": ("200", 0)})
    assert p.error is not None
    msg = str(p.error)
    assert "egress-test-deny-allowed" in msg and "expected drop, observed allow" in msg
    assert "locked but test-deny/curl reached world:www.roche.com directly: are the egress rules applied?" in msg
    assert "egress-test-allow-allowed" not in msg


def test_non_strict_mismatch_is_reported_not_raised():
    p = run_program({"strictVerification": False}, world={"egress-test-allow-allowed": ("000", 28), "proxy": []})
    assert p.error is None
    v = p.outputs["verification"]
    assert v["ok"] is False
    bad = [c for c in v["scenarios"]["egress"]["cells"] if not c["ok"]]
    assert [(c["probe"], c["expected"], c["observed"]) for c in bad] == [("egress-test-allow-allowed", "allow", "drop")]
    assert v["scenarios"]["egress"]["proxy"][0]["ok"] is False


def test_a_policy_the_program_fails_to_apply_breaks_verification(monkeypatch):
    """Guard against a vacuous simulation: the expectations come from the model's plan, the
    simulated world from what the program *declares*; if the Scenario component did not apply the
    stage's CiliumNetworkPolicy, the probes see an open world and the update fails."""
    from components import scenario
    real = scenario.declare

    def skip_cnp(prefix, static, opts, live=None):
        if static["kind"] == "CiliumNetworkPolicy":
            return real(prefix, {**static, "kind": "ConfigMap", "apiVersion": "v1", "data": {}}, opts)
        return real(prefix, static, opts, live)
    monkeypatch.setattr(scenario, "declare", skip_cnp)
    p = run_program({})
    assert p.error is not None
    assert "egress-test-allow-control" in str(p.error) and "expected dns-fail, observed allow" in str(p.error)


def test_proxy_evidence_is_what_the_tunnel_connected_to():
    """TLS is CONNECTed by its SNI name (the proxy checks names); plain HTTP by the address the pod's
    curl used - never a second DNS lookup: CDNs rotate addresses."""
    p = run_program({"probeUrl": "http://www.roche.com/"}, world={"cdn": "198.51.100.77"})
    assert p.error is None, p.error
    (proxy,) = p.outputs["verification"]["scenarios"]["egress"]["proxy"]
    assert proxy["ok"] is True and proxy["connects"] == ["198.51.100.77:80"]
    log = p.named("probes-egress-demo-egress-test-allow-allowed-proxy-log")
    assert '["www.roche.com:80", "198.51.100.77:80"]' in log.inputs["create"]
