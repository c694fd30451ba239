"""The render CLI's error handling and options (issue 11): broken stack files, cut echoes."""
from __future__ import annotations

import json
import os
import pathlib
import re
import sys

import pytest
import yaml

import model.__main__ as cli
from model import helm, render
from model.settings import ECHO_LIMIT, load_settings
from scenarios import mtls as mtls_pack


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory of our own for Pulumi.<stack>.yaml files (the repository stays clean)."""
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    return tmp_path


def run_render(capsys, *args: str) -> tuple[int, str, str]:
    try:
        rc = cli.main(["render", *args])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def longest_run(text: str, char: str) -> int:
    return max((len(m) for m in re.findall(f"{re.escape(char)}+", text)), default=0)


# (stack file contents, the line the error must name)
BROKEN_STACK_FILES = {
    "unclosed-list": ("config:\n  cilium-egress-lab:envName: demo\n  cilium-egress-lab:proxyPort: [3128\n", 4),
    "bad-indentation": ("config:\n  cilium-egress-lab:envName: demo\n cilium-egress-lab:proxyPort: 1\n", 3),
    "tab": ("config:\n  cilium-egress-lab:envName: demo\n\tcilium-egress-lab:proxyPort: 1\n", 3),
    "unterminated-quote": ("config:\n  cilium-egress-lab:envName: \"demo\n", 3),
    "plain-string": ("just a string, not a stack file\n", 1),
    "list": ("# a stack file\n- config\n- envName\n", 2),
    "config-is-a-string": ("encryptionsalt: abc\nconfig: envName=demo\n", 2),
    "config-is-a-list": ("config:\n  - cilium-egress-lab:envName\n", 2),
    "unknown-tag": ("config:\n  cilium-egress-lab:envName: !vault demo\n", 2),
}


@pytest.mark.parametrize("name", BROKEN_STACK_FILES)
def test_broken_stack_file_exits_2_naming_the_file_and_line(project, capsys, name):
    text, line = BROKEN_STACK_FILES[name]
    (project / "Pulumi.broken.yaml").write_text(text)
    rc, out, err = run_render(capsys, "--stack", "broken")
    assert (rc, out) == (2, ""), err
    assert "Traceback" not in err
    assert "--stack" in err and "Pulumi.broken.yaml" in err and f"line {line}" in err, err


def test_stack_file_that_is_not_utf8_exits_2(project, capsys):
    (project / "Pulumi.binary.yaml").write_bytes(b"config:\n  x: \xff\xfe\n")
    rc, out, err = run_render(capsys, "--stack", "binary")
    assert (rc, out) == (2, "") and "Pulumi.binary.yaml" in err, err


def test_empty_stack_file_means_defaults(project, capsys):
    (project / "Pulumi.empty.yaml").write_text("")
    rc, out, err = run_render(capsys, "--stack", "empty")
    assert rc == 0, err
    assert "kind: CiliumEnvoyConfig" in out


@pytest.mark.parametrize("args,key", [
    (["--set", "proxyAddress=" + "9" * 5000], "proxyAddress"),
    (["--set", "9" * 5000], "--set"),
    (["--set", "proxyPort=" + "9" * 5000], "proxyPort"),
])
def test_render_cli_cuts_echoed_values(capsys, args, key):
    rc, out, err = run_render(capsys, *args)
    assert (rc, out) == (2, "")
    assert key in err and "…" in err
    assert longest_run(err, "9") <= ECHO_LIMIT, err[:300]


def test_long_string_stack_file_is_cut_in_the_error(project, capsys):
    (project / "Pulumi.long.yaml").write_text("9" * 5000 + "\n")
    rc, out, err = run_render(capsys, "--stack", "long")
    assert (rc, out) == (2, "") and "line 1" in err
    assert longest_run(err, "9") <= ECHO_LIMIT, err[:300]


# ------------------------------------------------------------------ --values-for / --values-only (issue 11, item 14)
def test_values_for_existing_ships_values_without_kind_specifics_in_the_comment(capsys):
    rc, kind_out, err = run_render(capsys)
    assert rc == 0, err
    rc, out, err = run_render(capsys, "--values-for", "existing")
    assert rc == 0, err
    comment = "\n".join(ln for ln in out.split("\n---\n", 1)[0].splitlines())
    assert "k8sServiceHost" not in comment and "ipam" not in comment
    assert "#   envoyConfig:" in comment and "--reuse-values" in comment
    objects = lambda text: list(yaml.safe_load_all(text))  # noqa: E731
    assert objects(out) == objects(kind_out)  # only the values differ
    assert "k8sServiceHost: egress-lab-control-plane" in kind_out


@pytest.mark.parametrize("target", ["kind", "existing"])
def test_values_only_prints_a_helm_values_file(capsys, target):
    rc, out, err = run_render(capsys, "--values-only", "--values-for", target, "--set", "scenarios=egress,mtls")
    assert rc == 0, err
    docs = list(yaml.safe_load_all(out))
    assert len(docs) == 1, "values only: no manifests"
    settings = load_settings({"scenarios": "egress,mtls"}, resolve_operator_cidr=False)
    assert docs[0] == helm.helm_values(settings, target=target)
    assert "placeholder" not in err  # no Secrets printed, nothing to warn about


def test_values_only_defaults_to_kind(capsys):
    rc, out, err = run_render(capsys, "--values-only")
    assert rc == 0, err
    assert yaml.safe_load(out)["k8sServiceHost"] == "egress-lab-control-plane"


@pytest.mark.parametrize("args,flag,accepted", [
    (["--values-for", "eks"], "--values-for", ["kind", "existing"]),
    (["--values-for", ""], "--values-for", ["kind", "existing"]),
    (["--values-for"], "--values-for", ["kind", "existing"]),
    (["--values-for", "9" * 5000], "--values-for", ["kind", "existing"]),
    (["--values-only=yes"], "--values-only", ["takes no value"]),
])
def test_bad_values_flags_exit_2_naming_the_flag_and_the_accepted_values(capsys, args, flag, accepted):
    rc, out, err = run_render(capsys, *args)
    assert (rc, out) == (2, "")
    assert flag in err and all(a in err for a in accepted), err
    assert longest_run(err, "9") <= ECHO_LIMIT


# ------------------------------------------------------------------ mTLS secrets (issue 11, item 13)
PEM = {"clientChain": "-----BEGIN CERTIFICATE-----\nbGVhZg==\n-----END CERTIFICATE-----\n"
                      "-----BEGIN CERTIFICATE-----\naW50ZXJtZWRpYXRl\n-----END CERTIFICATE-----\n",
       "clientKey": "-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n",
       "caBundle": "-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n"}
STACK_IP = "203.0.113.77"
MTLS = ("--set", "scenarios=egress,mtls")

_FAKE_PULUMI = """#!{python}
# A stand-in for the Pulumi CLI: records how it was called, answers like `pulumi stack output --json`.
import json, os, sys
with open(os.environ["FAKE_PULUMI_LOG"], "w") as log:
    json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd()}}, log)
