"""The mTLS scenario in the stack (mocks): off means absent, on only adds; PKI wiring; backend
delivery; Kubernetes ordering; probes; render CLI round trip."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from model import mtls
from model.settings import load_settings
from scenarios import mtls as mtls_pack

from .harness import KIND_IP, PROXY_IP, ROOT_DIR, ok_program, run_program
from .test_cilium import _canon, _declared_objects

CONFIG = {"scenarios": ["egress", "mtls"], "mtlsClientCn": "edge-client 7", "pkiCertValidityHours": 720}
SETTINGS = load_settings({**CONFIG, "operatorCidr": "198.51.100.0/24"},
                         resolve_operator_cidr=False)


@pytest.fixture(scope="module")
def off(unlocked):
    return unlocked


@pytest.fixture(scope="module")
def on():
    return ok_program(CONFIG)


def _mtls_related(r) -> bool:
    return ("mtls" in r.name or "mtls" in str(r.inputs.get("metadata", {}))
            or r.type.startswith("tls:index/") and r.name.startswith("mtls-"))


def test_off_means_nothing_of_it_exists(off):
    assert not [r.name for r in off.resources if _mtls_related(r)]
    assert not off.of_type("kubernetes:cilium.io/v2:CiliumClusterwideEnvoyConfig")
    assert not off.of_type("command:remote:CopyToRemote")
    assert all(r.inputs.get("fromPort") != 8083 for r in off.of_type(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"))


def test_on_only_adds_and_the_only_aws_addition_is_the_8083_ingress(off, on):
    a = {(r.type, r.name): r.inputs for r in off.resources}
    b = {(r.type, r.name): r.inputs for r in on.resources}
    assert a.keys() <= b.keys(), "turning mTLS on removed something"
    changed = sorted(n for n in a if a[n] != b[n])
    assert changed == [], f"turning mTLS on changed existing resources: {changed}"
    added_aws = sorted(n for n in b.keys() - a.keys() if n[0].startswith("aws:"))
    assert added_aws == [("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "proxy-demo-sg-ingress-mtls")]
    rule = b[added_aws[0]]
    assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"], rule["cidrIpv4"]) == (
        "tcp", 8083, 8083, f"{KIND_IP}/32")


def test_pki_chain_and_certificates(on):
    named = lambda n: on.named(f"mtls-pki-demo-{n}")  # noqa: E731
    for role in mtls.PKI_ORDER:
        key = named(f"{role}-key").inputs
        assert (key["algorithm"], key["ecdsaCurve"]) == ("ECDSA", "P256")
    root = named("root-cert").inputs
    assert root["isCaCertificate"] is True and root["validityPeriodHours"] == 8760
    inter = named("intermediate-cert")
    assert inter.inputs["isCaCertificate"] is True
    assert named("root-cert").urn in inter.deps  # signed by the root
    for leaf in ("server", "client"):
        cert = named(f"{leaf}-cert")
        assert named("intermediate-cert").urn in cert.deps and named("root-cert").urn not in cert.deps
        assert cert.inputs["isCaCertificate"] is False and cert.inputs["validityPeriodHours"] == 720
        assert "caPrivateKeyPem" in cert.secret_inputs
    assert "server_auth" in named("server-cert").inputs["allowedUses"]
    assert "client_auth" in named("client-cert").inputs["allowedUses"]
    server_csr = named("server-csr").inputs
    assert PROXY_IP in server_csr["ipAddresses"] and SETTINGS.mtls_server_name in server_csr["dnsNames"]
    assert named("client-csr").inputs["subject"]["commonName"] == "edge-client 7"


def test_backend_gets_certificates_by_copy_never_in_user_data(on, off):
    copies = on.of_type("command:remote:CopyToRemote")
    assert {c.inputs["remotePath"].rsplit("/", 1)[1] for c in copies} == {"ca.crt", "server.pem"}
    for c in copies:
        assert "source" in c.secret_inputs and c.inputs["connection"]["host"] == PROXY_IP
    install = on.named("mtls-backend-demo-install")
    assert {c.urn for c in copies} <= set(install.deps)
    assert install.inputs["stdin"] == mtls.backend_install_script(SETTINGS)
    assert "systemctl disable --now haproxy" in install.inputs["delete"]
    assert on.named("proxy-demo-instance").inputs["userData"] == off.named("proxy-demo-instance").inputs["userData"]
    assert "BEGIN CERTIFICATE" not in on.named("proxy-demo-instance").inputs["userData"]


def test_kubernetes_objects_and_ordering(on):
    ccec = on.of_type("kubernetes:cilium.io/v2:CiliumClusterwideEnvoyConfig")[0]
    cnp = on.named("mtls-demo-ciliumnetworkpolicy-mtls-inject-mtls-injection-policy")
    secrets = on.of_type("kubernetes:core/v1:Secret")
    assert {s.inputs["metadata"]["name"] for s in secrets} == {mtls_pack.CLIENT_SECRET, mtls_pack.CA_SECRET}
    for s in secrets:
        assert s.inputs["metadata"]["namespace"] == "cilium-secrets" and "data" in s.secret_inputs
        assert s.urn in cnp.deps
    assert ccec.urn in cnp.deps and on.named("cilium-demo-crds").urn in ccec.deps
    ns = on.named("mtls-demo-namespace-mtls-inject")
    assert ns.urn in cnp.deps and ns.urn in on.named("mtls-demo-pod-mtls-inject-curl").deps
    endpoint = ccec.inputs["spec"]["resources"][1]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert endpoint["endpoint"]["address"]["socket_address"]["address"] == PROXY_IP
    assert cnp.inputs["spec"]["egress"][2]["toCIDR"] == [f"{PROXY_IP}/32"]


PLAIN, DIRECT = "probes-mtls-demo-mtls-inject-plain", "probes-mtls-demo-mtls-direct-tls"


def test_mtls_probes_and_verification(on):
    plain, direct = on.named(PLAIN), on.named(DIRECT)
    for p in (plain, direct):
        assert on.named("mtls-backend-demo-install").urn in p.deps
        assert on.named("mtls-demo-ciliumnetworkpolicy-mtls-inject-mtls-injection-policy").urn in p.deps
    assert f"http://{PROXY_IP}:8083/" in plain.inputs["create"]
    assert f"https://{PROXY_IP}:8083/" in direct.inputs["create"] and "-k" in direct.inputs["create"]
    assert "-n mtls-direct exec curl" in direct.inputs["create"]  # no policy selects it: it goes direct
    cells = {c["probe"]: c for c in on.outputs["verification"]["scenarios"]["mtls"]["cells"]}
    assert cells["mtls-inject-plain"]["ok"] and cells["mtls-inject-plain"]["observed"] == "allow"
    assert cells["mtls-direct-tls"]["ok"] and cells["mtls-direct-tls"]["observed"] == "refused"
    assert on.outputs["verification"]["ok"] is True


def test_strict_mtls_mismatch_names_the_probe_and_a_hint():
    p = run_program(CONFIG, world={"mtls-direct-tls": ("200", 0)})
    assert p.error is not None
    msg = str(p.error)
    assert "mtls-direct-tls" in msg and "expected refused, observed allow" in msg


def test_a_wrong_client_certificate_fails_the_echo_check():
    """The echo must carry our client CN: the mocks answer with the declared CSR's subject, so a
    program that gave Envoy another certificate would be caught."""
    p = run_program({**CONFIG, "strictVerification": False})
    cells = {c["probe"]: c for c in p.outputs["verification"]["scenarios"]["mtls"]["cells"]}
    assert cells["mtls-inject-plain"]["ok"] is True
    from model import probes
    from scenarios import Context
    planned = next(x for x in probes.plan("mtls", Context(SETTINGS, PROXY_IP)).probes if x.probe.key == "inject-plain")
    echo = '{"headers": {"x-ssl-client-cn": "someone else", "x-ssl-client-verify": "0"}}'
    cell = probes.judge(planned, probes.Observation("200", 0, body=echo), SETTINGS)
    assert not cell["ok"] and "X-SSL-Client-CN is 'someone else'" in cell["message"]
    assert mtls_pack.check_echo(SETTINGS, echo)


def test_render_cli_includes_mtls_and_round_trips(on):
    run = subprocess.run([sys.executable, "-m", "model", "render", "--set", "scenarios=egress,mtls",
                          "--set", "mtlsClientCn=edge-client 7", "--set", "pkiCertValidityHours=720",
                          "--set", f"proxyAddress={PROXY_IP}"],
                         cwd=ROOT_DIR, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    rendered = list(yaml.safe_load_all(run.stdout))
    kinds = [o["kind"] for o in rendered]
    assert "CiliumClusterwideEnvoyConfig" in kinds and kinds.count("Secret") == 2

    def without_secret_data(objs):  # secrets are placeholders offline, real PEMs under pulumi up
        return [{k: v for k, v in o.items() if not (o["kind"] == "Secret" and k == "data")} for o in objs]
    assert _canon(without_secret_data(rendered)) == _canon(without_secret_data(_declared_objects(on)))


def test_mtls_probes_rerun_when_the_mtls_config_changes_and_egress_probes_do_not(on):
    other = run_program({**CONFIG, "mtlsServerName": "backend.example.internal"})
    assert other.error is None, other.error
    for name in (PLAIN, DIRECT):
        assert other.named(name).inputs["triggers"] != on.named(name).inputs["triggers"], name
    for name in ("probes-egress-demo-egress-test-allow-allowed", "probes-egress-demo-egress-test-deny-control"):
        assert other.named(name).inputs["triggers"] == on.named(name).inputs["triggers"], name


def test_a_certificate_change_reruns_each_file_step_with_the_step_that_writes_it(on):
    """Changing a certificate input (here the server name) must re-copy the changed file *and*
    re-run the install that reads it; and the install must never delete what a copy made, or an
    install that re-runs without its copy (e.g. a new install script) finds nothing."""
    other = ok_program({**CONFIG, "mtlsServerName": "backend.example.internal"})
    install = "mtls-backend-demo-install"
    assert on.named(install).inputs["triggers"] != other.named(install).inputs["triggers"]
    for copy in on.of_type("command:remote:CopyToRemote"):
        text = lambda r: r.inputs["source"].text  # noqa: E731 - a StringAsset
        changed = text(copy) != text(other.named(copy.name))
        reruns = copy.inputs["triggers"] != other.named(copy.name).inputs["triggers"]
        assert changed == reruns, (copy.name, changed, reruns)
    assert on.named("mtls-backend-demo-copy-server-pem").inputs["triggers"] != \
        other.named("mtls-backend-demo-copy-server-pem").inputs["triggers"]  # the server cert changed
    assert on.named("mtls-backend-demo-copy-ca-crt").inputs["triggers"] == \
        other.named("mtls-backend-demo-copy-ca-crt").inputs["triggers"]  # the CAs did not
    assert "rm " not in on.named(install).inputs["create"]


def test_the_secret_material_for_the_render_cli_is_a_secret_output(on, off):
    from model import render
    assert render.SECRET_MATERIAL_OUTPUT in on.secret_outputs
    material = on.outputs[render.SECRET_MATERIAL_OUTPUT]
    assert set(material) == set(render.SECRET_MATERIAL_KEYS)
    assert "PRIVATE KEY" in material["clientKey"] and material["caBundle"].count("BEGIN CERTIFICATE") == 2
    assert render.SECRET_MATERIAL_OUTPUT not in off.outputs
