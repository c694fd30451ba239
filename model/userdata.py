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
from .proxy import squid_conf
from .settings import Settings

KIND_CLUSTER_NAME = "egress-lab"
KUBECTL_VERSION = "v1.34.1"
LAB_DIR = "/var/lib/cilium-egress-lab"
READY_MARKER = f"{LAB_DIR}/setup-complete"
INOTIFY = {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 524288}


def no_proxy() -> str:
    """Destinations the kind host and its nodes reach directly, never through the proxy."""
    return ",".join([
        "localhost", "127.0.0.1", "169.254.169.254", network.VPC_CIDR, network.KIND_DOCKER_SUBNET,
        network.KIND_POD_SUBNET, network.KIND_SERVICE_SUBNET, ".svc", ".cluster.local",
        f"{KIND_CLUSTER_NAME}-control-plane",
    ])


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the kubeadm patch) as readable ``|`` blocks."""


_BlockDumper.add_representer(str, lambda d, v: d.represent_scalar(
    "tag:yaml.org,2002:str", v, style="|" if "\n" in v else None))


def kind_cluster_config(api_address: str) -> dict:
    """kind Cluster config: no default CNI and no kube-proxy (Cilium replaces both); the API server
    published on the host's port 6443 with the Elastic IP in its certificate."""
    patch = yaml.safe_dump({
        "kind": "ClusterConfiguration",
        "apiServer": {"certSANs": [api_address, "127.0.0.1", "localhost"]},
    }, sort_keys=False)
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": KIND_CLUSTER_NAME,
        "networking": {
            "disableDefaultCNI": True,
            "kubeProxyMode": "none",
            "apiServerAddress": "0.0.0.0",
            "apiServerPort": network.KUBE_API_PORT,
            "podSubnet": network.KIND_POD_SUBNET,
            "serviceSubnet": network.KIND_SERVICE_SUBNET,
        },
        "kubeadmConfigPatches": [patch],
        "nodes": [{"role": "control-plane"}],
    }


def _heredoc(path: str, body: str, tag: str = "LAB_EOF") -> str:
    assert tag not in body
    return f"cat > {shlex.quote(path)} <<'{tag}'\n{body.rstrip()}\n{tag}"


def kind_host_user_data(settings: Settings, kind_ip: str, proxy_ip: str) -> str:
    proxy_url = f"http://{proxy_ip}:{settings.proxy_port}"
    kind_url = (f"https://github.com/kubernetes-sigs/kind/releases/download/"
                f"{settings.kind_version}/kind-linux-amd64")
    kubectl_url = f"https://dl.k8s.io/release/{KUBECTL_VERSION}/bin/linux/amd64/kubectl"
    sysctl = "\n".join(f"{k} = {v}" for k, v in INOTIFY.items())
    docker_dropin = (
        "[Service]\n"
        f'Environment="HTTP_PROXY={proxy_url}" "HTTPS_PROXY={proxy_url}" "NO_PROXY={no_proxy()}"\n'
    )
    apt_proxy = (f'Acquire::http::Proxy "{proxy_url}";\n'
                 f'Acquire::https::Proxy "{proxy_url}";\n')
    kind_config = yaml.dump(kind_cluster_config(kind_ip), Dumper=_BlockDumper, sort_keys=False)
    q = shlex.quote
    return f"""#!/bin/bash
# kind host for cilium-egress-lab ({settings.env_name}). Rendered by model/userdata.py.
set -euo pipefail
exec > >(tee -a /var/log/cilium-egress-lab.log) 2>&1
mkdir -p {LAB_DIR}

export HTTP_PROXY={q(proxy_url)} HTTPS_PROXY={q(proxy_url)} NO_PROXY={q(no_proxy())}
export http_proxy="$HTTP_PROXY" https_proxy="$HTTPS_PROXY" no_proxy="$NO_PROXY"

echo "waiting for the proxy {proxy_ip}:{settings.proxy_port} (it boots in parallel)"
for _ in $(seq 1 120); do
  if timeout 3 bash -c {q(f"</dev/tcp/{proxy_ip}/{settings.proxy_port}")}; then break; fi
  sleep 5
done
timeout 3 bash -c {q(f"</dev/tcp/{proxy_ip}/{settings.proxy_port}")}

{_heredoc("/etc/sysctl.d/90-kind-inotify.conf", sysctl)}
sysctl --system >/dev/null

{_heredoc("/etc/apt/apt.conf.d/95cilium-egress-lab-proxy", apt_proxy)}
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io curl ca-certificates

mkdir -p /etc/systemd/system/docker.service.d
{_heredoc("/etc/systemd/system/docker.service.d/http-proxy.conf", docker_dropin)}
systemctl daemon-reload
systemctl restart docker
usermod -aG docker {network.SSH_USER}

curl -fsSLo /usr/local/bin/kind {q(kind_url)}
curl -fsSLo /usr/local/bin/kubectl {q(kubectl_url)}
chmod 0755 /usr/local/bin/kind /usr/local/bin/kubectl

{_heredoc(f"{LAB_DIR}/kind-config.yaml", kind_config)}
# kind hands HTTP(S)_PROXY/NO_PROXY to the node, so containerd pulls images through the proxy.
if ! kind get clusters | grep -qx {KIND_CLUSTER_NAME}; then
  kind create cluster --config {LAB_DIR}/kind-config.yaml
fi
mkdir -p /root/.kube
kind get kubeconfig --name {KIND_CLUSTER_NAME} > /root/.kube/config
touch {READY_MARKER}
echo "cilium-egress-lab: kind host ready"
"""


def proxy_host_user_data(settings: Settings, kind_ip: str) -> str:
    conf = squid_conf(settings.proxy_port, [network.host_cidr(kind_ip)])
    return f"""#!/bin/bash
# proxy host for cilium-egress-lab ({settings.env_name}). Rendered by model/userdata.py.
set -euo pipefail
exec > >(tee -a /var/log/cilium-egress-lab.log) 2>&1
mkdir -p {LAB_DIR}
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q squid
{_heredoc("/etc/squid/squid.conf", conf)}
squid -k parse
systemctl enable squid
systemctl restart squid
touch {READY_MARKER}
echo "cilium-egress-lab: proxy host ready"
"""


def ready_command() -> str:
    """First remote step on each host: wait for cloud-init, then insist the script finished.

    ``cloud-init status --wait`` exits 2 for "done with recoverable errors" (deprecation warnings
    on a fresh image), which is fine; our own marker says whether the user-data really completed.
    """
    return (f"cloud-init status --wait >/dev/null || test $? -eq 2; "
            f"test -f {READY_MARKER} || {{ echo 'user-data did not finish: "
            f"see /var/log/cilium-egress-lab.log' >&2; sudo tail -n 40 /var/log/cilium-egress-lab.log >&2; exit 1; }}")


def kubeconfig_command(api_address: str) -> str:
    """Print the cluster's kubeconfig with the server rewritten to the Elastic IP."""
    server = f"https://{api_address}:{network.KUBE_API_PORT}"
    return (f"sudo kind get kubeconfig --name {KIND_CLUSTER_NAME} "
            f"| sed -E 's#server: https://[^ ]+#server: {server}#'")