mode = os.environ.get("FAKE_PULUMI_MODE", "ok")
if mode == "no-stack":
    print("error: no stack named 'dev' found", file=sys.stderr)
    sys.exit(255)
if mode == "passphrase":
    print("error: constructing secrets manager of type \\"passphrase\\": passphrase must be set with "
          "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables", file=sys.stderr)
    sys.exit(255)
if mode == "garbage":
    print("this is not json")
    sys.exit(0)
print(os.environ["FAKE_PULUMI_OUTPUTS"])
"""


@pytest.fixture
def fake_pulumi(tmp_path, monkeypatch):
    """Puts a fake ``pulumi`` first on PATH; returns (set outputs/mode, read the recorded call)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "pulumi"
    exe.write_text(_FAKE_PULUMI.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "pulumi-call.json"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))

    class Fake:
        path = bindir

        @staticmethod
        def answer(outputs=None, mode="ok"):
            monkeypatch.setenv("FAKE_PULUMI_MODE", mode)
            monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps(outputs if outputs is not None else {}))

        @staticmethod
        def call():
            return json.loads(log.read_text()) if log.exists() else None
    return Fake


def _stack_outputs(**extra):
    return {"kindPublicIp": "203.0.113.10", "proxyPublicIp": STACK_IP,
            "mtlsSecretMaterial": dict(PEM), **extra}


