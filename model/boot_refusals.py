"""Naming what the proxy refused: when a network step of the kind host's boot finally fails, the boot
log (and with it the failure ``pulumi up`` shows, userdata.ready_command) says which host squid
refused and which config key lets it through (``bootstrapDomains``).

squid answers a refused request with HTTP 403 (``http_access deny all``, model/proxy.py). What each
client on the kind host makes of that 403 - the messages these patterns read:
- curl, HTTPS through the proxy: the CONNECT gets 403; curl fails with "CONNECT tunnel failed,
  response 403" (exit 56) without naming the host, so every boot curl writes a line of its own
  (``--write-out '%{stderr}...'``, curl >= 7.63) with the URL it was fetching - after a redirect, the
  redirect's target (``%{url_effective}``) - and the proxy's answer to its CONNECT (``%{http_connect}``).
- Go programs (docker pulling kindest/node, containerd): net/http's transport returns the proxy's status
  text as the error when CONNECT is not answered 200 (transport.go: ``errors.New(text)`` after
  ``strings.Cut(resp.Status, " ")``), and url.Error prints it as ``Get "https://<host>/...": Forbidden``.
- apt, http:// sources through the proxy: "Failed to fetch http://<host>/... 403  Forbidden [IP: <proxy>]".
"""
from __future__ import annotations

CURL_WRITE_OUT = "%{stderr}cilium-egress-lab: fetch %{url_effective} -> HTTP %{http_code}, proxy CONNECT %{http_connect}\\n"
REFUSED_MARK = "REFUSED BY THE PROXY"


def refusal_functions() -> str:
    """Shell functions ``refused_hosts FILE`` and ``explain_failure FILE`` (the hook ``retry`` calls on
    giving up). The advice does not spell out the current list: the kind host's user-data must not
    depend on bootstrapDomains (a change would replace the host; only the proxy's config carries it)."""
    return f"""refused_hosts() {{  # refused_hosts FILE: every host a proxy 403 names in a failed step's messages
  sed -nE \\
    -e 's#.*cilium-egress-lab: fetch https?://([^/: ]+)[^ ]* -> HTTP [0-9]+, proxy CONNECT 403.*#\\1#p' \\
    -e 's#.*"https?://([^/:"]+)[^"]*": Forbidden.*#\\1#p' \\
    -e 's#.*Failed to fetch https?://([^/: ]+)[^ ]* +403 +Forbidden.*#\\1#p' "$1" | sort -u
}}
explain_failure() {{  # explain_failure FILE: name each refused host and the config key that allows it
  local host
  for host in $(refused_hosts "$1"); do
    echo "cilium-egress-lab: {REFUSED_MARK} (HTTP 403): $host is not in bootstrapDomains. Add it to that" \\
      "config key (a comma-separated list: pulumi config set bootstrapDomains '<current entries>,$host')" \\
      "and run pulumi up again." >&2
  done
}}"""
