"""The mTLS-injection scenario (DESIGN.md §4, issue 6): pods speak plain HTTP, Cilium's Envoy
originates mTLS to a backend that demands a client certificate the pods never see.

Pure (no Pulumi import): the PKI *specification* (pulumi-tls in the stack and openssl in the
data-plane lab both build certificates from ``pki_spec``), the Kubernetes objects (namespace, curl
pod, secrets, CiliumClusterwideEnvoyConfig, CiliumNetworkPolicy), the backend on the proxy host
(haproxy + a stdlib echo server + their install script) and the check of the echo's answer. The
scenario (scenarios/mtls.py) puts them together with its workloads, stages and probes.

Cilium facts this encodes (DESIGN.md §5a; cilium/cilium v1.18):
- Envoy reads secrets only from ``envoyConfig.secretsNamespace`` (cilium-secrets), named
  ``cilium-secrets/<name>``; a name without ``/`` would mean a secret defined inside the CEC
  (pkg/ciliumenvoyconfig/cec_resource_parser.go: ``qualifySdsSecretConfig`` fills in Cilium's own
  SDS source and qualifies names that have no namespace).
- Cilium turns a Secret into an Envoy secret by its keys (pkg/envoy/secretsync.go,
  ``k8sToEnvoySecret``): ``tls.crt``/``tls.key`` make a TlsCertificate and win over everything
  else; only a secret *without* them and with ``ca.crt`` becomes a validation context
  (``trusted_ca``). So the CA lives in its own Opaque secret holding nothing but ``ca.crt``.
- The SDS CA and the server-name check need ``combined_validation_context``:
  ``validation_context_sds_secret_config`` alone replaces the whole validation context with the
  secret (no SAN matching). Cilium qualifies the nested SDS reference since 1.17 (cilium PR #34449).
- A CNP referencing a cluster-wide config must say ``kind: CiliumClusterwideEnvoyConfig``
  (``scenarios.cilium.listener_ref`` copies the kind from the object); the listener has no address.
- The CNP redirects *every* connection from mtls-inject to backend:8083 into Envoy, so a pod's own
  TLS would be wrapped in Envoy's (haproxy answers 400 inside the tunnel, curl exits 35). The
  "the backend refuses clients without a certificate" probe therefore runs from mtls-direct, which
  no policy selects, and reaches the backend directly.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from scenarios.mtls import BACKEND_PORT, ipv4

from .settings import PROJECT, Settings
from .userdata import _heredoc

ECHO_PORT = 8081
BACKEND_DIR = "/etc/mtls-backend"   # on the proxy host: ca.crt, server.pem (CopyToRemote)
KEY_FILES = ("server.pem",)         # of those, the one carrying a private key (copied as a Pulumi secret)
ECHO_SCRIPT = "/usr/local/lib/cilium-egress-lab/mtls-echo.py"
ECHO_UNIT = "mtls-echo.service"



# ------------------------------------------------------------------------------------------ PKI
# pulumi-tls ``allowed_uses`` names (terraform-provider-tls): the spec speaks the stack's language;
# the data-plane lab maps them to openssl extension names.
KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
              "key_agreement", "cert_signing", "crl_signing", "encipher_only", "decipher_only")
EXTENDED_KEY_USAGES = ("any_extended", "server_auth", "client_auth", "code_signing",
                       "email_protection", "ipsec_end_system", "ipsec_tunnel", "ipsec_user",
                       "timestamping", "ocsp_signing", "microsoft_server_gated_crypto",
                       "netscape_server_gated_crypto", "microsoft_commercial_code_signing",
                       "microsoft_kernel_code_signing")
CA_USES = ("cert_signing", "crl_signing")
SERVER_USES = ("digital_signature", "key_encipherment", "server_auth")
CLIENT_USES = ("digital_signature", "key_encipherment", "client_auth")
PKI_ORDER = ("root", "intermediate", "server", "client")  # every issuer before its subjects


@dataclass(frozen=True)
class CertSpec:
    common_name: str
    organization: str
    is_ca: bool
    issuer: str | None          # key in the pki_spec dict of the signer; None = self-signed root
    algorithm: str              # pulumi_tls.PrivateKey algorithm
    ecdsa_curve: str            # pulumi_tls.PrivateKey ecdsa_curve
    validity_hours: int
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    allowed_uses: tuple[str, ...]


def pki_spec(settings: Settings, backend_address: str) -> dict[str, CertSpec]:
    """Root CA -> intermediate CA -> server (the backend: its name and address) and client (Envoy).

    ECDSA P-256 throughout. CAs live ``pkiCaValidityHours``, leaves ``pkiCertValidityHours``
    (settings already refuse a leaf that outlives its CAs)."""
    backend = ipv4(backend_address)
    org = PROJECT
    ca_hours, leaf_hours = settings.pki_ca_validity_hours, settings.pki_cert_validity_hours

    def spec(cn, is_ca, issuer, hours, uses, dns=(), ips=()):
        return CertSpec(cn, org, is_ca, issuer, "ECDSA", "P256", hours, tuple(dns), tuple(ips), uses)

    return {
        "root": spec(f"{PROJECT} {settings.env_name} root CA", True, None, ca_hours, CA_USES),
        "intermediate": spec(f"{PROJECT} {settings.env_name} intermediate CA", True, "root",
                             ca_hours, CA_USES),
        "server": spec(settings.mtls_server_name, False, "intermediate", leaf_hours, SERVER_USES,
                       dns=(settings.mtls_server_name, "localhost"), ips=(backend, "127.0.0.1")),
        "client": spec(settings.mtls_client_cn, False, "intermediate", leaf_hours, CLIENT_USES),
    }


def chain_pem(*pems: str) -> str:
    """PEM blocks concatenated, one newline between them (leaf first for chains)."""
    return "".join(p.strip() + "\n" for p in pems)


def server_pem(server_cert_pem: str, intermediate_pem: str, server_key_pem: str) -> str:
    """haproxy's ``crt`` file: the server certificate, the intermediate it chains through, the key."""
    return chain_pem(server_cert_pem, intermediate_pem, server_key_pem)