def _secrets(objects):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}


def test_mtls_render_warns_about_placeholder_secrets_on_stderr_and_in_the_yaml(capsys):
    rc, out, err = run_render(capsys, *MTLS)
    assert rc == 0, err
    assert "placeholder" in err and "--secrets-from-stack" in err
    assert "tls-client-cert" in err and "mtls-ca" in err
    header = out.split("\n---\n", 1)[0]
    assert "# WARNING" in header and "placeholder" in header and "--secrets-from-stack" in header
    rc, out, err = run_render(capsys)  # no mTLS scenario, no Secrets, no warning
    assert (rc, err) == (0, "") and "WARNING" not in out


def test_secrets_from_stack_fills_the_secrets_and_the_address_from_the_stack(capsys, fake_pulumi):
    fake_pulumi.answer(_stack_outputs())
    rc, out, err = run_render(capsys, "--stack", "dev", "--secrets-from-stack", *MTLS)
    assert rc == 0, err
    call = fake_pulumi.call()
    argv = call["argv"]
    assert argv[:2] == ["stack", "output"] and "--json" in argv and "--show-secrets" in argv
    assert argv[argv.index("--stack") + 1] == "dev"
    assert pathlib.Path(call["cwd"]).resolve() == cli.ROOT  # the project directory: its backend
    objects = list(yaml.safe_load_all(out))
    secrets = _secrets(objects)
    assert secrets["tls-client-cert"] == mtls_pack.tls_secret("tls-client-cert", PEM["clientChain"], PEM["clientKey"])
    assert secrets["mtls-ca"] == mtls_pack.ca_secret("mtls-ca", PEM["caBundle"])
    settings = load_settings({"envName": "demo", "scenarios": "egress,mtls"}, resolve_operator_cidr=False)
    expected = render.lab_objects(settings, STACK_IP)
    assert [o for o in objects if o["kind"] != "Secret"] == [o for o in expected if o["kind"] != "Secret"]
    assert "placeholder" not in err and mtls_pack.PLACEHOLDER not in out
    header = out.split("\n---\n", 1)[0]
    assert "dev" in header and "private key" in header.lower() and "placeholder" not in header.lower()


def test_explicit_proxy_address_wins_over_the_stack_output(capsys, fake_pulumi):
    fake_pulumi.answer(_stack_outputs())
    rc, out, err = run_render(capsys, "--stack", "dev", "--secrets-from-stack", *MTLS,
                          "--set", "proxyAddress=198.51.100.9")
    assert rc == 0, err
    assert "198.51.100.9" in out and STACK_IP not in out


def test_secrets_from_stack_end_to_end_through_python_m_model(fake_pulumi):
    import subprocess
    fake_pulumi.answer(_stack_outputs())
    run = subprocess.run([sys.executable, "-m", "model", "render", "--stack", "dev", "--secrets-from-stack",
                          *MTLS], cwd=cli.ROOT, capture_output=True, text=True, timeout=60, env=os.environ)
    assert run.returncode == 0, run.stderr
    assert _secrets(yaml.safe_load_all(run.stdout))["mtls-ca"]["data"]["ca.crt"] == mtls_pack.ca_secret(
        "mtls-ca", PEM["caBundle"])["data"]["ca.crt"]


