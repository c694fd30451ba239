"""Plain TCP/UDP services and TCP/UDP/ICMP probes for the lab's side-door tests (stdlib only).

Run inside a namespace by ``netlab.Lab`` (a script, not imported by the tests)::

    python3 l4.py serve 203.0.113.53 --tcp 53 40000 --udp 53 123
    python3 l4.py probe --timeout 1.5 tcp:203.0.113.53:53 udp:203.0.113.53:123 icmp:203.0.113.53

``serve``: each TCP port greets every connection with ``side-door tcp/<port>`` and closes it; each UDP
port answers a datagram with ``side-door udp/<port> <datagram>``. ICMP echo is the kernel's. Prints
``ready`` once every socket is bound.

``probe``: runs every probe at once and prints one JSON list, one object per probe, in argument
order: ``{"probe", "reached", "reply", "error"}``. ``reached``: TCP connected, UDP got a datagram
back, ICMP got an echo reply from the target; ``reply``: what the service said (the greeting, the
echo, "echo-reply"); ``error``: why not ("timeout" when the packets were dropped on the way,
"EPERM" when the sender's own firewall dropped them, "refused", ...).
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

GREETING = "side-door {proto}/{port}"


# ---------------------------------------------------------------- services
def serve(address: str, tcp_ports: list[int], udp_ports: list[int]) -> None:
    socks: dict[socket.socket, tuple[str, int]] = {}
    for port in tcp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        s.listen(64)
        socks[s] = ("tcp", port)
    for port in udp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((address, port))
        socks[s] = ("udp", port)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(list(socks), [], [])
        for s in ready:
            proto, port = socks[s]
            greeting = GREETING.format(proto=proto, port=port).encode()
            if proto == "tcp":
                conn, _ = s.accept()
                try:
                    conn.sendall(greeting + b"\n")
                except OSError:
                    pass
                conn.close()
            else:
                data, peer = s.recvfrom(2048)
                s.sendto(greeting + b" " + data, peer)


# ---------------------------------------------------------------- probes
def _tcp(ip: str, port: int, timeout: float) -> dict:
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            try:
                reply = s.recv(200).decode(errors="replace").strip()
            except socket.timeout:
                reply = ""
            return {"reached": True, "reply": reply, "error": ""}
    except socket.timeout:
        return {"reached": False, "reply": "", "error": "timeout"}
    except ConnectionRefusedError:
        return {"reached": False, "reply": "", "error": "refused"}
    except OSError as e:
        return {"reached": False, "reply": "", "error": _errno(e)}


def _errno(e: OSError) -> str:
    """"EPERM" for a packet the sender's own firewall dropped (the node's locked egress), ..."""
    return errno.errorcode.get(e.errno or 0, str(e))


def _udp(ip: str, port: int, timeout: float) -> dict:
    nonce = f"probe-{os.getpid()}-{port}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((ip, port))
            s.send(nonce.encode())
            reply = s.recv(2048).decode(errors="replace")
        except socket.timeout:
            return {"reached": False, "reply": "", "error": "timeout"}
        except ConnectionRefusedError:
            return {"reached": False, "reply": "", "error": "refused"}
        except OSError as e:
            return {"reached": False, "reply": "", "error": _errno(e)}
    return {"reached": nonce in reply, "reply": reply, "error": "" if nonce in reply else "wrong echo"}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


_ICMP_IDS = iter(range(1, 1 << 16))
_ICMP_LOCK = threading.Lock()


def _icmp(ip: str, timeout: float) -> dict:
    with _ICMP_LOCK:
        ident = (os.getpid() + next(_ICMP_IDS)) & 0xFFFF
    payload = b"cilium-egress-lab"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        try:
            s.sendto(packet, (ip, 0))
        except OSError as e:  # e.g. EPERM: the sender's own firewall dropped it
            return {"reached": False, "reply": "", "error": _errno(e)}
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                break
            data, (src, _) = s.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, got_id, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if src == ip and kind == 0 and got_id == ident:
                return {"reached": True, "reply": "echo-reply", "error": ""}
            if kind == 3 and data[ihl + 8 + 20 + 4:ihl + 8 + 20 + 6] == struct.pack("!H", ident):  # about ours
                return {"reached": False, "reply": "", "error": "unreachable"}
    return {"reached": False, "reply": "", "error": "timeout"}


def probe(spec: str, timeout: float) -> dict:
    proto, _, rest = spec.partition(":")
    if proto == "icmp":
        result = _icmp(rest, timeout)
    else:
        ip, _, port = rest.rpartition(":")
        result = {"tcp": _tcp, "udp": _udp}[proto](ip, int(port), timeout)
    return {"probe": spec, **result}


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("address")
    sv.add_argument("--tcp", type=int, nargs="*", default=[])
    sv.add_argument("--udp", type=int, nargs="*", default=[])
    pr = sub.add_parser("probe")
    pr.add_argument("--timeout", type=float, default=1.5)
    pr.add_argument("specs", nargs="+", help="tcp:IP:PORT, udp:IP:PORT or icmp:IP")
    args = ap.parse_args()
    if args.cmd == "serve":
        try:
            serve(args.address, args.tcp, args.udp)
        except KeyboardInterrupt:
            pass
        return
    with ThreadPoolExecutor(len(args.specs)) as pool:
        results = list(pool.map(lambda s: probe(s, args.timeout), args.specs))
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
