"""Data-plane benchmark (not a test): ``python3 -m tests.dataplane.bench [--requests 50] [--mb 100]``.

Brings the lab up once (egress unlocked, so the direct path exists) and compares, interleaved so
drift hits every path alike:

1. the Envoy tunnel: test-allow -> nft REDIRECT -> Envoy (rendered CEC) -> CONNECT <SNI name>:443 ->
   squid -> origin;
2. the proxy used directly: the node ``curl -x`` squid (the same CONNECT by name to the same origin;
   from the node, the kind host itself - no pod may use the proxy: the platform's guard drops it);
3. direct: test-deny -> node (masquerade, security group open) -> origin.

Names resolve through the lab's DNS stand-in; HTTPS is checked against the origin's certificate.

Latency: ``--requests`` sequential HTTPS requests per path, each a new connection (curl's
``time_total`` minus ``time_namelookup``: TCP + TLS + request; the pod's DNS lookup through the
lab's Python DNS stand-in - which ``curl -x`` never makes, the proxy resolves - is shown apart).
Throughput: ``--rounds`` downloads of ``--mb`` MB over HTTPS per path, median. Target: tunnel
throughput >= 0.8x the direct-proxy path, median latency within 1 ms of it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from . import netlab
from .netlab import ALLOW, DENY, NODE, PROXY_IP


def _paths(lab: netlab.Lab) -> list[tuple[str, str, str, list[str]]]:
    """(label, role, base URL, extra curl args) per path."""
    s = lab.settings
    return [
        ("envoy tunnel (test-allow)", ALLOW, s.probe_url, []),
        ("proxy direct, curl -x (node)", NODE, s.probe_url, ["-x", f"http://{PROXY_IP}:{s.proxy_port}"]),
        ("direct, firewall open (test-deny)", DENY, s.probe_url, []),
    ]


def _curl(lab: netlab.Lab, role: str, url: str, extra: list[str], write_out: str,
          max_time: float) -> list[str]:
    """One request that must answer 200; returns curl's ``write_out`` fields."""
    p = lab.exec(role, "curl", "-sS", "--cacert", str(lab.ca_file), "-o", "/dev/null", "--connect-timeout", "2",
                 "-m", str(max_time), "-w", f"%{{http_code}} {write_out}", *extra, url,
                 timeout=max_time + 10, check=False)
    fields = p.stdout.split()
    if p.returncode != 0 or not fields or fields[0] != "200":
        raise netlab.LabError(f"{role} {url}: curl exit {p.returncode}, {p.stdout!r} {p.stderr.strip()}")
    return fields[1:]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50, help="sequential HTTPS requests per path (1-500)")
    ap.add_argument("--mb", type=int, default=100, help="size of the large download in MB (1-1000)")
    ap.add_argument("--rounds", type=int, default=3, help="downloads per path (1-10)")
    args = ap.parse_args(argv)
    if not (1 <= args.requests <= 500 and 1 <= args.mb <= 1000 and 1 <= args.rounds <= 10):
        ap.error("out of bounds: --requests 1-500, --mb 1-1000, --rounds 1-10")
    reason = netlab.unavailable()
    if reason:
        print(f"cannot run the benchmark: {reason}", file=sys.stderr)
        return 2

    started = time.monotonic()
    with netlab.Lab() as lab:
        lab.set_lock(False)
        paths = _paths(lab)
        latency: dict[str, list[float]] = {p[0]: [] for p in paths}
        lookup: dict[str, list[float]] = {p[0]: [] for p in paths}
        speed: dict[str, list[float]] = {p[0]: [] for p in paths}
        for label, role, url, extra in paths:  # warm-up
            for _ in range(3):
                _curl(lab, role, url, extra, "%{time_total}", 5)
        for _ in range(args.requests):
            for label, role, url, extra in paths:
                total, dns = map(float, _curl(lab, role, url, extra, "%{time_total} %{time_namelookup}", 5))
                latency[label].append((total - dns) * 1000)
                lookup[label].append(dns * 1000)
        size = args.mb * 1_000_000
        for _ in range(args.rounds):
            for label, role, url, extra in paths:
                got, bps = _curl(lab, role, f"{url.rstrip('/')}/bytes/{size}", extra,
                                 "%{size_download} %{speed_download}", 120)
                if int(got) != size:
                    raise netlab.LabError(f"{label}: downloaded {got} of {size} bytes")
                speed[label].append(float(bps) / 1e6)

    print(f"\n{args.requests} sequential HTTPS requests (new connection each) and {args.rounds} x "
          f"{args.mb} MB HTTPS downloads per path; lab up to down {time.monotonic() - started:.1f} s\n")
    print(f"{'path':36} {'median ms':>10} {'p90 ms':>8} {'DNS ms':>7} {'MB/s (median)':>14}")
    for label, *_ in paths:
        print(f"{label:36} {statistics.median(latency[label]):10.2f} {_pct(latency[label], 0.9):8.2f} "
              f"{statistics.median(lookup[label]):7.2f} "
              f"{statistics.median(speed[label]):14.0f}")
    tunnel, proxied = paths[0][0], paths[1][0]
    ratio = statistics.median(speed[tunnel]) / statistics.median(speed[proxied])
    extra_ms = statistics.median(latency[tunnel]) - statistics.median(latency[proxied])
    print(f"\ntunnel vs direct proxy: throughput {ratio:.2f}x (target >= 0.8: "
          f"{'met' if ratio >= 0.8 else 'MISSED'}), median latency {extra_ms:+.2f} ms "
          f"(target <= 1 ms: {'met' if extra_ms <= 1 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
