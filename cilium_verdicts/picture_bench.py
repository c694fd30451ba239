"""Benchmark and example data for the connectivity picture.

``python3 -m cilium_verdicts.picture_bench`` renders a synthetic 30-workload result (several probes per
pair, on-cluster observations with a few mismatches) to SVG and HTML and prints the times.
``--write-examples DIR`` also writes the Stars example there (the files under docs/ come from it;
``--synthetic-too`` adds the 30-workload drawings). The results are built in the evaluator's JSON contract, by hand: nothing
here needs the evaluator.
"""
from __future__ import annotations

import argparse
import pathlib
import random
import sys
import time

from .picture import graph_svg, matrix_svg, page_html

STARS_PORTS = {"management-ui/management-ui": 9001, "stars/frontend": 80, "stars/backend": 6379,
               "client/client": 9000}
STARS_ALLOWED = {("client/client", "stars/frontend"), ("stars/frontend", "stars/backend"),
                 ("management-ui/management-ui", "client/client"),
                 ("management-ui/management-ui", "stars/frontend"),
                 ("management-ui/management-ui", "stars/backend")}


def stars_final() -> dict:
    """The Stars demo after all its policies: every workload probes every other on its port;
    only client->frontend, frontend->backend and management-ui->everything are allowed."""
    workloads = list(STARS_PORTS)
    cells = []
    for src in workloads:
        for dst in workloads:
            if src == dst:
                continue
            allowed = (src, dst) in STARS_ALLOWED
            dst_ns = dst.split("/")[0]
            cells.append({
                "from": src, "to": dst, "port": STARS_PORTS[dst], "protocol": "TCP", "via": "pod-ip",
                "request": None, "verdict": "allow" if allowed else "drop",
                "egress": "allow: no egress policy selects the source",
                "ingress": (f"allow: a policy in {dst_ns} allows {src.split('/')[0]}" if allowed
                            else f"drop:default-deny: {dst_ns} default-deny, no rule allows {src}"),
                "why": ([f"egress {src}: not selected by any policy (default allow)",
                         f"ingress {dst}: allowed by an ingress rule from {src.split('/')[0]}"]
                        if allowed else
                        [f"egress {src}: not selected by any policy (default allow)",
                         f"ingress {dst}: selected by default-deny in {dst_ns}; no rule allows {src}"]),
            })
    return {"workloads": workloads, "cells": cells}


def synthetic(n_workloads: int = 30, namespaces: int = 5, seed: int = 14, observed: bool = True,
              worlds: int = 2) -> dict:
    """A deterministic result: ``n_workloads`` in ``namespaces`` namespaces, every ordered pair probed
    on 1-3 probes (port 80, port 80 with an HTTP request, port 8080), some world:* destinations
    by FQDN, every verdict present, and (``observed``) a few observed results that differ."""
    rng = random.Random(seed)
    ns_names = [f"team-{chr(ord('a') + i)}" for i in range(namespaces)]
    workloads = [f"{ns_names[i % namespaces]}/app-{i:02d}" for i in range(n_workloads)]
    worlds_list = [f"world:api{i}.example.com" for i in range(worlds)]
    cells = []
    for src in workloads:
        for dst in workloads + worlds_list:
            if src == dst or rng.random() < 0.08:  # a few pairs are not probed
                continue
            world = dst.startswith("world:")
            probes = ([(443, None, "fqdn")] if world else
                      [(80, None, "pod-ip"), (80, "GET /headers", "service-name"), (8080, None, "pod-ip")]
                      [: rng.choice((1, 2, 3, 3))])
            for port, request, via in probes:
                verdict = rng.choices(("allow", "drop", "l7-deny", "dns-fail"),
                                      (5, 4, 1 if request else 0, 1 if via in ("fqdn", "service-name") else 0))[0]
                cell = {"from": src, "to": dst, "port": port, "protocol": "TCP", "via": via,
                        "request": request, "verdict": verdict,
                        "egress": "allow" if verdict != "drop" or rng.random() < 0.5 else "drop:policy-deny",
                        "ingress": "n/a" if world else ("allow" if verdict == "allow" else "drop:default-deny"),
                        "why": [f"egress {src}: rule {rng.randint(1, 9)} of policy egress-{src.split('/')[0]}",
                                f"ingress {dst}: {verdict} by policy in {dst.split('/')[0]} <&> \"quoted\""]}
                if observed:
                    cell["observed"] = verdict if rng.random() > 0.01 else rng.choice(
                        [v for v in ("allow", "drop", "refused", "error") if v != verdict])
                cells.append(cell)
    return {"workloads": workloads, "cells": cells}


def bench(repeat: int = 5) -> dict[str, float]:
    """Best-of-``repeat`` seconds to render the 30-workload result per format."""
    result = synthetic()
    times = {}
    for name, fn in (("svg", matrix_svg), ("html", page_html)):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(result, "synthetic: 30 workloads")
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    return times


def examples() -> dict[str, str]:
    """The files under docs/: the Stars final state as matrix, graph and page."""
    stars = stars_final()
    title = "Stars demo, final policies"
    return {
        "stars-final.svg": matrix_svg(stars, title),
        "stars-final-graph.svg": graph_svg(stars, f"{title}: allowed connections"),
        "stars-final.html": page_html(stars, title),
    }


def write_examples(out: pathlib.Path, synthetic_too: bool = False) -> list[pathlib.Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = examples()
    if synthetic_too:  # ~1 MB and ~2 MB: for screenshots, not kept in docs/
        big, title = synthetic(), "Synthetic: 30 workloads, on-cluster run"
        files.update({"synthetic-30.svg": matrix_svg(big, title), "synthetic-30.html": page_html(big, title)})
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cilium_verdicts.picture_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write-examples", metavar="DIR", type=pathlib.Path,
                        help="write the Stars example (matrix, graph, page) there, as in docs/")
    parser.add_argument("--synthetic-too", action="store_true",
                        help="with --write-examples: also the 30-workload matrix and page")
    args = parser.parse_args(argv)
    result = synthetic()
    probes = len(result["cells"])
    pairs = len({(c["from"], c["to"]) for c in result["cells"]})
    sizes = {"svg": len(matrix_svg(result).encode()), "html": len(page_html(result).encode())}
    times = bench(args.repeat)
    print(f"30 workloads, {pairs} probed pairs, {probes} probes (best of {args.repeat}):")
    for name, seconds in times.items():
        print(f"  {name:<4} {seconds * 1000:7.1f} ms  {sizes[name] / 1024:7.0f} KiB")
    if args.write_examples:
        for path in write_examples(args.write_examples, args.synthetic_too):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
