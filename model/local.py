"""The local platform: kind on the user's Docker or Podman, created and deleted by local commands
(pulumi-command local.Command), the egress proxy as a container on kind's network, and the egress
lock as a CiliumClusterwideNetworkPolicy. Pure: commands and objects only.

The cluster comes from the same kind config model as aws (model.userdata.kind_cluster_config: no
default CNI, no kube-proxy), Cilium from the same Helm release and values (model.helm.helm_values:
the agent reaches the API at ``egress-lab-control-plane:6443`` on kind's network, as on the kind
host), the proxy from the same squid config model (model.proxy.squid_conf) and allow-list.

The lock (``restrictEgress``) is weaker than aws's security group: it is a Cilium policy, so it holds
only for pods Cilium enforces. hostNetwork pods and the kind node itself (and so anything on the
user's machine) are not affected; the security group on aws stops the whole host.
"""
from __future__ import annotations

import re
import shlex

import yaml

import scenarios
from scenarios import Context

from . import network
from .mtls import BACKEND_DIR, ECHO_PORT, ECHO_SCRIPT, echo_server_py, haproxy_cfg
from .proxy import squid_conf
from .settings import Settings
from .userdata import KIND_CLUSTER_NAME, kind_cluster_config

CLUSTER = KIND_CLUSTER_NAME
KUBE_CONTEXT = f"kind-{CLUSTER}"              # kind v0.30.0 kubeconfig.ContextForCluster: "kind-" + name
KUBECTL = f"kubectl --context {KUBE_CONTEXT}"  # the user's kubectl, kind's context in the user's kubeconfig
NODE_CONTAINER = f"{CLUSTER}-control-plane"   # kind's node container (also the Helm values' k8sServiceHost)
KIND_NETWORK = "kind"                         # the container network kind creates its nodes on
PROXY_CONTAINER = f"{CLUSTER}-proxy"
PROXY_IMAGE = "ubuntu:24.04"                  # the same Ubuntu release (and squid package) as the aws proxy host
LOCK_NAME = "egress-lock"
SQUID_CONF = "/etc/squid/squid.conf"
SQUID_LOG = "/var/log/squid/access.log"
# Helm and kubectl versions the lab is tested with on local (the emulation tests answer as these do)
HELM_VERSION = "v3.19.0"
KUBECTL_VERSION = "v1.34.1"


def owner(project: str, stack: str) -> str:
    """The value of model.platforms.OWNER_LABEL on the node of the cluster this stack creates: a label
    value (at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends)."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{project}.{stack}")[:63].strip("-_.")
    return text or "cilium-egress-lab"


def cluster_config_yaml(owner_value: str) -> str:
    return yaml.safe_dump(kind_cluster_config(None, owner_value), sort_keys=False)


def _env(engine: str) -> str:
    return "KIND_EXPERIMENTAL_PROVIDER=podman " if engine == "podman" else ""


def create_cluster_command(engine: str) -> str:
    """Create the cluster from the config on stdin (``kind create cluster --config -``) unless it exists
    already - the preflight (model.platforms.local_preflight) has refused one this stack did not create.
    The listing gets no stdin: the config on stdin is for ``create`` alone."""
    env = _env(engine)
    return (f"{env}kind get clusters </dev/null 2>/dev/null | grep -qx {CLUSTER} || "
            f"{env}kind create cluster --name {CLUSTER} --config -")


def delete_cluster_command(engine: str) -> str:
    return f"{_env(engine)}kind delete cluster --name {CLUSTER}"


def kubeconfig_command(engine: str) -> str:
    """kind's kubeconfig for the cluster (server https://127.0.0.1:<random port>)."""
    return f"{_env(engine)}kind get kubeconfig --name {CLUSTER}"


def address_command(engine: str, container: str) -> str:
    """The container's IPv4 address on kind's network."""
    fmt = "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % KIND_NETWORK
    return f"{engine} inspect -f {shlex.quote(fmt)} {shlex.quote(container)}"


