"""The lab's "internet": tiny HTTP (:80) and HTTPS (:443) servers on the given addresses.

Run by ``netlab.Lab`` in the ``internet`` namespace, and in the ``proxy`` namespace on its loopback
and the metadata address (a script, not imported by the tests):

    python3 origin.py --cert cert.pem --key key.pem 203.0.113.10 203.0.113.20

``GET /`` answers ``200`` with one line naming the address that served it, the peer it saw and, over
TLS, the server name the client sent (``local=203.0.113.10:443 peer=198.18.1.2 sni=www.roche.com``;
``sni=-`` without one), so a test can tell a proxied request (peer = the proxy) from a direct one
(peer = the node's masqueraded uplink) and see that the client's TLS arrived untouched. The one
certificate names every lab host (the lab passes it), so a client that checks it against the name
it asked for (curl ``--cacert``) proves it talked TLS end to end with the right name.
``GET /bytes/<n>`` streams ``n`` zero bytes (the benchmark's large download). Prints ``ready`` once
every socket listens.
"""
from __future__ import annotations

import argparse
import socket
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = bytes(256 * 1024)


class Handler(BaseHTTPRequestHandler):
    server_version = "lab-origin"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.startswith("/bytes/"):
            try:
                size = int(self.path.rsplit("/", 1)[1])
            except ValueError:
                self.send_error(400)
                return
            self._head(size, "application/octet-stream")
            while size > 0:
                self.wfile.write(CHUNK[:size] if size < len(CHUNK) else CHUNK)
                size -= len(CHUNK)
            return
        host, port = self.connection.getsockname()[:2]
        tls = isinstance(self.connection, ssl.SSLSocket)
        sni = f" sni={getattr(self.connection, 'lab_sni', None) or '-'}" if tls else ""
        body = f"local={host}:{port} peer={self.client_address[0]}{sni}\n".encode()
        self._head(len(body), "text/plain")
        self.wfile.write(body)

    def _head(self, length: int, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet: the proxy's and Envoy's logs are what we read
        pass


class _NoLookup:
    """http.server's ``server_bind`` asks DNS for the bound address's name (``socket.getfqdn``): in a
    namespace without a resolver each lookup waits out its timeout before the next socket is bound."""

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # type: ignore[arg-type]
        self.server_name, self.server_port = self.server_address[:2]  # type: ignore[attr-defined]


class TLSServer(_NoLookup, ThreadingHTTPServer):
    """HTTPS with the TLS handshake in the per-connection thread, so a silent client can't stall accept()."""
    daemon_threads = True
    context: ssl.SSLContext

    def finish_request(self, request, client_address) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with tls:
            self.RequestHandlerClass(tls, client_address, self)


def _remember_sni(tls: ssl.SSLSocket, server_name: str | None, _context: ssl.SSLContext) -> None:
    tls.lab_sni = server_name  # type: ignore[attr-defined] - read back by Handler


class PlainServer(_NoLookup, ThreadingHTTPServer):
    daemon_threads = True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("addresses", nargs="+")
    args = ap.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.sni_callback = _remember_sni
    servers = []
    for addr in args.addresses:  # an IPv6 address (":" in it) gets an AF_INET6 socket
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        plain_cls = type("Plain6", (PlainServer,), {"address_family": family})
        tls_cls = type("TLS6", (TLSServer,), {"address_family": family})
        servers.append(plain_cls((addr, 80), Handler))
        tls = tls_cls((addr, 443), Handler)
        tls.context = context
        servers.append(tls)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    print("ready", flush=True)
    try:
        threads[0].join()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
