"""Data-plane proof of the mTLS-injection scenario (issue 6): real haproxy, Envoy and curl in
network namespaces, every piece rendered by ``model.mtls`` (see ``mtls_lab.py`` for the topology).

- plain HTTP from the mtls-inject pod, redirected into Envoy running the CCEC's listener and
  cluster, reaches the echo server over mTLS with our client certificate (CN in the headers);
- without Envoy the backend refuses: no client certificate -> TLS 1.3 alert after the handshake
  (curl exit 56), a client certificate of another CA -> alert too; our certificate directly works;
- Envoy verifies the backend: a server certificate of another CA, or of our CA but without the
  server name, makes the plain request fail instead of succeeding;
- ``envoy --mode validate`` accepts the bootstrap;
- every probe of the mtls scenario's plan, in each stage (``open``: no redirect, both refused by
  the backend; ``mtls-injection``: the plain request gets the echo), judged by ``model.probes``.

Expected outcomes come from ``model.probes.plan("mtls", ...)`` (its probes ``inject-plain`` from
mtls-inject and ``direct-tls`` from mtls-direct, their URLs and curl arguments), observed as
``model.probes.Observation(...).outcome``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess

import pytest

import cilium_verdicts as policy
import scenarios
from model import mtls, probes
from model.lint import sds_references
from model.probes import REFUSED
from model.settings import load_settings
from scenarios import Context
from scenarios import mtls as mtls_pack

from . import envoy, mtls_lab
from .mtls_lab import DIRECT_POD, MTLS_POD, Backend, MtlsLab, role_of

GOOD, OTHER_CA, WRONG_NAME = "203.0.113.83", "203.0.113.84", "203.0.113.85"
# Non-default names and validities, so nothing can silently rely on the defaults.
SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32", "scenarios": "egress,mtls",
                          "mtlsClientCn": "lab mtls client", "mtlsServerName": "backend.mtls.lab.internal",
                          "pkiCaValidityHours": "48", "pkiCertValidityHours": "24"})
SCENARIO = "mtls"
STAGES = scenarios.STAGE_NAMES[SCENARIO]
INJECT, DIRECT = "inject-plain", "direct-tls"  # the pack's probe keys (names, not expectations)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = mtls_lab.unavailable()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("mtls-lab")
    ours = mtls_lab.build_pki(mtls.pki_spec(SETTINGS, GOOD), work / "pki-ours")
    # Another CA issuing certificates with exactly our names: only the keys differ.
    other = mtls_lab.build_pki(mtls.pki_spec(SETTINGS, OTHER_CA), work / "pki-other")
    # Our CA, but a server certificate for some other name (the backend's address is in it).
    wrong_spec = dataclasses.replace(mtls.pki_spec(SETTINGS, WRONG_NAME)["server"],
                                     common_name="other-name.lab.internal",
                                     dns_names=("other-name.lab.internal", "localhost"))
    wrong = mtls_lab.issue("server-wrong-name", wrong_spec, ours["intermediate"], work / "pki-ours")

    trust = mtls.ca_bundle_pem(ours["root"].cert_pem, ours["intermediate"].cert_pem)
    backends = []
    for i, (address, server, chain_ca) in enumerate([
            (GOOD, ours["server"], ours["intermediate"]),
            (OTHER_CA, other["server"], other["intermediate"]),
            (WRONG_NAME, wrong, ours["intermediate"])]):
        # Laid out as backend_install_script expects on the proxy host; haproxy always trusts
        # OUR CA, so a failure on the wrong-certificate backends can only be Envoy refusing them.
        cert_dir = work / f"backend-{address}"
        cert_dir.mkdir()
        (cert_dir / "server.pem").write_text(mtls.server_pem(server.cert_pem, chain_ca.cert_pem, server.key_pem))
        (cert_dir / "ca.crt").write_text(trust)
        ccec = mtls_pack.mtls_envoy_config(SETTINGS, address)
        backends.append(Backend(address, server, ccec, mtls_pack.mtls_network_policy(SETTINGS, ccec, address),
                                listen_port=15001 + i, admin_port=19001 + i, cert_dir=cert_dir))

    secrets = [mtls_pack.tls_secret(mtls_pack.CLIENT_SECRET,
                               mtls.chain_pem(ours["client"].cert_pem, ours["intermediate"].cert_pem),
                               ours["client"].key_pem),
               mtls_pack.ca_secret(mtls_pack.CA_SECRET, trust)]
    running = MtlsLab(SETTINGS, secrets, backends, work)
    running.pki = {"ours": ours, "other": other}
    with running:
        yield running


def _backend(lab, address):
    return next(b for b in lab.backends if b.address == address)


def _ssl_stats(lab, address):
    prefix = f"cluster.{mtls_pack.CLUSTER}.ssl."
    return {k[len(prefix):]: v for k, v in lab.envoy_stats(_backend(lab, address), prefix).items()}


def _delta(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _planned(address: str = GOOD, stage: str | None = None) -> dict[str, probes.Planned]:
    """{probe key: planned probe} of the mtls scenario for the backend at ``address``."""
    plan = probes.plan(SCENARIO, Context(SETTINGS, address), stage)
    got = {p.probe.key: p for p in plan.probes}
    assert set(got) == {INJECT, DIRECT}, sorted(got)
    return got


def _run(lab, p: probes.Planned, *extra: str):
    """A planned probe from its source pod, with its URL and curl arguments: (Observation, body)."""
    return lab.curl(role_of(p.probe.traffic.source), p.probe.url, *p.probe.curl_args, *extra)


def test_certificates_are_built_from_the_spec(lab):
    ours = lab.pki["ours"]
    for name, issued in ours.items():
        text = subprocess.run(["openssl", "x509", "-in", str(issued.cert), "-noout", "-subject",
                               "-startdate", "-enddate", "-ext", "subjectAltName,basicConstraints"],
                              capture_output=True, text=True, check=True).stdout
        assert f"CN = {issued.spec.common_name}" in text, text
        dates = dict(line.split("=", 1) for line in text.splitlines() if line.startswith("not"))
        parse = lambda v: dt.datetime.strptime(v, "%b %d %H:%M:%S %Y GMT")  # noqa: E731
        hours = (parse(dates["notAfter"]) - parse(dates["notBefore"])).total_seconds() / 3600
        assert hours == issued.spec.validity_hours, (name, hours)
    chain = subprocess.run(["openssl", "verify", "-CAfile", str(ours["root"].cert), "-untrusted",
                            str(ours["intermediate"].cert), "-purpose", "sslserver", str(ours["server"].cert)],
                           capture_output=True, text=True)
    assert chain.returncode == 0, chain.stderr
    client = subprocess.run(["openssl", "verify", "-CAfile", str(ours["root"].cert), "-untrusted",
                             str(ours["intermediate"].cert), "-purpose", "sslclient", str(ours["client"].cert)],
                            capture_output=True, text=True)
    assert client.returncode == 0, client.stderr


def test_envoy_validates_the_bootstrap(lab):
    for b in lab.backends:
        proc = envoy.validate(str(lab.bootstrap_path(b)), timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "deprecated" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr


def test_envoy_runs_the_rendered_resources_with_only_ciliums_additions(lab):
    b = _backend(lab, GOOD)
    boot = mtls_lab.envoy_bootstrap(b.ccec, lab.client_secrets, listen_port=1, admin_port=2,
                                    secret_dir=lab.workdir / "sds-check")
    assert envoy.strip_lab_additions(boot) == b.ccec["spec"]["resources"]  # the cluster verbatim, too
    resources = {r["name"]: {k: v for k, v in r.items() if k != "@type"} for r in b.ccec["spec"]["resources"]}
    listener, = boot["static_resources"]["listeners"]
    # Cilium's listener keys are all the lab adds here (no access log, unlike the egress lab)
    added = {k: listener.pop(k, None) for k in envoy.LAB_LISTENER_KEYS}
    assert listener == resources[mtls_pack.LISTENER]
    assert added["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 1}
    assert added["listener_filters"] == [envoy.ORIGINAL_DST]  # the CCEC's listener has none of its own
    assert added["access_log"] is None
    assert set(boot["static_resources"]) == {"listeners", "clusters", "secrets"}
    # every SDS reference resolves to a static secret of the same name, built like Cilium builds it
    secret_names = {s["name"] for s in boot["static_resources"]["secrets"]}
    assert {name for _, name in sds_references(b.ccec)} == secret_names == {
        "cilium-secrets/tls-client-cert", "cilium-secrets/mtls-ca"}


@pytest.mark.parametrize("stage", STAGES)
def test_every_planned_probe(lab, stage):
    """Every probe of the mtls plan at ``stage`` - the stage's objects in force in the lab (``open``:
    no redirect; ``mtls-injection``: the rendered CCEC and CNP, exactly the lab's backend's) - from
    its source pod, judged by ``probes.judge`` (with the scenario's ``mtls-echo`` check where the
    plan applies it)."""
    plan = probes.plan(SCENARIO, Context(SETTINGS, GOOD), stage)
    lab.apply_stage(plan.stage.objects)
    try:
        cells = [probes.judge(p, _run(lab, p)[0], SETTINGS) for p in plan.probes]
    finally:
        lab.set_redirects(lab.backends)
    assert all(c["ok"] for c in cells), "\n".join(c["message"] for c in cells if not c["ok"])
    assert {c["probe"].removeprefix(f"{SCENARIO}-") for c in cells} == {INJECT, DIRECT}


def test_plain_http_from_the_pod_gets_mtls_injected(lab):
    p = _planned()[INJECT]
    assert role_of(p.probe.traffic.source) == MTLS_POD and p.check == probes.MTLS_ECHO
    before = _ssl_stats(lab, GOOD)
    obs, body = _run(lab, p)
    assert obs.outcome == p.expected == policy.ALLOW, (obs, lab.logs())
    assert obs.http_code == "200"
    assert mtls_pack.check_echo(SETTINGS, body) == [], body
    assert probes.judge(p, obs, SETTINGS)["ok"]
    headers = mtls_pack.echo_headers(body)
    assert headers["x-ssl-client-cn"] == SETTINGS.mtls_client_cn
    assert headers["x-ssl-client-verify"] == "0"
    assert f"CN={SETTINGS.mtls_client_cn}" in headers["x-ssl-client-dn"]
    assert "intermediate CA" in headers["x-ssl-issuer"]
    delta = _delta(before, _ssl_stats(lab, GOOD))
    assert delta.get("handshake") == 1, delta  # this request went through Envoy's mTLS


def test_direct_tls_without_a_client_certificate_is_refused_with_an_alert(lab):
    p = _planned()[DIRECT]
    assert role_of(p.probe.traffic.source) == DIRECT_POD  # the probe must not be redirected into Envoy
    obs, body = _run(lab, p)
    assert obs.outcome == p.expected == REFUSED, obs
    assert obs.curl_exit == 56, obs  # TLS 1.3: the alert arrives after the handshake
    assert "alert certificate required" in obs.detail, obs.detail
    assert body == ""


def _direct_with_client_cert(lab, pki: str):
    """TLS straight to the backend (no redirect) presenting ``pki``'s client certificate."""
    certs = lab.pki[pki]
    chain = lab.workdir / f"{pki}-client-chain.pem"
    chain.write_text(mtls.chain_pem(certs["client"].cert_pem, certs["intermediate"].cert_pem))
    return _run(lab, _planned()[DIRECT], "--cert", str(chain), "--key", str(certs["client"].key))


