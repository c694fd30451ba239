"""The mTLS-injection model (issue 6): CRs valid against Cilium 1.18.10's CRDs, plus the semantics
the schema cannot see (SDS names, listener references, rule separation), the PKI spec, the backend
config and install script, and the probes' expectations."""
from __future__ import annotations

import base64
import json
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from model import mtls
from model.lint import sds_references
from model.probes import Observation
from model.settings import load_settings
from scenarios import cilium, k8s
from scenarios import mtls as mtls_pack
from tests import validation
from tests.validation import require_reference, validate_core, validate_cr

BACKEND = "203.0.113.83"
SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32", "scenarios": "egress,mtls",
                          "mtlsClientCn": "lab mtls client", "mtlsServerName": "backend.mtls.lab.internal",
                          "pkiCaValidityHours": "100", "pkiCertValidityHours": "10"})
CCEC = mtls_pack.mtls_envoy_config(SETTINGS, BACKEND)
CNP = mtls_pack.mtls_network_policy(SETTINGS, CCEC, BACKEND)


def _resources(type_url: str) -> list[dict]:
    return [r for r in CCEC["spec"]["resources"] if r["@type"] == type_url]


def _tls_context() -> dict:
    cluster, = _resources(cilium.CLUSTER_TYPE)
    assert cluster["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    return cluster["transport_socket"]["typed_config"]


# ------------------------------------------------------------------------- CRD schema + semantics
@pytest.mark.parametrize("obj", [CCEC, CNP], ids=["ccec", "cnp"])
def test_crs_are_valid_against_the_cilium_crds(obj):
    require_reference()
    assert validate_cr(obj) == []


def test_ccec_is_cluster_wide_with_a_tcp_proxy_listener_and_no_address():
    assert CCEC["kind"] == "CiliumClusterwideEnvoyConfig"
    assert CCEC["metadata"] == {"name": mtls_pack.CCEC_NAME}  # cluster-scoped: no namespace
    listener, = _resources(cilium.LISTENER_TYPE)
    assert listener["name"] == mtls_pack.LISTENER
    assert "address" not in listener and "listener_filters" not in listener  # Cilium's job
    (chain,) = listener["filter_chains"]
    (flt,) = chain["filters"]
    assert flt["name"] == "envoy.filters.network.tcp_proxy"
    assert flt["typed_config"]["cluster"] == mtls_pack.CLUSTER
    assert "tunneling_config" not in flt["typed_config"]  # plain bytes into the TLS cluster


def test_cluster_is_static_to_the_backend_over_mtls_with_server_verification():
    cluster, = _resources(cilium.CLUSTER_TYPE)
    assert cluster["name"] == mtls_pack.CLUSTER and cluster["type"] == "STATIC"
    endpoints = [e["endpoint"]["address"]["socket_address"]
                 for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
    assert endpoints == [{"address": BACKEND, "port_value": mtls_pack.BACKEND_PORT}]
    assert cluster["load_assignment"]["cluster_name"] == mtls_pack.CLUSTER
    tls = _tls_context()
    assert tls["@type"] == "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    assert tls["sni"] == SETTINGS.mtls_server_name
    common = tls["common_tls_context"]
    assert common["alpn_protocols"] == ["http/1.1"]
    combined = common["combined_validation_context"]
    assert combined["default_validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": SETTINGS.mtls_server_name}}]
    # the seed switched validation off; nothing may do that here
    assert "trust_chain_verification" not in json.dumps(CCEC)


def test_sds_references_name_cilium_secrets_that_the_model_builds():
    refs = sds_references(CCEC)
    assert sorted(refs) == [("certificate", "cilium-secrets/tls-client-cert"),
                            ("validation", "cilium-secrets/mtls-ca")]
    secrets = {f"{s['metadata']['namespace']}/{s['metadata']['name']}": s for s in mtls_pack.placeholder_secrets()}
    for kind, name in refs:
        assert name.startswith(f"{cilium.SECRETS_NAMESPACE}/")  # no "/" would mean a CEC-local secret
        secret = secrets[name]
        # How Cilium's secret sync types a secret: tls.crt/tls.key -> certificate (and it wins),
        # otherwise ca.crt -> validation context.
        if kind == "certificate":
            assert secret["type"] == "kubernetes.io/tls" and {"tls.crt", "tls.key"} <= set(secret["data"])
        else:
            assert set(secret["data"]) == {"ca.crt"}
    assert {mtls_pack.sds_name(mtls_pack.CLIENT_SECRET), mtls_pack.sds_name(mtls_pack.CA_SECRET)} == set(secrets)


