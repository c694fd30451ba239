"""The lab's stand-in for Cilium's DNS proxy in front of kube-dns (and for the VPC resolver): a small
UDP DNS responder (stdlib only) that answers A queries from the lab's name table.

Run in the ``node`` namespace by ``netlab.Lab`` (``python3 -m tests.dataplane.dnsproxy CONFIG``, from
the repository root so it matches names with ``cilium_verdicts.fqdn`` exactly as the policy means them).
CONFIG is JSON::

    {"listen": ["198.18.10.1", ...], "port": 53, "log": "<file>",
     "names": {"www.roche.com": "203.0.113.10", ...},
     "clients": {"198.18.10.2": ["www.roche.com", "*.*.svc.cluster.local", ...]}}

A query from a source address listed in ``clients`` is answered only if the name matches one of
its patterns (the CNP's ``rules.dns`` ``matchName``/``matchPattern``, Cilium 1.18 semantics via
``cilium_verdicts.fqdn.matches``); otherwise NXDOMAIN - what Cilium's DNS proxy answers with
``dnsProxy.dnsRejectResponseCode: nameError`` (model.helm.helm_values). Any other source (a pod
no policy selects, the node itself) gets every name, like plain kube-dns and the VPC resolver. A
name not in the table is NXDOMAIN for everyone; a name in the table answers A with its address and
any other type with no records (NOERROR/NODATA, so resolvers asking A and AAAA settle on A).

Every query is logged as one JSON line: ``{"client", "name", "type", "rcode", "reason"}`` with
``reason`` one of ``answer``, ``nodata``, ``policy`` (refused by the DNS rule), ``unknown``.
UDP only: curl's resolver (glibc) asks over UDP and the answers are small. Prints ``ready``.
"""
from __future__ import annotations

import json
import select
import socket
import struct
import sys

from cilium_verdicts import fqdn

TYPE_A, CLASS_IN, TTL = 1, 1, 5
NOERROR, FORMERR, NXDOMAIN = 0, 1, 3
TYPE_NAMES = {1: "A", 28: "AAAA", 5: "CNAME", 16: "TXT", 15: "MX", 2: "NS", 6: "SOA", 65: "HTTPS"}


def parse_query(packet: bytes) -> tuple[int, int, str, int, int, int]:
    """(id, flags, name, qtype, qclass, end of the question) of a one-question query."""
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError(f"{qdcount} questions")
    labels, pos = [], 12
    while True:
        n = packet[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:
            raise ValueError("compressed question name")
        labels.append(packet[pos + 1:pos + 1 + n].decode("ascii"))
        pos += 1 + n
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return ident, flags, ".".join(labels), qtype, qclass, pos + 4


def decide(name: str, qtype: int, client: str, names: dict[str, str],
           clients: dict[str, list[str]]) -> tuple[int, str | None, str]:
    """(rcode, address or None, reason) for a query of ``name`` from ``client``."""
    key = name.lower().rstrip(".")
    patterns = clients.get(client)
    if patterns is not None and not fqdn.matches_any(patterns, key):
        return NXDOMAIN, None, "policy"
    if key not in names:
        return NXDOMAIN, None, "unknown"
    if qtype != TYPE_A:
        return NOERROR, None, "nodata"
    return NOERROR, names[key], "answer"


def answer(packet: bytes, client: str, names: dict[str, str], clients: dict[str, list[str]]) -> tuple[bytes, dict]:
    try:
        ident, flags, name, qtype, qclass, end = parse_query(packet)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
        ident = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else 0
        return struct.pack("!HHHHHH", ident, 0x8000 | FORMERR, 0, 0, 0, 0), {
            "client": client, "name": "", "type": "", "rcode": "FORMERR", "reason": str(e)}
    rcode, address, reason = decide(name, qtype, client, names, clients)
    # QR, the query's opcode and RD, AA (authoritative for the lab), RA
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    body = packet[12:end]  # the question, echoed
    count = 0
    if address is not None and qclass == CLASS_IN:
        body += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + socket.inet_aton(address)
        count = 1
    header = struct.pack("!HHHHHH", ident, reply_flags, 1, count, 0, 0)
    log = {"client": client, "name": name, "type": TYPE_NAMES.get(qtype, str(qtype)),
           "rcode": {NOERROR: "NOERROR", NXDOMAIN: "NXDOMAIN"}[rcode], "reason": reason}
    return header + body, log


def main(config_path: str) -> None:
    config = json.loads(open(config_path).read())
    names = {k.lower().rstrip("."): v for k, v in config["names"].items()}
    clients = config["clients"]
    socks = []
    for address in config["listen"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((address, config.get("port", 53)))
        socks.append(s)
    log = open(config["log"], "a", buffering=1)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            packet, peer = s.recvfrom(4096)
            reply, entry = answer(packet, peer[0], names, clients)
            s.sendto(reply, peer)
            log.write(json.dumps(entry) + "\n")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except KeyboardInterrupt:
        pass
