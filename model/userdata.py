"""Cloud-init user-data for both hosts, rendered from settings and the two Elastic IPs.

Both scripts depend only on settings that never change with the egress lock and on the EIPs
(allocated before either instance boots), so ``restrictEgress`` never touches user-data and never
replaces an instance.

The kind host fetches everything it installs (apt packages, kind, kubectl, the kind node image and
every container image inside the cluster) *through the proxy host*. That is what lets
``restrictEgress: true`` work on the very first ``up``: the locked security group allows all
traffic to the proxy, so the host boots, builds its cluster and pulls Cilium's images the same way
locked or unlocked - exactly like an edge cluster behind a corporate proxy (DESIGN.md §5). Pod
traffic is not proxied: it is what the lab's policies and probes are about.
"""
from __future__ import annotations

import shlex

import yaml

from . import network
from .boot_refusals import CURL_WRITE_OUT, REFUSED_MARK, refusal_functions
from .platforms import OWNER_LABEL
from .proxy import squid_conf
from .settings import Settings

KIND_CLUSTER_NAME = "egress-lab"
KUBECTL_VERSION = "v1.34.1"
LAB_DIR = "/var/lib/cilium-egress-lab"
READY_MARKER = f"{LAB_DIR}/setup-complete"
BOOT_LOG = "/var/log/cilium-egress-lab.log"
INOTIFY = {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 524288}
# On the kind host itself kubectl talks to the API server through the published port on loopback;
# 127.0.0.1 is added to the certificate's SANs (kind_cluster_config), kind's own kubeconfig names
# 0.0.0.0 (its apiServerAddress).
HOST_API_SERVER = f"https://127.0.0.1:{network.KUBE_API_PORT}"

# Fresh Ubuntu images run unattended-upgrades at boot, which holds the dpkg lock for minutes: every
# apt call waits for it (apt >= 1.9.11) instead of failing at once; `update` fails when any index
# could not be fetched (apt >= 2.1.16; by default it only warns and exits 0), so retries see it.
APT_GET = "apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=5"
APT_UPDATE = f"{APT_GET} -o APT::Update::Error-Mode=any update -q"
APT_INSTALL = f"DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a {APT_GET} install -y -q"
# every boot download names the URL it fetched last and the proxy's answer (boot_refusals.CURL_WRITE_OUT)
CURL_RETRY = ("curl --retry 5 --retry-all-errors --retry-delay 5 --connect-timeout 10 "
              f"-w {shlex.quote(CURL_WRITE_OUT)}")

# Bounded retries of a network step. The hosts get their Elastic IP associated only after launch,
# so the first seconds of user-data may run without any path to the internet (and the proxy host
# boots in parallel): every network step goes through this.
# Each attempt's stderr is kept (and still shown) so that the final failure can be explained: the
# kind host defines ``explain_failure`` (model/boot_refusals.py), which names what the proxy refused.
RETRY_FUNCTION = """retry() {  # retry ATTEMPTS DELAY_SECONDS COMMAND...
  local attempts=$1 delay=$2 n=1 err
  shift 2
  err=$(mktemp)
  until { "$@" 2>&1 1>&3 3>&- | tee "$err" >&2; } 3>&1; do
    if [ "$n" -ge "$attempts" ]; then
      echo "cilium-egress-lab: giving up after $n attempts: $*" >&2
      if declare -F explain_failure >/dev/null; then explain_failure "$err"; fi
      rm -f "$err"
      return 1
    fi
    echo "cilium-egress-lab: attempt $n/$attempts failed, retrying in ${delay}s: $*" >&2
    n=$((n + 1))
    sleep "$delay"
  done
  rm -f "$err"
}"""


# Published SHA-256 of the binaries the kind host downloads, pinned for the default versions
# (kind: the release's kind-linux-amd64.sha256sum; kubectl: dl.k8s.io .../kubectl.sha256). Other
# versions are checked against the checksum file their release publishes. A mismatch stops the boot.
PINNED_SHA256 = {
    "https://github.com/kubernetes-sigs/kind/releases/download/v0.30.0/kind-linux-amd64":
        "517ab7fc89ddeed5fa65abf71530d90648d9638ef0c4cde22c2c11f8097b8889",
    "https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubectl":
        "7721f265e18709862655affba5343e85e1980639395d5754473dafaadcaa69e3",
}