def proxy_install_script(settings: Settings, node_ip: str) -> str:
    """Run inside the proxy container (``bash -s``): squid from Ubuntu's archive with the lab's config
    (only the kind node may use it; allowedDomains + bootstrapDomains), started as a daemon."""
    conf = squid_conf(settings.proxy_port, [network.host_cidr(node_ip)], settings.allowed_domains,
                      settings.bootstrap_domains)
    return f"""#!/bin/bash
set -euo pipefail
if ! command -v squid >/dev/null; then
  apt-get update -q </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q squid </dev/null
fi
cat > {SQUID_CONF} <<'LAB_EOF'
{conf.rstrip()}
LAB_EOF
squid -k parse -f {SQUID_CONF}
if squid -k check -f {SQUID_CONF} 2>/dev/null; then squid -k reconfigure -f {SQUID_CONF}; else squid -f {SQUID_CONF}; fi
echo "cilium-egress-lab: proxy container ready"
"""


def _run_container(engine: str, name: str, network: str, owner_value: str) -> str:
    """Start container ``name`` (replacing one this stack left) on ``network``, then run the install
    script from stdin in it (``bash -s``)."""
    q = shlex.quote
    return (f"{engine} rm -f {name} </dev/null >/dev/null 2>&1; "
            f"{engine} run -d --name {name} --network {network} "
            f"--label {q('cilium-egress-lab/stack=' + owner_value)} {PROXY_IMAGE} sleep infinity </dev/null >/dev/null && "
            f"{engine} exec -i {name} bash -s")


def proxy_create_command(engine: str, owner_value: str) -> str:
    """The proxy container on kind's network; its install script (proxy_install_script) on stdin."""
    return _run_container(engine, PROXY_CONTAINER, KIND_NETWORK, owner_value)


def proxy_delete_command(engine: str) -> str:
    return f"{engine} rm -f {PROXY_CONTAINER}"


def proxy_log_reader(engine: str) -> tuple[str, ...]:
    """What runs ``tail`` on squid's log (model.remote.proxy_log_command's ``reader``)."""
    return (engine, "exec", PROXY_CONTAINER)


# ------------------------------------------------------------------------------------------------ lock
def listener_namespaces(settings: Settings, proxy_address: str) -> tuple[str, ...]:
    """Namespaces whose pods the configured stages send through an Envoy listener: a deny rule wins
    over every allow, including a listener redirect (docs.cilium.io "Deny Policies"), so the lock must
    leave them to their own policy - which, having egress rules, already drops every other
    connection to the world (default deny)."""
    ctx = Context(settings, proxy_address)
    out = set()
    for name in settings.scenarios:
        for obj in scenarios.stage(name, ctx, settings.stage_of(name)).objects:
            if obj["kind"] == "CiliumNetworkPolicy" and any(
                    port.get("listener") for rule in obj["spec"].get("egress", [])
                    for port in rule.get("toPorts", [])):
                out.add(obj["metadata"]["namespace"])
    return tuple(sorted(out))


def lock_policy(settings: Settings, proxy_address: str) -> dict:
    """CiliumClusterwideNetworkPolicy ``egress-lock`` (restrictEgress on local): pods may not open a
    connection to the world except to the proxy container - the security group's rule on aws, as a
    Cilium policy. Not kube-system (CoreDNS forwards to the container runtime's resolver), not the
    namespaces whose world traffic goes through a listener (listener_namespaces). No default deny.
    hostNetwork pods and the node are not endpoints this policy selects."""
    exempt = sorted({"kube-system", *listener_namespaces(settings, proxy_address)})
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": LOCK_NAME},
        "spec": {
            "description": "restrictEgress on the local platform: no pod reaches the world except the egress "
                           "proxy (weaker than a security group: hostNetwork pods and the node bypass it).",
            "endpointSelector": {"matchExpressions": [
                {"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": exempt}]},
            "enableDefaultDeny": {"egress": False, "ingress": False},
            "egressDeny": [{"toCIDRSet": [{"cidr": network.ANYWHERE,
                                           "except": [network.host_cidr(proxy_address)]}]}],
        },
    }