def test_cnp_redirects_only_the_backend_to_the_cluster_wide_listener():
    require_reference()
    assert CNP["metadata"] == {"name": mtls_pack.CNP_NAME, "namespace": mtls_pack.MTLS_NAMESPACE}
    assert CNP["spec"]["endpointSelector"] == {}
    egress = CNP["spec"]["egress"]
    with_listener = [(rule, pr) for rule in egress for pr in rule.get("toPorts", []) if "listener" in pr]
    (rule, port_rule), = with_listener
    ref = port_rule["listener"]
    assert ref["envoyConfig"] == {"kind": "CiliumClusterwideEnvoyConfig", "name": mtls_pack.CCEC_NAME}
    assert ref["name"] in {r["name"] for r in _resources(cilium.LISTENER_TYPE)}
    assert rule["toCIDR"] == [f"{BACKEND}/32"] and set(rule) == {"toCIDR", "toPorts"}
    assert port_rule["ports"] == [{"port": "8083", "protocol": "TCP"}]
    assert "rules" not in port_rule  # the agent rejects L7 rules next to a listener


def test_cnp_keeps_dns_and_same_namespace_rules_separate():
    egress = CNP["spec"]["egress"]
    assert cilium.dns_rule() in egress
    assert {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "mtls-inject"}}]} in egress
    assert len(egress) == 3
    for rule in egress:
        has_dns = any("rules" in pr for pr in rule.get("toPorts", []))
        has_listener = any("listener" in pr for pr in rule.get("toPorts", []))
        assert not (has_dns and has_listener)


def test_builders_refuse_a_backend_that_is_not_an_ipv4_address():
    for bad in ("backend.example", "203.0.113.83/32", "2001:db8::1", ""):
        with pytest.raises(ValueError):
            mtls_pack.mtls_envoy_config(SETTINGS, bad)
        with pytest.raises(ValueError):
            mtls.pki_spec(SETTINGS, bad)


# ----------------------------------------------------------------------------------- core objects
def test_core_objects_are_valid_kubernetes():
    ns, pod = mtls_pack.inject_workloads()
    assert ns == k8s.namespace("mtls-inject") and pod == k8s.curl_pod("mtls-inject")
    real = [mtls_pack.tls_secret("x", "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n", "key"),
            mtls_pack.ca_secret("y", "ca")]
    for obj in [ns, pod, *mtls_pack.placeholder_secrets(), *real]:
        assert validate_core(obj) == [], obj


def test_secrets_live_in_cilium_secrets_and_carry_base64_pem():
    tls = mtls_pack.tls_secret(mtls_pack.CLIENT_SECRET, "CERT\n", "KEY\n")
    assert tls["metadata"]["namespace"] == cilium.SECRETS_NAMESPACE == "cilium-secrets"
    assert base64.b64decode(tls["data"]["tls.crt"]) == b"CERT\n"
    assert base64.b64decode(tls["data"]["tls.key"]) == b"KEY\n"
    ca = mtls_pack.ca_secret(mtls_pack.CA_SECRET, "CA\n")
    assert ca["type"] == "Opaque" and ca["metadata"]["namespace"] == "cilium-secrets"
    assert base64.b64decode(ca["data"]["ca.crt"]) == b"CA\n"
    for s in mtls_pack.placeholder_secrets():
        assert all(base64.b64decode(v).decode() == mtls_pack.PLACEHOLDER for v in s["data"].values())


def test_pem_helpers_concatenate_in_the_order_haproxy_and_envoy_expect():
    assert mtls.server_pem("C", "I\n", "K") == "C\nI\nK\n"
    assert mtls.ca_bundle_pem(root_pem="R", intermediate_pem="I") == "I\nR\n"
    assert mtls.chain_pem("leaf\n\n", "int") == "leaf\nint\n"