FETCH_VERIFIED_FUNCTION = """fetch_verified() {  # fetch_verified URL SHA256-or-empty CHECKSUM_URL DEST
  local url=$1 sum=$2 sums_url=$3 dest=$4 tmp got
  tmp=$(mktemp)
  retry 5 10 CURL -fsSL -o "$tmp" "$url"
  if [ -z "$sum" ]; then
    sum=$(retry 5 10 CURL -fsSL "$sums_url" | awk '{print $1; exit}')
  fi
  got=$(sha256sum "$tmp" | awk '{print $1}')
  if [ "$got" != "$sum" ]; then
    echo "cilium-egress-lab: CHECKSUM MISMATCH for $url: expected $sum, got $got; not installing it" >&2
    rm -f "$tmp"
    return 1
  fi
  install -m 0755 "$tmp" "$dest"
  rm -f "$tmp"
  echo "cilium-egress-lab: $dest verified (sha256 $got)"
}"""


def fetch_verified(url: str, checksum_url: str, dest: str, pinned: dict[str, str]) -> str:
    """The call that downloads ``url`` to ``dest`` and checks it against the pinned digest, or the
    release's checksum file when the version is not pinned."""
    q = shlex.quote
    return f"fetch_verified {q(url)} {q(pinned.get(url, ''))} {q(checksum_url)} {q(dest)}"


# NTP from the Amazon Time Sync Service: security groups do not filter it (nor the VPC resolver),
# and locked egress allows nothing but the proxy. Both time daemons Ubuntu may run are pointed there.
TIME_SYNC = "169.254.169.123"


def time_sync_setup() -> str:
    return f"""mkdir -p /etc/systemd/timesyncd.conf.d /etc/chrony/sources.d
printf '[Time]\\nNTP={TIME_SYNC}\\n' > /etc/systemd/timesyncd.conf.d/amazon-time-sync.conf
echo 'server {TIME_SYNC} prefer iburst minpoll 4 maxpoll 4' > /etc/chrony/sources.d/amazon-time-sync.sources
systemctl try-restart systemd-timesyncd.service chrony.service || true"""


