"""Issue 21 contracts 4-6: ``--probe``/``--probes``, ``verdicts check`` and ``verdicts diff``.

Expected verdicts come from seed 001 (Hoot episode 51, /work/shared/seeds/001_dd665a99f124401a.txt),
quoted next to each use (SEED). The objects are the hoot51 pack's (scenarios/hoot51.py: the
seed's workloads and its policy manifests), written to files per stage as a user would have them.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import html5lib
import pytest
import yaml

from cilium_verdicts.cli import main
from model.__main__ import main as model_main
from scenarios import hoot51

SLEEP, HTTPBIN = "default/sleep", "default/httpbin"  # the seed's sleep pod (deployed without -n) and httpbin
BY_NAME = "default/sleep -> default/httpbin:8000 GET /headers via service-name"  # curl httpbin:8000/headers
BY_IP = "default/sleep -> default/httpbin:8000 GET /headers via service-ip"


def write_stage(tmp_path, name: str):
    """The pack's workloads and the stage's policies as multi-document YAML in a directory of their own."""
    stage = next(s for s in hoot51.stages(None) if s.name == name)
    folder = tmp_path / name
    folder.mkdir()
    (folder / "workloads.yaml").write_text(yaml.safe_dump_all(hoot51.workloads(None)))
    (folder / "policies.yaml").write_text(yaml.safe_dump_all(list(stage.objects)) if stage.objects else "")
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------ probes (contract 4)
def test_probes_are_evaluated_alone_in_their_order(capsys, tmp_path):
    """SEED, Egress policies: deny-sleep-egress makes "a request ... fail - ... The reason is DNS"; "sending a
    request using the service IP instead of the DNS name ... will work" once sleep may reach httpbin
    (stage allow-sleep-to-httpbin-egress)."""
    stage = write_stage(tmp_path, "allow-sleep-to-httpbin-egress")
    code, out, err = run(capsys, "-f", stage, "--format", "json", "--probe", BY_NAME, "--probe", BY_IP,
                         "--probe", "sleep/sleep -> world:example.com:443")
    assert code == 0, err
    cells = json.loads(out)["cells"]
    assert [(c["from"], c["to"], c["port"], c["via"], c["request"], c["verdict"]) for c in cells] == [
        (SLEEP, HTTPBIN, 8000, "service-name", "GET /headers", "dns-fail"),
        (SLEEP, HTTPBIN, 8000, "service-ip", "GET /headers", "allow"),
        ("sleep/sleep", "world:example.com", 443, "fqdn", None, "allow")]  # sleep/sleep: no policy selects it
    code, out, _ = run(capsys, "-f", stage, "--format", "json", "--probe", BY_IP, "--probe", BY_NAME)
    assert [c["via"] for c in json.loads(out)["cells"]] == ["service-ip", "service-name"]


def test_probes_file_takes_the_same_fields(capsys, tmp_path):
    """SEED, L7 policies: allow-get-headers "only allows GET requests to /headers ... a POST request ...
    will fail with HTTP 403"."""
    stage = write_stage(tmp_path, "l7-get-headers")
    probes = tmp_path / "probes.yaml"
    probes.write_text(yaml.safe_dump([
        {"from": "default/sleep", "to": "httpbin", "port": 8000, "protocol": "TCP", "via": "service-name",
         "method": "POST", "path": "/post", "headers": {"X-Test": "1"}},
        {"from": "default/sleep", "to": "default/httpbin", "port": 8000, "via": "service-name",
         "method": "GET", "path": "/headers"}]))
    code, out, err = run(capsys, "-f", stage, "--probes", probes, "--format", "json")
    assert code == 0, err
    assert [(c["request"], c["verdict"]) for c in json.loads(out)["cells"]] == [
        ("POST /post", "l7-deny"), ("GET /headers", "allow")]