# (fake pulumi's answer or None = no pulumi on PATH, extra args, texts the error must contain)
SECRETS_FAILURES = {
    "no-cli": (None, [], ["pulumi", "PATH"]),
    "no-stack": ({"mode": "no-stack"}, [], ["'dev'", "does not exist"]),
    "no-passphrase": ({"mode": "passphrase"}, [], ["PULUMI_CONFIG_PASSPHRASE"]),
    "no-output": ({"outputs": {"proxyPublicIp": STACK_IP}}, [], ["mtlsSecretMaterial", "scenarios[1]", "deploy"]),
    "missing-key": ({"outputs": _stack_outputs(mtlsSecretMaterial={"clientChain": PEM["clientChain"],
                                                                   "caBundle": PEM["caBundle"]})},
                    [], ["mtlsSecretMaterial", "clientKey"]),
    "not-pem": ({"outputs": _stack_outputs(mtlsSecretMaterial={**PEM, "caBundle": "9" * 5000})},
                [], ["mtlsSecretMaterial", "caBundle", "PEM"]),
    "not-a-dict": ({"outputs": _stack_outputs(mtlsSecretMaterial="[secret]")}, [], ["mtlsSecretMaterial"]),
    "not-json": ({"mode": "garbage"}, [], ["JSON"]),
    "no-stack-flag": ({"outputs": _stack_outputs()}, ["--drop-stack"], ["--stack"]),
    "mtls-off": ({"outputs": _stack_outputs()}, ["--set", "scenarios=egress"], ["mtls scenario", "scenarios"]),
    "values-only": ({"outputs": _stack_outputs()}, ["--values-only"], ["--values-only"]),
    "with-a-value": ({"outputs": _stack_outputs()}, ["--secrets-from-stack=yes"], ["takes no value"]),
}


@pytest.mark.parametrize("case", SECRETS_FAILURES)
def test_secrets_from_stack_failures_exit_2_with_the_reason(capsys, fake_pulumi, monkeypatch, tmp_path, case):
    answer, extra, texts = SECRETS_FAILURES[case]
    if answer is None:
        empty = tmp_path / "empty"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
    else:
        fake_pulumi.answer(answer.get("outputs"), answer.get("mode", "ok"))
    args = ["--stack", "dev", "--secrets-from-stack", *MTLS]
    if "--drop-stack" in extra:
        args, extra = args[2:], []
    rc, out, err = run_render(capsys, *args, *extra)
    assert (rc, out) == (2, ""), err
    assert "--secrets-from-stack" in err and "Traceback" not in err
    assert all(t in err for t in texts), err
    assert longest_run(err, "9") <= ECHO_LIMIT


def test_bad_settings_fail_before_the_pulumi_cli_is_asked(capsys, fake_pulumi):
    fake_pulumi.answer(_stack_outputs())
    rc, out, err = run_render(capsys, "--stack", "dev", "--secrets-from-stack", *MTLS, "--set", "proxyPort=0")
    assert (rc, out) == (2, "") and "proxyPort" in err
    assert fake_pulumi.call() is None


def test_render_platform_local_shows_the_lock_it_adds(capsys):
    """render --platform local: the egress lock CCNP (model.local.lock_policy) in the header while
    unlocked, among the objects once restrictEgress is true; aws renders neither."""
    import yaml as _yaml

    from model import local
    from model.render import PLACEHOLDER_ADDRESS
    from model.settings import load_settings
    rc, out, _ = run_render(capsys, "--platform", "local")
    assert rc == 0 and "# platform local: restrictEgress=true would add this egress lock" in out
    header = [line[4:] for line in out.split("\n---\n")[0].splitlines() if line.startswith("#   ")]
    lock = local.lock_policy(load_settings({"platform": "local"}, resolve_operator_cidr=False), PLACEHOLDER_ADDRESS)
    assert _yaml.safe_load("\n".join(header[header.index("apiVersion: cilium.io/v2"):])) == lock
    assert all(d["metadata"]["name"] != local.LOCK_NAME for d in _yaml.safe_load_all(out.split("\n---\n", 1)[1]))
    rc, out, _ = run_render(capsys, "--platform", "local", "--set", "restrictEgress=true")
    docs = list(_yaml.safe_load_all(out.split("\n---\n", 1)[1]))
    assert rc == 0 and [d for d in docs if d["metadata"]["name"] == local.LOCK_NAME] == [
        local.lock_policy(load_settings({"platform": "local", "restrictEgress": True}, resolve_operator_cidr=False),
                          PLACEHOLDER_ADDRESS)]
    rc, out, _ = run_render(capsys, "--platform", "aws", "--set", "restrictEgress=true")
    assert rc == 0 and local.LOCK_NAME not in out
    rc, out, _ = run_render(capsys, "--platform", "existing", "--set", "scenarios=hoot51", "--set", "kubeconfigPath=/k")
    assert rc == 0 and "CiliumClusterwideNetworkPolicy" not in out.split("\n---\n", 1)[1]