def no_proxy(extra: tuple[str, ...] = ()) -> str:
    """Destinations the kind host and its nodes reach directly, never through the proxy (``extra``:
    a two-cluster pack's nodes and pod CIDRs, model/mesh_aws.py)."""
    return ",".join([
        "localhost", "127.0.0.1", "169.254.169.254", network.VPC_CIDR, network.KIND_DOCKER_SUBNET,
        network.KIND_POD_SUBNET, network.KIND_SERVICE_SUBNET, ".svc", ".cluster.local",
        f"{KIND_CLUSTER_NAME}-control-plane", *extra,
    ])


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the kubeadm patch) as readable ``|`` blocks."""


_BlockDumper.add_representer(str, lambda d, v: d.represent_scalar(
    "tag:yaml.org,2002:str", v, style="|" if "\n" in v else None))


def api_cert_sans(api_address: str) -> list[str]:
    """Names added to the API server certificate: the Elastic IP (the operator's kubeconfig) and
    127.0.0.1 (the host's own kubeconfig, HOST_API_SERVER)."""
    return [api_address, "127.0.0.1"]


def kind_cluster_config(api_address: str | None, owner: str | None = None) -> dict:
    """kind Cluster config: no default CNI and no kube-proxy (Cilium replaces both).

    aws (``api_address``: the Elastic IP): the API server published on the host's port 6443 with the
    Elastic IP and 127.0.0.1 in its certificate. The SANs are *added* with RFC 6902 ``add`` ops: kind
    applies ``kubeadmConfigPatches`` as RFC 7386 merge patches, where a ``certSANs`` list would replace
    kind's own list ([localhost, apiServerAddress]) (kind pkg/internal/patch/kubeyaml.go, resource.go).

    Empty ``group`` *and* ``version``: kind builds the patch's apiVersion as ``version`` when the group
    is empty, else ``group + "/" + version`` (pkg/internal/patch/matchinfo.go), and applies it only when
    that is "" or equal to the document's apiVersion (resource.go ``matches``) - at every tag from
    v0.20.0 to v0.32.0. An empty apiVersion matches ClusterConfiguration of whichever kubeadm API kind
    generates (v1beta3 in v0.28-v0.31, v1beta4 for Kubernetes >= 1.36 in v0.32); ``group:
    kubeadm.k8s.io, version: ""`` ("kubeadm.k8s.io/") matches nothing and is skipped silently.

    local (``api_address`` None): kind's defaults for where the API listens - 127.0.0.1 on a random
    port (kind v0.30.0 pkg/apis/config/v1alpha4/default.go), never the LAN - and its own SANs already
    name it (``certSANs: [localhost, "{{.APIServerAddress}}"]``, pkg/cluster/internal/kubeadm/config.go),
    so no patch. ``owner``: the node label model.platforms.OWNER_LABEL (which stack created the cluster:
    the name-clash check reads it)."""
    networking = {
        "disableDefaultCNI": True,
        "kubeProxyMode": "none",
        **({"apiServerAddress": "0.0.0.0", "apiServerPort": network.KUBE_API_PORT} if api_address else {}),
        "podSubnet": network.KIND_POD_SUBNET,
        "serviceSubnet": network.KIND_SERVICE_SUBNET,
    }
    node: dict = {"role": "control-plane"}
    if owner is not None:
        node["labels"] = {OWNER_LABEL: owner}
    config = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": KIND_CLUSTER_NAME,
              "networking": networking}
    if api_address:
        ops = [{"op": "add", "path": "/apiServer/certSANs/-", "value": san} for san in api_cert_sans(api_address)]
        config["kubeadmConfigPatchesJSON6902"] = [{
            "group": "", "version": "", "kind": "ClusterConfiguration",
            "patch": yaml.safe_dump(ops, sort_keys=False)}]
    config["nodes"] = [node]
    return config


def _heredoc(path: str, body: str, tag: str = "LAB_EOF") -> str:
    assert tag not in body
    return f"cat > {shlex.quote(path)} <<'{tag}'\n{body.rstrip()}\n{tag}"


def _preamble(role: str, settings: Settings) -> str:
    return f"""#!/bin/bash
# {role} host for cilium-egress-lab ({settings.env_name}). Rendered by model/userdata.py.
set -euo pipefail
exec > >(tee -a {BOOT_LOG}) 2>&1
mkdir -p {LAB_DIR}
{RETRY_FUNCTION}
{time_sync_setup()}
"""


def kubeconfig_pipeline(server: str, cluster: str = KIND_CLUSTER_NAME) -> str:
    """kind's kubeconfig with its server rewritten (kind writes https://<apiServerAddress>:<port>)."""
    return (f"kind get kubeconfig --name {cluster} "
            f"| sed -E 's#server: https://[^ ]+#server: {server}#'")


def proxy_wait(proxy_url: str, probe_url: str, attempts: int = 120, delay: int = 5) -> str:
    """Wait until the proxy passes a real request. A TCP connect proves nothing: Ubuntu's squid
    listens with its stock config (403 for us) before the proxy host writes ours. If it never
    passes, the last refusal is explained (explain_failure) like any other network step's."""
    q = shlex.quote
    return f"""echo "cilium-egress-lab: waiting for the proxy {proxy_url} to pass a request (it boots in parallel)"
proxy_ok=0
proxy_err=$(mktemp)
for attempt in $(seq 1 {attempts}); do
  if curl -fsS -o /dev/null --max-time 15 -w {q(CURL_WRITE_OUT)} --proxy {q(proxy_url)} {q(probe_url)} 2>"$proxy_err"; then
    echo "cilium-egress-lab: proxy ready (attempt $attempt)"
    proxy_ok=1
    break
  fi
  cat "$proxy_err" >&2
  echo "cilium-egress-lab: proxy not ready yet (attempt $attempt/{attempts}), next try in {delay}s"
  sleep {delay}
done
if [ "$proxy_ok" != 1 ]; then
  echo "cilium-egress-lab: the proxy {proxy_url} never passed a request; see its boot log" >&2
  explain_failure "$proxy_err"
  exit 1
fi
rm -f "$proxy_err\""""


def api_certificate_check(api_address: str, kubeconfig: str = "/root/.kube/config",
                          port: int = network.KUBE_API_PORT) -> str:
    """The end of the kind host's boot: a TLS-verified request (kubectl checks the server against
    the kubeconfig's CA; never ``--insecure-skip-tls-verify``) to the API on 127.0.0.1 - the host's
    own kubeconfig - and under the Elastic IP the operator's kubeconfig names. The EIP itself is not
    reachable from the host (the security group admits 6443 only from operatorCidr), so that request
    goes to loopback with ``--tls-server-name <EIP>``: the same certificate, verified for the EIP's
    name (Go's x509 matches an IP server name against the IP SANs). A SAN missing from the
    certificate fails the boot here, with the name, instead of an x509 error in a later step."""
    q = shlex.quote
    return f"""api_ready() {{  # api_ready NAME KUBECTL-ARGS...: the API answers /readyz over verified TLS
  local name=$1 out
  shift
  if out=$(kubectl --kubeconfig {kubeconfig} "$@" get --raw /readyz 2>&1); then
    echo "cilium-egress-lab: API certificate verified for $name (/readyz: $out)"
    return 0
  fi
  echo "cilium-egress-lab: API check for $name failed: $out" >&2
  return 1
}}
for name in 127.0.0.1 {q(api_address)}; do
  args=()
  [ "$name" = 127.0.0.1 ] || args=(--tls-server-name "$name")
  if ! retry 24 5 api_ready "$name" "${{args[@]}}"; then
    echo "cilium-egress-lab: API CERTIFICATE CHECK FAILED: https://$name:{port} is not verified by the \
cluster CA (is $name among the certificate's SANs? kind-config.yaml kubeadmConfigPatchesJSON6902)" >&2
    exit 1
  fi
done"""


def single_cluster_boot(kind_ip: str) -> str:
    """The lab's one kind cluster: its config, created (retried), the host's kubeconfig, the API
    certificate check."""
    kind_config = yaml.dump(kind_cluster_config(kind_ip), Dumper=_BlockDumper, sort_keys=False)
    return f"""{_heredoc(f"{LAB_DIR}/kind-config.yaml", kind_config)}
# kind hands HTTP(S)_PROXY/NO_PROXY to the node, so containerd pulls images through the proxy.
create_cluster() {{
  kind create cluster --config {LAB_DIR}/kind-config.yaml && return 0
  kind delete cluster --name {KIND_CLUSTER_NAME} || true
  return 1
}}
if ! kind get clusters | grep -qx {KIND_CLUSTER_NAME}; then
  retry 3 15 create_cluster
fi
mkdir -p /root/.kube
{kubeconfig_pipeline(HOST_API_SERVER)} > /root/.kube/config
chmod 0600 /root/.kube/config
{api_certificate_check(kind_ip)}"""


def kind_host_user_data(settings: Settings, kind_ip: str, proxy_ip: str,
                        pinned: dict[str, str] = PINNED_SHA256, cluster_boot: str | None = None,
                        extra_no_proxy: tuple[str, ...] = ()) -> str:
    """``cluster_boot``: what creates the clusters (default single_cluster_boot; a two-cluster pack:
    model.mesh_aws.cluster_boot), ``extra_no_proxy``: its additions to no_proxy()."""
    proxy_url = f"http://{proxy_ip}:{settings.proxy_port}"
    kind_url = (f"https://github.com/kubernetes-sigs/kind/releases/download/"
                f"{settings.kind_version}/kind-linux-amd64")
    kubectl_url = f"https://dl.k8s.io/release/{KUBECTL_VERSION}/bin/linux/amd64/kubectl"
    sysctl = "\n".join(f"{k} = {v}" for k, v in INOTIFY.items())
    docker_dropin = (
        "[Service]\n"
        f'Environment="HTTP_PROXY={proxy_url}" "HTTPS_PROXY={proxy_url}" "NO_PROXY={no_proxy(extra_no_proxy)}"\n'
    )
    apt_conf = (f'Acquire::http::Proxy "{proxy_url}";\n'
                f'Acquire::https::Proxy "{proxy_url}";\n'
                'Acquire::Retries "5";\n')
    q = shlex.quote
    return _preamble("kind", settings) + f"""
export HTTP_PROXY={q(proxy_url)} HTTPS_PROXY={q(proxy_url)} NO_PROXY={q(no_proxy(extra_no_proxy))}
export http_proxy="$HTTP_PROXY" https_proxy="$HTTPS_PROXY" no_proxy="$NO_PROXY"
{refusal_functions()}

{proxy_wait(proxy_url, kubectl_url + ".sha256")}

{_heredoc("/etc/sysctl.d/90-kind-inotify.conf", sysctl)}
sysctl --system >/dev/null

{_heredoc("/etc/apt/apt.conf.d/95cilium-egress-lab-proxy", apt_conf)}
retry 10 10 {APT_UPDATE}
retry 5 10 env {APT_INSTALL} docker.io curl ca-certificates

mkdir -p /etc/systemd/system/docker.service.d
{_heredoc("/etc/systemd/system/docker.service.d/http-proxy.conf", docker_dropin)}
systemctl daemon-reload
systemctl restart docker
usermod -aG docker {network.SSH_USER}

{FETCH_VERIFIED_FUNCTION.replace("CURL", CURL_RETRY)}
{fetch_verified(kind_url, kind_url + ".sha256sum", "/usr/local/bin/kind", pinned)}
{fetch_verified(kubectl_url, kubectl_url + ".sha256", "/usr/local/bin/kubectl", pinned)}

{cluster_boot if cluster_boot is not None else single_cluster_boot(kind_ip)}
touch {READY_MARKER}
echo "cilium-egress-lab: kind host ready"
"""


# squid's package starts squid from its postinst (deb-systemd-invoke), which honours policy-rc.d:
# forbid that start, so squid first starts with our config, never with the stock one (403 for us).
_NO_START = "/usr/sbin/policy-rc.d"


def proxy_host_user_data(settings: Settings, kind_ip: str | list[str]) -> str:
    """The shared proxy host; ``kind_ip``: the kind host's address, or every edge host's (a fleet)."""
    clients = [kind_ip] if isinstance(kind_ip, str) else list(kind_ip)
    conf = squid_conf(settings.proxy_port, [network.host_cidr(ip) for ip in clients], settings.allowed_domains,
                      settings.bootstrap_domains)
    return _preamble("proxy", settings) + f"""
printf '#!/bin/sh\nexit 101\n' > {_NO_START}
chmod 0755 {_NO_START}
retry 30 10 {APT_UPDATE}
retry 5 10 env {APT_INSTALL} squid
rm -f {_NO_START}
{_heredoc("/etc/squid/squid.conf", conf)}
squid -k parse
systemctl enable squid
systemctl restart squid
touch {READY_MARKER}
echo "cilium-egress-lab: proxy host ready"
"""


USER_DATA_BOUNDARY = "==cilium-egress-lab-user-data=="  # fixed: a random one would replace the host each up


def with_host_key(script: str, private_key_openssh: str, public_key_openssh: str) -> str:
    """cloud-init user-data (MIME multi-part): a cloud-config part whose ``ssh_keys`` makes
    cloud-init's ssh module install the host's ED25519 key, and nothing else (``ssh_genkeytypes:
    []``, ``ssh_deletekeys``), before sshd first starts - so every SSH client that pins the public
    key (pulumi-command's ``host_key``) only ever talks to this host - then the boot script."""
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    cloud_config = "#cloud-config\n" + yaml.dump({
        "ssh_deletekeys": True, "ssh_genkeytypes": [],
        "ssh_keys": {"ed25519_private": private_key_openssh, "ed25519_public": public_key_openssh.strip()},
    }, Dumper=_BlockDumper, sort_keys=False)
    message = MIMEMultipart(boundary=USER_DATA_BOUNDARY)
    message.attach(MIMEText(cloud_config, "cloud-config"))
    message.attach(MIMEText(script, "x-shellscript"))
    return message.as_string()


def ready_command() -> str:
    """First remote step on each host: wait for cloud-init, then insist the script finished.

    ``cloud-init status --wait`` exits 2 for "done with recoverable errors" (deprecation warnings
    on a fresh image), which is fine; our own marker says whether the user-data really completed.
    """
    return (f"cloud-init status --wait >/dev/null || test $? -eq 2; "
            f"test -f {READY_MARKER} || {{ echo 'user-data did not finish: "
            f"see {BOOT_LOG}' >&2; sudo grep -h '{REFUSED_MARK}' {BOOT_LOG} >&2; "
            f"sudo tail -n 40 {BOOT_LOG} >&2; exit 1; }}")


def kubeconfig_command(api_address: str) -> str:
    """Print the cluster's kubeconfig with the server rewritten to the Elastic IP."""
    return "sudo " + kubeconfig_pipeline(f"https://{api_address}:{network.KUBE_API_PORT}")