# -------------------------------------------------------------------------------------------- PKI
def _pulumi_tls_accepted(doc_key: str) -> set[str]:
    """Accepted values as documented in the installed pulumi-tls SDK (the stack's provider)."""
    tls = pytest.importorskip("pulumi_tls")
    module = "locally_signed_cert.py" if doc_key == "allowed_uses" else "private_key.py"
    text = (pathlib.Path(tls.__file__).parent / module).read_text()
    i = text.index(f"{doc_key}: ", text.index(":param"))
    para = text[i:text.index("\n", i)]
    return set(re.findall(r"`([A-Za-z0-9_]+)`", para.split("ccepted values", 1)[-1].split("upported values", 1)[-1]))


def test_pki_chain_usages_and_names():
    spec = mtls.pki_spec(SETTINGS, BACKEND)
    assert list(spec) == list(mtls.PKI_ORDER) == ["root", "intermediate", "server", "client"]
    root, inter, server, client = (spec[k] for k in mtls.PKI_ORDER)
    assert (root.issuer, inter.issuer, server.issuer, client.issuer) == (None, "root", "intermediate", "intermediate")
    assert root.is_ca and inter.is_ca and not server.is_ca and not client.is_ca
    assert root.allowed_uses == inter.allowed_uses == ("cert_signing", "crl_signing")
    assert server.allowed_uses == ("digital_signature", "key_encipherment", "server_auth")
    assert client.allowed_uses == ("digital_signature", "key_encipherment", "client_auth")
    assert server.common_name == SETTINGS.mtls_server_name
    assert set(server.dns_names) == {SETTINGS.mtls_server_name, "localhost"}
    assert set(server.ip_addresses) == {BACKEND, "127.0.0.1"}
    assert client.common_name == SETTINGS.mtls_client_cn
    assert client.dns_names == client.ip_addresses == ()
    for s in spec.values():
        assert (s.algorithm, s.ecdsa_curve) == ("ECDSA", "P256")
        assert s.organization == "cilium-egress-lab"
    assert root.validity_hours == inter.validity_hours == 100
    assert server.validity_hours == client.validity_hours == 10
    for s in spec.values():  # nobody outlives its issuer
        if s.issuer:
            assert s.validity_hours <= spec[s.issuer].validity_hours
    # the SNI Envoy sends and the name it verifies are in the server certificate
    assert _tls_context()["sni"] in server.dns_names


def test_pki_spec_speaks_pulumi_tls():
    uses = _pulumi_tls_accepted("allowed_uses")
    assert set(mtls.KEY_USAGES) | set(mtls.EXTENDED_KEY_USAGES) == uses
    curves = _pulumi_tls_accepted("ecdsa_curve")
    algorithms = _pulumi_tls_accepted("algorithm")
    for s in mtls.pki_spec(SETTINGS, BACKEND).values():
        assert set(s.allowed_uses) <= uses
        assert s.ecdsa_curve in curves and s.algorithm in algorithms


# ------------------------------------------------------------------------------------- backend
def test_haproxy_config_demands_a_client_certificate_and_passes_its_identity():
    cfg = mtls.haproxy_cfg("/etc/mtls-backend")
    assert re.search(r"^\s*bind \*:8083 ssl crt /etc/mtls-backend/server.pem ca-file /etc/mtls-backend/ca.crt "
                     r"verify required\b", cfg, re.M), cfg
    for header, fetch in [("X-SSL-Client-CN", "ssl_c_s_dn(cn)"), ("X-SSL-Client-DN", "ssl_c_s_dn"),
                          ("X-SSL-Client-Verify", "ssl_c_verify"), ("X-SSL-Issuer", "ssl_c_i_dn")]:
        assert f"http-request set-header {header} %[{fetch}]" in cfg
    assert "server echo 127.0.0.1:8081" in cfg
    assert not re.search(r"^\s*daemon\b", cfg, re.M)
    assert "timeout client" in cfg and "timeout server" in cfg and "timeout connect" in cfg
    assert "user haproxy" in mtls.haproxy_cfg("/x", run_as="haproxy")


def _haproxy():
    exe = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if exe is None:
        pytest.skip("haproxy not installed (apt-get install haproxy)")
    return exe


def test_haproxy_accepts_the_config(tmp_path):
    haproxy = _haproxy()
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (apt-get install openssl)")
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-subj", "/CN=t", "-days", "1"],
                   check=True, capture_output=True, timeout=30)
    (tmp_path / "server.pem").write_text(mtls.server_pem(crt.read_text(), "", key.read_text()))
    (tmp_path / "ca.crt").write_text(crt.read_text())
    for kwargs in ({}, {"bind": "127.0.0.1", "port": 18083, "echo_port": 18081}, {"run_as": "root"}):
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(mtls.haproxy_cfg(str(tmp_path), **kwargs))
        check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr


def test_echo_server_returns_method_path_and_headers(tmp_path):
    script = tmp_path / "echo.py"
    script.write_text(mtls.echo_server_py())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/a/b?c=1",
                                             headers={"X-SSL-Client-CN": "lab mtls client",
                                                      "X-SSL-Client-Verify": "0"})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    body = resp.read().decode()
                    assert resp.headers["Content-Type"] == "application/json"
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    data = json.loads(body)
    assert data["method"] == "GET" and data["path"] == "/a/b?c=1"
    assert mtls_pack.check_echo(SETTINGS, body) == []
    assert f"else {mtls.ECHO_PORT}\n" in mtls.echo_server_py()  # the default port without argv
    assert '("127.0.0.1", port)' in mtls.echo_server_py()  # loopback only: haproxy is the way in


def _shellcheck():
    return validation.shellcheck()


def test_backend_install_script_is_shellcheck_clean_and_parses(tmp_path):
    path = tmp_path / "backend.sh"
    path.write_text(mtls.backend_install_script(SETTINGS))
    check = subprocess.run([_shellcheck(), "-s", "bash", "-S", "style", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def _heredoc(script: str, path: str) -> str:
    start = script.index(f"cat > {path} <<'LAB_EOF'\n") + len(f"cat > {path} <<'LAB_EOF'\n")
    return script[start:script.index("\nLAB_EOF", start)] + "\n"


def test_backend_install_script_writes_the_model_and_checks_before_restarting():
    script = mtls.backend_install_script(SETTINGS)
    assert script.startswith("#!/bin/bash\n") and "set -euo pipefail" in script
    assert _heredoc(script, "/etc/haproxy/haproxy.cfg") == mtls.haproxy_cfg(mtls.BACKEND_DIR, run_as="haproxy")
    assert _heredoc(script, mtls.ECHO_SCRIPT) == mtls.echo_server_py()
    assert _heredoc(script, f"/etc/systemd/system/{mtls.ECHO_UNIT}") == mtls.echo_unit()
    for f in ("ca.crt", "server.pem"):
        assert f in script.split("apt-get")[0]  # certificates checked before anything is installed
    assert "apt-get -o DPkg::Lock::Timeout=300 install -y -q haproxy python3 </dev/null" in script
    # run as `sudo bash -s` with the script on stdin: nothing may read the rest of it
    for line in script.splitlines():
        if re.match(r"\s*(apt-get|systemctl|haproxy) ", line):
            assert line.endswith("</dev/null"), line
    check = script.index("haproxy -c -f /etc/haproxy/haproxy.cfg")
    restart = script.index(f"systemctl restart {mtls.ECHO_UNIT} haproxy")
    assert check < restart
    assert "chmod 0640 /etc/mtls-backend/server.pem" in script  # the key stays private
    assert "BEGIN" not in script  # certificates arrive by CopyToRemote, never inside the script


# ----------------------------------------------------------------------------------------- probes
def test_a_tls_refusal_is_refused_not_a_drop():
    """TLS 1.3 alert after the handshake (curl exit 56), TLS 1.2 during it (35): both are the backend
    refusing; a silent drop (28) is not."""
    assert Observation("000", 56).outcome == Observation("000", 35).outcome == "refused"
    assert Observation("000", 28).outcome == "drop"


def test_check_echo_insists_on_our_client_identity():
    good = json.dumps({"method": "GET", "path": "/", "headers": {
        "x-ssl-client-cn": "lab mtls client", "X-SSL-Client-Verify": "0"}})
    assert mtls_pack.check_echo(SETTINGS, good) == []
    wrong_cn = good.replace("lab mtls client", "someone else")
    assert "X-SSL-Client-CN" in mtls_pack.check_echo(SETTINGS, wrong_cn)[0]
    no_verify = json.dumps({"headers": {"x-ssl-client-cn": "lab mtls client"}})
    assert len(mtls_pack.check_echo(SETTINGS, no_verify)) == 1
    assert mtls_pack.check_echo(SETTINGS, "<html>400 Bad request</html>")[0].startswith("not the echo")
    assert mtls_pack.check_echo(SETTINGS, "[]")