def ca_bundle_pem(root_pem: str, intermediate_pem: str) -> str:
    """Trust anchors of both ends (haproxy's ``ca-file``, the ``mtls-ca`` secret): intermediate + root."""
    return chain_pem(intermediate_pem, root_pem)


# -------------------------------------------------------------------------- backend (proxy host)
def haproxy_cfg(cert_dir: str, bind: str = "*", port: int = BACKEND_PORT, echo_port: int = ECHO_PORT,
                run_as: str | None = None) -> str:
    """haproxy terminating mTLS (``verify required`` against ``<cert_dir>/ca.crt``) in front of the
    echo server, passing the verified client identity on as headers. No ``daemon``: the lab runs
    it in the foreground, systemd (``-Ws``) on the host. ``run_as`` drops root after start-up."""
    user = [f"    user {run_as}", f"    group {run_as}"] if run_as else []
    lines = [
        "# Generated by cilium-egress-lab (model/mtls.py). Do not edit by hand.",
        "global",
        *user,
        "    log stdout format raw daemon",
        "    maxconn 256",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 5s",
        "    timeout client 30s",
        "    timeout server 30s",
        "",
        "frontend mtls",
        f"    bind {bind}:{port} ssl crt {cert_dir}/server.pem ca-file {cert_dir}/ca.crt "
        "verify required alpn http/1.1",
        # set-header replaces whatever a client sent; the values come from the verified chain.
        "    http-request set-header X-SSL-Client-CN %[ssl_c_s_dn(cn)]",
        "    http-request set-header X-SSL-Client-DN %[ssl_c_s_dn]",
        "    http-request set-header X-SSL-Client-Verify %[ssl_c_verify]",
        "    http-request set-header X-SSL-Issuer %[ssl_c_i_dn]",
        "    default_backend echo",
        "",
        "backend echo",
        f"    server echo 127.0.0.1:{echo_port}",
    ]
    return "\n".join(lines) + "\n"


_ECHO_SERVER = '''\
"""Echo server of the cilium-egress-lab mTLS backend (generated by model/mtls.py).

Answers every request with JSON {"method", "path", "headers"}. Usage: mtls-echo.py [port]
(default %(port)d); listens on 127.0.0.1 only - haproxy in front of it is the way in.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mtls-echo"

    def _echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": dict(self.headers.items())}, indent=1).encode() + b"\\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _echo


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else %(port)d
    server = ThreadingHTTPServer(("127.0.0.1", port), Echo)
    server.daemon_threads = True
    print(f"mtls-echo listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
'''


def echo_server_py(port: int = ECHO_PORT) -> str:
    """Source of the stdlib echo server (python3 only, no packages)."""
    return _ECHO_SERVER % {"port": port}


def echo_unit(port: int = ECHO_PORT) -> str:
    return (
        "[Unit]\n"
        "Description=cilium-egress-lab mTLS backend echo server\n"
        "After=network.target\n\n"
        "[Service]\n"
        f"ExecStart=/usr/bin/python3 {ECHO_SCRIPT} {port}\n"
        "DynamicUser=yes\n"
        "Restart=on-failure\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def backend_install_script(settings: Settings) -> str:
    """Run as root on the proxy host after the certificates were copied to BACKEND_DIR (ca.crt,
    server.pem). Installs haproxy and python3, the echo service and haproxy's config; checks the
    config; (re)starts both. Idempotent: every run converges to the same state.

    Safe to feed on stdin (``sudo bash -s``): bash reads such a script as it goes, so every command
    that could read stdin (apt's maintainer scripts, needrestart, systemctl) gets /dev/null and
    cannot swallow the rest of the script."""
    q = shlex.quote
    cfg = haproxy_cfg(BACKEND_DIR, run_as="haproxy")
    return f"""#!/bin/bash
# mTLS backend for cilium-egress-lab ({settings.env_name}). Rendered by model/mtls.py.
set -euo pipefail
for f in ca.crt server.pem; do
  if [ ! -s {q(BACKEND_DIR)}/"$f" ]; then
    echo "missing {BACKEND_DIR}/$f: copy the certificates first" >&2
    exit 1
  fi
done
if ! command -v haproxy >/dev/null || ! command -v python3 >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=300 update -q </dev/null
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a \
    apt-get -o DPkg::Lock::Timeout=300 install -y -q haproxy python3 </dev/null
fi
chown root:haproxy {q(BACKEND_DIR)} {q(BACKEND_DIR)}/ca.crt {q(BACKEND_DIR)}/server.pem
chmod 0750 {q(BACKEND_DIR)}
chmod 0644 {q(BACKEND_DIR)}/ca.crt
chmod 0640 {q(BACKEND_DIR)}/server.pem

mkdir -p {q(ECHO_SCRIPT.rsplit("/", 1)[0])}
{_heredoc(ECHO_SCRIPT, echo_server_py())}
chmod 0755 {q(ECHO_SCRIPT)}
{_heredoc("/etc/systemd/system/" + ECHO_UNIT, echo_unit())}

{_heredoc("/etc/haproxy/haproxy.cfg", cfg)}
haproxy -c -f /etc/haproxy/haproxy.cfg </dev/null

systemctl daemon-reload </dev/null
systemctl enable {ECHO_UNIT} haproxy </dev/null
systemctl restart {ECHO_UNIT} haproxy </dev/null
echo "cilium-egress-lab: mTLS backend on :{BACKEND_PORT} ready"
"""