def test_probe_text_forms_parse():
    from cilium_verdicts.probespec import parse_probe
    assert parse_probe("a -> ns/b:53/UDP") == {"from": "a", "to": "ns/b", "port": "53", "protocol": "UDP"}
    assert parse_probe("a -> b:8000 GET /x?y=1 via service-ip") == {
        "from": "a", "to": "b", "port": "8000", "method": "GET", "path": "/x?y=1", "via": "service-ip"}
    assert parse_probe("a->world:api.example.com:443") == {"from": "a", "to": "world:api.example.com", "port": "443"}


@pytest.mark.parametrize("probe, message", [
    ("default/sleep default/httpbin:80", "expected 'FROM -> TO:PORT"),
    ("default/sleep -> default/httpbin:99999", "port 99999 is out of range"),
    ("default/sleep -> default/httpbin:80/ICMP", "protocol 'ICMP'"),
    ("default/sleep -> default/httpbin:80 via fqdn", "via 'fqdn' not accepted"),
    ("default/sleep -> nobody:80", "unknown workload 'nobody'"),
])
def test_a_bad_probe_exits_2_with_nothing_on_stdout(capsys, tmp_path, probe, message):
    code, out, err = run(capsys, "-f", write_stage(tmp_path, "open"), "--probe", probe)
    assert (code, out) == (2, "") and message in err, err


# ------------------------------------------------------------------------------------- check (contract 5)
EXPECT = {"expect": [
    # SEED, Egress policies, deny-sleep-egress: "denies all egress traffic from the sleep pod" - by pod IP too
    {"from": SLEEP, "to": HTTPBIN, "port": 80, "protocol": "TCP", "verdict": "drop"},
    # "If you send a request you'll notice that it fails - why is that? The reason is DNS"
    {"from": SLEEP, "to": HTTPBIN, "port": 8000, "via": "service-name", "request": "GET /headers",
     "verdict": "dns-fail"},
    # allow-ns-ingress (still in force): "denies all traffic from other namespaces": every sleep-namespace pod
    {"from": "sleep/*", "to": HTTPBIN, "port": 80, "verdict": "drop"},
]}


def test_check_holds_exit_0(capsys, tmp_path):
    expect = tmp_path / "expect.yaml"
    expect.write_text(yaml.safe_dump(EXPECT))
    code, out, err = run(capsys, "check", "-f", write_stage(tmp_path, "deny-sleep-egress"), "--expect", expect)
    assert code == 0, out + err
    assert out == "3 expectations (4 cells): all hold\n"
    code, out, _ = run(capsys, "check", "-f", tmp_path / "deny-sleep-egress", "--expect", expect, "--format", "json")
    assert json.loads(out) == {"expectations": 3, "failed": []}