def test_a_client_certificate_of_another_ca_is_refused(lab):
    obs, _ = _direct_with_client_cert(lab, "other")
    assert obs.outcome == REFUSED and obs.curl_exit == 56, obs
    assert "alert unknown ca" in obs.detail, obs.detail


def test_our_client_certificate_directly_is_accepted(lab):
    """Control for the refusals above: same path, same backend, our certificate -> the echo."""
    obs, body = _direct_with_client_cert(lab, "ours")
    assert obs.outcome == policy.ALLOW, obs
    assert mtls_pack.check_echo(SETTINGS, body) == [], body


def test_plain_http_without_envoy_does_not_reach_the_echo(lab):
    """The plain request from a pod no listener redirects (mtls-direct) is what the ``open`` stage
    plans for the injected one: the backend refuses it."""
    p = _planned(stage=STAGES[0])[INJECT]
    obs, body = lab.curl(DIRECT_POD, p.probe.url, *p.probe.curl_args)
    assert obs.outcome == p.expected == REFUSED, obs
    assert body == ""


def test_tls_from_the_injected_namespace_is_wrapped_not_passed_through(lab):
    """Why the direct-TLS probe runs from mtls-direct: from mtls-inject the CNP redirects port 8083
    whatever the client speaks, so the pod's ClientHello travels *inside* Envoy's mTLS; haproxy
    answers it with a plain HTTP 400 and the pod's TLS stack chokes on that (curl exit 35)."""
    p = _planned()[DIRECT]
    obs, _ = lab.curl(MTLS_POD, p.probe.url, *p.probe.curl_args)
    assert obs.outcome == REFUSED and obs.curl_exit == 35, obs


@pytest.mark.parametrize("address,stat", [(OTHER_CA, "fail_verify_error"), (WRONG_NAME, "fail_verify_san")])
def test_envoy_refuses_a_backend_it_cannot_verify(lab, address, stat):
    p = _planned(address)[INJECT]  # the plan for that backend: its CCEC and CNP are the lab's
    assert p.expected == policy.ALLOW
    before = _ssl_stats(lab, address)
    obs, body = _run(lab, p)
    delta = _delta(before, _ssl_stats(lab, address))
    assert obs.outcome != p.expected, (obs, body)
    assert obs.outcome == REFUSED, obs
    assert body == ""
    assert delta.get(stat, 0) >= 1 and delta.get("handshake", 0) == 0, delta
