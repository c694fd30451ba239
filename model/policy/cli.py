"""``python -m model verdicts -f PATH [-f PATH ...] [--format table|json] [--explain FROM TO[:PORT]]``

Reads your own Kubernetes/Cilium YAML (files or directories, multi-document) and prints the verdict of
every ordered pair of distinct workloads on every declared container port of the destination, by pod
IP. ``--probe``/``--probes FILE`` evaluate only your probes, in their order (model/policy/probespec.py).
``--explain`` prints the why chain of every probe of one pair (or of one port). ``--scenario NAME
[--stage S]`` evaluates a scenario's probes; it needs the scenario registry (``scenario_loader``).
Bad input: a message on stderr naming the file and object, exit 2, nothing on stdout. Warnings
(unsupported kinds and fields) go to stderr. JSON is compact unless ``--pretty``.

Subcommands: ``verdicts check -f PATH... --expect FILE`` (model/policy/check.py) and ``verdicts diff
BASE HEAD`` (model/policy/diff.py); without one, the form above.
"""
from __future__ import annotations

import argparse
import gc
import sys
from typing import Callable, Sequence

from .cluster import Cluster, PolicyInputError, load_paths
from . import probespec
from .classes import Evaluator
from .render import FORMATS, PICTURES, render_explain, render_json, render_pairs_json
from .verdict import Probe, Verdict, all_pairs, evaluate

ScenarioLoader = Callable[[str, "str | None"], tuple[Sequence[dict], Sequence[Probe]]]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model verdicts", description=" ".join(__doc__.split("\n\n")[1].split()),
                                epilog="subcommands: 'verdicts check -f PATH... --expect FILE' (expectations, "
                                       "exit 1 when one fails) and 'verdicts diff BASE HEAD' (what a change "
                                       "opens or closes); each with -h")
    p.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                   help="a YAML/JSON file or a directory of them (repeatable)")
    p.add_argument("--format", choices=sorted(FORMATS), default="table", help="output format (default: table)")
    p.add_argument("--explain", nargs=2, metavar=("FROM", "TO[:PORT]"),
                   help='why chain of one pair: "ns/name" or a unique "name"; TO may be world:HOST')
    p.add_argument("--scenario", metavar="NAME", help="evaluate a scenario's objects and probes")
    p.add_argument("--stage", metavar="S", help="the scenario stage (passed to the scenario registry)")
    add_probe_arguments(p)
    p.add_argument("--pretty", action="store_true", help="indented JSON (default: compact)")
    return p


def add_probe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--probe", action="append", default=[], metavar="PROBE",
                   help='evaluate only this probe: "FROM -> TO:PORT[/PROTO] [METHOD PATH] '
                        '[via pod-ip|service-name|service-ip]" (repeatable; TO may be world:HOST)')
    p.add_argument("--probes", action="append", default=[], metavar="FILE",
                   help="a YAML list of probes {from, to, port, protocol, via, method, path, headers}")


def main(argv: Sequence[str] | None = None, scenario_loader: ScenarioLoader | None = None) -> int:
    """The CLI. The cyclic garbage collector is paused meanwhile: one short run builds ~10^5 small
    containers and frees them at exit, and collecting on the way cost a quarter of the run time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), scenario_loader)
    finally:
        if enabled:
            gc.enable()


def _main(argv: list[str], scenario_loader: ScenarioLoader | None) -> int:
    if argv[:1] == ["check"]:
        from .check import main as check
        return check(argv[1:], scenario_loader)
    if argv[:1] == ["diff"]:
        from .diff import main as diff
        return diff(argv[1:])
    args = parser().parse_args(argv)
    if args.scenario and scenario_loader is None:
        print("error: --scenario needs the scenario registry", file=sys.stderr)
        return 2
    if not args.file and not args.scenario:
        print("error: give -f PATH (a file or directory) or --scenario NAME", file=sys.stderr)
        return 2
    try:
        fast = args.format == "json" and not args.pretty and not args.explain  # all pairs: render_pairs_json
        cluster, results = _evaluate(args, scenario_loader, fast)
        if results is None:
            text = render_pairs_json(cluster)
        elif args.explain:
            results = _explain(cluster, results, *args.explain)
            text = render_json(results, cluster, args.pretty) if args.format == "json" else render_explain(results)
        elif args.format == "json":
            text = render_json(results, cluster, args.pretty)
        elif args.format in PICTURES:
            text = FORMATS[args.format](results, cluster, title=title(args))
        else:
            text = FORMATS[args.format](results, cluster)
    except PolicyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in cluster.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(text)
    return 0


def title(args) -> str:
    """What a picture shows: the scenario and stage, and/or the input files."""
    parts = []
    if args.scenario:
        parts.append(f"scenario {args.scenario}, stage {args.stage or '(its last)'}")
    if args.file:
        parts.append(", ".join(args.file))
    probes = len(args.probe) + len(args.probes)
    return "verdicts: " + " + ".join(parts) + (" (your probes)" if probes else "")


def _evaluate(args, scenario_loader, lazy_pairs: bool = False) -> tuple[Cluster, list[tuple[Probe, Verdict]] | None]:
    """The cluster and the results of the probes (all pairs when none is given; ``lazy_pairs``: None
    instead of all pairs, for render_pairs_json)."""
    objects, origins = load_paths(args.file)
    probes: Sequence[Probe] = ()
    if args.scenario:
        extra, probes = scenario_loader(args.scenario, args.stage)
        origins = {i + len(extra): f for i, f in origins.items()}
        objects = list(extra) + objects
    cluster = Cluster.from_objects(objects, origins=origins)
    if args.probe or args.probes:
        probes = probespec.probes(cluster, args.probe, args.probes)
    if not probes and lazy_pairs:
        return cluster, None
    results = Evaluator(cluster).many(probes) if probes else all_pairs(cluster)
    return cluster, results


def _explain(cluster: Cluster, results, source: str, target: str) -> list[tuple[Probe, Verdict]]:
    """The results of one pair (one port if TO ends in :PORT); a port nobody probed is evaluated."""
    head, _, tail = target.rpartition(":")
    port = int(tail) if head and tail.isdigit() and head != "world" else None
    target = head if port is not None else target
    src = cluster.workload(source).key
    dst = target if target.startswith("world:") else cluster.workload(target).key
    chosen = [(p, v) for p, v in results if p.source == src and p.to == dst and port in (None, p.port)]
    if chosen:
        return chosen
    if port is None:
        raise PolicyInputError(f"--explain: no probe from {src} to {dst} (no declared port?); give TO:PORT")
    probe = Probe(src, dst, port, via="fqdn" if dst.startswith("world:") else "pod-ip")
    return [(probe, evaluate(cluster, probe))]