def test_check_fails_exit_1_listing_cells_and_junit(capsys, tmp_path):
    """The same expectations at allow-dns-egress: SEED "This time ... will work" - by name the request is
    allowed, so the dns-fail expectation fails; and by pod IP sleep may now reach httpbin
    (deny-sleep-to-httpbin-egress, "allows all egress traffic from the sleep pod" to httpbin), so the drop
    expectation fails too. The sleep namespace is still kept out by allow-ns-ingress."""
    expect, junit = tmp_path / "expect.yaml", tmp_path / "junit.xml"
    expect.write_text(yaml.safe_dump(EXPECT))
    stage = write_stage(tmp_path, "allow-dns-egress")
    code, out, err = run(capsys, "check", "-f", stage, "--expect", expect, "--junit", junit)
    assert code == 1, out + err
    lines = out.splitlines()
    fails = [line for line in lines if line.startswith("FAIL")]
    assert fails == [
        "FAIL default/sleep -> default/httpbin:80/TCP (via pod-ip): expected drop, actual allow  [expect[0]]",
        "FAIL default/sleep -> default/httpbin:8000/TCP GET /headers (via service-name): "
        "expected dns-fail, actual allow  [expect[1]]"]
    assert "  1. DNS: default/sleep looks up httpbin.default.svc.cluster.local at kube-system/coredns:53/UDP" in lines
    assert lines[-1] == "3 expectations (4 cells): 2 failed (2 cells)"
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 3 and suite.get("tests") == "3"
    assert [len(c.findall("failure")) for c in cases] == [1, 1, 0]
    code, out, _ = run(capsys, "check", "-f", stage, "--expect", expect, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["expectations"] == 3
    assert [set(f) for f in doc["failed"]] == [{"from", "to", "port", "protocol", "request", "expected", "actual",
                                                "why"}] * 2
    assert [(f["port"], f["request"], f["expected"], f["actual"]) for f in doc["failed"]] == [
        (80, None, "drop", "allow"), (8000, "GET /headers", "dns-fail", "allow")]


def test_check_wildcards_expand_minus_except(capsys, tmp_path):
    """"*" is every workload (not the destination itself), minus except. SEED, Ingress policies,
    default-deny-ingress: "the request will eventually time out" - from everywhere to httpbin."""
    expect = tmp_path / "expect.yaml"
    expect.write_text(yaml.safe_dump({"expect": [
        {"from": "*", "to": HTTPBIN, "port": 80, "verdict": "drop", "except": ["sleep/notsleep"]}]}))
    stage = write_stage(tmp_path, "default-deny-ingress")
    code, out, _ = run(capsys, "check", "-f", stage, "--expect", expect, "--junit", tmp_path / "j.xml")
    assert (code, out) == (0, "1 expectations (2 cells): all hold\n")  # default/sleep and sleep/sleep


@pytest.mark.parametrize("entry, message", [
    ({"from": SLEEP, "to": HTTPBIN, "port": 80, "verdict": "allowed"}, "verdict 'allowed'; accepted: allow"),
    ({"from": SLEEP, "to": HTTPBIN, "port": 80, "verdict": "allow", "ports": 1}, "unknown key ports"),
    ({"from": "nowhere/*", "to": HTTPBIN, "port": 80, "verdict": "allow"}, "matches no workload"),
    ({"from": SLEEP, "to": HTTPBIN, "verdict": "allow"}, "port is required"),
    ({"from": "sl*", "to": HTTPBIN, "port": 80, "verdict": "allow"}, "a wildcard is '*' or 'ns/*'"),
])
def test_check_bad_input_exits_2(capsys, tmp_path, entry, message):
    expect = tmp_path / "expect.yaml"
    expect.write_text(yaml.safe_dump({"expect": [entry]}))
    code, out, err = run(capsys, "check", "-f", write_stage(tmp_path, "open"), "--expect", expect)
    assert (code, out) == (2, "") and message in err, err


# -------------------------------------------------------------------------------------- diff (contract 6)
def test_diff_opened_by_name_after_the_dns_policy(capsys, tmp_path):
    """SEED: after deny-sleep-egress "it fails ... The reason is DNS"; after allow-dns-egress "This time
    ... will work": by name the cell opens (dns-fail -> allow). By pod IP it opens too (the stage in
    between allows sleep -> httpbin: "using the service IP ... it will work")."""
    base, head = write_stage(tmp_path, "deny-sleep-egress"), write_stage(tmp_path, "allow-dns-egress")
    code, out, err = run(capsys, "diff", base, head, "--probe", BY_NAME, "--format", "json")
    assert code == 1, err
    doc = json.loads(out)
    assert set(doc) == {"opened", "closed", "changed"} and doc["closed"] == doc["changed"] == []
    cell, = doc["opened"]
    assert (cell["from"], cell["to"], cell["port"], cell["request"], cell["before"], cell["after"]) == (
        SLEEP, HTTPBIN, 8000, "GET /headers", "dns-fail", "allow")
    assert cell["why"]["before"][-1] == "DNS: lookup dropped: dns-fail" and cell["why"]["after"]
    # all pairs (no probes): only the cell that changes, by pod IP, with both chains
    code, out, _ = run(capsys, "diff", base, head, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["closed"] == doc["changed"] == []
    assert [(c["from"], c["to"], c["port"], c["before"], c["after"]) for c in doc["opened"]] == [
        (SLEEP, HTTPBIN, 80, "drop", "allow")]


def test_diff_closed_changed_and_unchanged(capsys, tmp_path):
    """SEED, L7 policies: after "kubectl delete netpol --all", allow-get-headers "only allows GET requests to
    /headers ... a POST request ... will fail with HTTP 403". From allow-dns-egress (where by name "This time
    ... will work") the POST closes (allow -> l7-deny); from deny-sleep-egress (DNS failed) it changes
    (dns-fail -> l7-deny). Nothing changes between a stage and itself: exit 0."""
    post = "default/sleep -> default/httpbin:8000 POST /post via service-name"
    dns, l7, deny = (write_stage(tmp_path, s) for s in ("allow-dns-egress", "l7-get-headers", "deny-sleep-egress"))
    code, out, _ = run(capsys, "diff", dns, l7, "--probe", post, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and [(c["before"], c["after"]) for c in doc["closed"]] == [("allow", "l7-deny")]
    code, out, _ = run(capsys, "diff", deny, l7, "--probe", post, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and [(c["before"], c["after"]) for c in doc["changed"]] == [("dns-fail", "l7-deny")]
    code, out, _ = run(capsys, "diff", dns, dns)
    assert (code, out.splitlines()[-1]) == (0, "no verdict changes")
    code, out, _ = run(capsys, "diff", dns, dns, "--format", "json")
    assert (code, json.loads(out)) == (0, {"opened": [], "closed": [], "changed": []})


def test_diff_table_and_html(capsys, tmp_path):
    base, head = write_stage(tmp_path, "deny-sleep-egress"), write_stage(tmp_path, "allow-dns-egress")
    code, out, _ = run(capsys, "diff", base, head, "--probe", BY_NAME)
    assert code == 1
    assert "  default/sleep -> default/httpbin:8000/TCP GET /headers via service-name: dns-fail -> allow" in out
    assert "    before: 1. DNS: default/sleep looks up httpbin.default.svc.cluster.local at kube-system/coredns:53/UDP" in out
    code, out, _ = run(capsys, "diff", base, head, "--probe", BY_NAME, "--format", "html")
    doc = html5lib.parse(out, namespaceHTMLElements=False)
    rows = doc.findall(".//tr[@data-kind='opened']")
    assert len(rows) == 1 and [td.text for td in rows[0].findall("td")[1:3]] == ["dns-fail", "allow"]
    assert "deny-sleep-egress" in doc.find(".//h1").text and "allow-dns-egress" in doc.find(".//h1").text


def test_diff_workload_on_one_side_is_absent(capsys, tmp_path):
    base, head = write_stage(tmp_path, "open"), tmp_path / "head"
    head.mkdir()
    objs = hoot51.workloads(None) + [{"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "extra", "namespace": "default", "labels": {"app": "extra"}}, "spec": {"containers": [
            {"name": "c", "image": "x", "ports": [{"containerPort": 9090}]}]}}]
    (head / "all.yaml").write_text(yaml.safe_dump_all(objs))
    code, out, _ = run(capsys, "diff", base, head, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["closed"] == doc["changed"] == []
    assert {(c["from"], c["to"], c["before"], c["after"]) for c in doc["opened"]} == {
        *((src, "default/extra", "absent", "allow") for src in ("default/httpbin", SLEEP, "sleep/notsleep", "sleep/sleep")),
        ("default/extra", HTTPBIN, "absent", "allow")}  # the sleep pods declare no port: no cell to them


def test_diff_bad_input_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, "diff", tmp_path / "missing", tmp_path / "missing2")
    assert (code, out) == (2, "") and "no such file or directory" in err


def test_model_cli_forwards_subcommands(capsys, tmp_path):
    stage = write_stage(tmp_path, "open")
    assert model_main(["verdicts", "diff", str(stage), str(stage)]) == 0
    assert capsys.readouterr().out.endswith("no verdict changes\n")