# ------------------------------------------------------------------------------------------ mTLS backend
MTLS_CONTAINER = f"{CLUSTER}-mtls"


def mtls_create_command(engine: str, owner_value: str) -> str:
    """The mTLS backend's container shares the proxy container's network namespace (``--network
    container:``): one address for the egress proxy and the backend, as the proxy host is on aws."""
    return _run_container(engine, MTLS_CONTAINER, f"container:{PROXY_CONTAINER}", owner_value)


def mtls_delete_command(engine: str) -> str:
    return f"{engine} rm -f {MTLS_CONTAINER}"


def _write(path: str, body: str, mode: str) -> str:
    tag = "LAB_EOF"
    assert tag not in body
    return f"install -m {mode} /dev/null {shlex.quote(path)}\ncat > {shlex.quote(path)} <<'{tag}'\n{body.rstrip()}\n{tag}"


def mtls_backend_script(files: dict[str, str]) -> str:
    """Run inside the mTLS container (``bash -s``; it carries the server key: a secret input): the
    same haproxy config and echo server as the aws backend (model.mtls), started without systemd -
    the echo server as the unprivileged ``nobody``, haproxy dropping to ``haproxy`` after start-up.
    Re-running it restarts both with the new files."""
    q = shlex.quote
    return f"""#!/bin/bash
set -euo pipefail
if ! command -v haproxy >/dev/null || ! command -v python3 >/dev/null; then
  apt-get update -q </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy python3 </dev/null
fi
install -d -m 0750 -o root -g haproxy {q(BACKEND_DIR)}
{_write(BACKEND_DIR + "/ca.crt", files["ca.crt"], "0644")}
{_write(BACKEND_DIR + "/server.pem", files["server.pem"], "0640")}
chown root:haproxy {q(BACKEND_DIR)}/ca.crt {q(BACKEND_DIR)}/server.pem
mkdir -p {q(ECHO_SCRIPT.rsplit("/", 1)[0])}
{_write(ECHO_SCRIPT, echo_server_py(), "0755")}
{_write("/etc/haproxy/haproxy.cfg", haproxy_cfg(BACKEND_DIR, run_as="haproxy"), "0644")}
haproxy -c -f /etc/haproxy/haproxy.cfg </dev/null
for pid in /run/mtls-echo.pid /run/mtls-haproxy.pid; do
  if [ -s "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
done
setpriv --reuid=nobody --regid=nogroup --clear-groups nohup python3 {q(ECHO_SCRIPT)} {ECHO_PORT} \\
  </dev/null >/var/log/mtls-echo.log 2>&1 &
echo $! > /run/mtls-echo.pid
nohup haproxy -f /etc/haproxy/haproxy.cfg </dev/null >/var/log/mtls-haproxy.log 2>&1 &
echo $! > /run/mtls-haproxy.pid
echo "cilium-egress-lab: mTLS backend container ready"
"""


# ------------------------------------------------------------------------------- the platform's objects
def platform_objects(ctx: Context) -> tuple[dict, ...]:
    """Policy objects the platform itself installs with Cilium, in force for every scenario at every
    stage: the packs' platform objects (scenarios.platform_objects: the egress proxy's guard) where
    the stack runs a proxy (aws, local), and on local with restrictEgress the lock (lock_policy). On
    existing nothing: the stack adds no cluster-wide policy to a cluster it does not own."""
    platform = ctx.settings.platform
    if platform == "existing":
        return ()
    objects = scenarios.platform_objects(ctx)
    if platform == "local" and ctx.settings.restrict_egress:
        objects += (lock_policy(ctx.settings, ctx.proxy_address),)
    return objects
