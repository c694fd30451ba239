"""The render CLI's error handling and options (issue 11): broken stack files, cut echoes."""
from __future__ import annotations

import re

import pytest
import yaml

import model.__main__ as cli
from model import cilium
from model.settings import ECHO_LIMIT, load_settings


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory of our own for Pulumi.<stack>.yaml files (the repository stays clean)."""
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    return tmp_path


def render(capsys, *args: str) -> tuple[int, str, str]:
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
    rc, out, err = render(capsys, "--stack", "broken")
    assert (rc, out) == (2, ""), err
    assert "Traceback" not in err
    assert "--stack" in err and "Pulumi.broken.yaml" in err and f"line {line}" in err, err


def test_stack_file_that_is_not_utf8_exits_2(project, capsys):
    (project / "Pulumi.binary.yaml").write_bytes(b"config:\n  x: \xff\xfe\n")
    rc, out, err = render(capsys, "--stack", "binary")
    assert (rc, out) == (2, "") and "Pulumi.binary.yaml" in err, err


def test_empty_stack_file_means_defaults(project, capsys):
    (project / "Pulumi.empty.yaml").write_text("")
    rc, out, err = render(capsys, "--stack", "empty")
    assert rc == 0, err
    assert "kind: CiliumEnvoyConfig" in out


@pytest.mark.parametrize("args,key", [
    (["--set", "proxyAddress=" + "9" * 5000], "proxyAddress"),
    (["--set", "9" * 5000], "--set"),
    (["--set", "proxyPort=" + "9" * 5000], "proxyPort"),
])
def test_render_cli_cuts_echoed_values(capsys, args, key):
    rc, out, err = render(capsys, *args)
    assert (rc, out) == (2, "")
    assert key in err and "…" in err
    assert longest_run(err, "9") <= ECHO_LIMIT, err[:300]


def test_long_string_stack_file_is_cut_in_the_error(project, capsys):
    (project / "Pulumi.long.yaml").write_text("9" * 5000 + "\n")
    rc, out, err = render(capsys, "--stack", "long")
    assert (rc, out) == (2, "") and "line 1" in err
    assert longest_run(err, "9") <= ECHO_LIMIT, err[:300]


# ------------------------------------------------------------------ --values-for / --values-only (issue 11, item 14)
def test_values_for_existing_ships_values_without_kind_specifics_in_the_comment(capsys):
    rc, kind_out, err = render(capsys)
    assert rc == 0, err
    rc, out, err = render(capsys, "--values-for", "existing")
    assert rc == 0, err
    comment = "\n".join(ln for ln in out.split("\n---\n", 1)[0].splitlines())
    assert "k8sServiceHost" not in comment and "ipam" not in comment
    assert "#   envoyConfig:" in comment and "--reuse-values" in comment
    objects = lambda text: list(yaml.safe_load_all(text))  # noqa: E731
    assert objects(out) == objects(kind_out)  # only the values differ
    assert "k8sServiceHost: egress-lab-control-plane" in kind_out


@pytest.mark.parametrize("target", ["kind", "existing"])
def test_values_only_prints_a_helm_values_file(capsys, target):
    rc, out, err = render(capsys, "--values-only", "--values-for", target, "--set", "mtlsInjection=true")
    assert rc == 0, err
    docs = list(yaml.safe_load_all(out))
    assert len(docs) == 1, "values only: no manifests"
    settings = load_settings({"mtlsInjection": True}, resolve_operator_cidr=False)
    assert docs[0] == cilium.helm_values(settings, target=target)
    assert "placeholder" not in err  # no Secrets printed, nothing to warn about


def test_values_only_defaults_to_kind(capsys):
    rc, out, err = render(capsys, "--values-only")
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
    rc, out, err = render(capsys, *args)
    assert (rc, out) == (2, "")
    assert flag in err and all(a in err for a in accepted), err
    assert longest_run(err, "9") <= ECHO_LIMIT
