"""``cilium-verdicts -f PATH [-f PATH ...] [--format FMT] [--explain FROM TO[:PORT]]`` (also
``python -m cilium_verdicts`` and, in the lab, ``python -m model verdicts``).

What Cilium 1.18 will do with your NetworkPolicies and CiliumNetworkPolicies, offline: reads
Kubernetes/Cilium YAML or JSON (files or directories, multi-document, kubectl
Lists, Helm output; checked strictly against the Kubernetes and Cilium schemas) and prints the verdict (allow,
drop, l7-deny, dns-fail) of every ordered pair of distinct workloads on every declared container port
of the destination, by pod IP, as a table, JSON or a picture. --explain prints the why chain of one
pair (or one port). --scenario NAME [--stage S] evaluates a lab scenario's probes at a stage (needs
the lab's scenario packs installed). Bad input: a message on stderr naming the file, object and field,
exit 2, nothing on stdout. Warnings (unsupported kinds and fields, inferred namespaces) go to stderr.

--probe/--probes FILE evaluate only your probes, in their order (probespec.py). JSON is compact unless
--pretty. Subcommands: ``check -f PATH... --expect FILE`` (expectations; exit 1 when one fails;
check.py) and ``diff BASE HEAD`` (what a change opens or closes; diff.py); without one, the form above.
"""
from __future__ import annotations

import argparse
import gc
import sys
from typing import Callable, Mapping, Sequence

from . import check, diff, probespec
from .classes import Evaluator, all_pairs
from .cluster import Cluster, PolicyInputError, load_paths
from .mesh import cli_results
from .render import FORMATS, PICTURES, render_explain, render_json, render_pairs_json
from .verdict import Probe, Verdict, evaluate

ScenarioLoader = Callable[[str, "str | None"], tuple[Sequence[dict], Sequence[Probe]]]
# Scenario packs plug in from above (the lab registers its loader under this entry-point group in
# pyproject.toml); the evaluator never imports them.
SCENARIO_ENTRY_POINTS = "cilium_verdicts.scenarios"


def installed_scenario_loader() -> ScenarioLoader | None:
    """The first scenario loader an installed distribution registers and can load, if any."""
    from importlib.metadata import entry_points  # stdlib, but slow to import: only when asked
    for ep in sorted(entry_points(group=SCENARIO_ENTRY_POINTS), key=lambda e: e.name):
        try:
            return ep.load()
        except ImportError:  # registered, but its modules are gone: no packs, not a traceback
            continue
    return None


def parser(prog: str = "cilium-verdicts") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=" ".join(__doc__.split("\n\n")[1].split()),
                                epilog=f"subcommands: '{prog} check -f PATH... --expect FILE' (expectations, "
                                       f"exit 1 when one fails) and '{prog} diff BASE HEAD' (what a change "
                                       "opens or closes); each with -h")
    p.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                   help="a YAML/JSON file or a directory of them (repeatable)")
    p.add_argument("--format", choices=sorted(FORMATS), default="table", help="output format (default: table)")
    p.add_argument("--explain", nargs=2, metavar=("FROM", "TO[:PORT]"),
                   help='why chain of one pair: "ns/name" or a unique "name"; TO may be world:HOST')
    p.add_argument("--scenario", metavar="NAME", help="evaluate a scenario's objects and probes")
    p.add_argument("--stage", metavar="S", help="the scenario stage (passed to the scenario registry)")
    # ClusterMesh (cilium_verdicts/mesh.py): one cluster's objects per flag; ids become ns/name@cluster
    p.add_argument("--cluster", action="append", default=[], metavar="NAME=PATH",
                   help="a ClusterMesh cluster's objects: its name and a file or directory (repeatable)")
    p.add_argument("--policy-default-local-cluster", action="store_true", default=None,
                   help="the Helm value clustermesh.policyDefaultLocalCluster=true: peers without "
                        "io.cilium.k8s.policy.cluster select the policy's own cluster only")
    p.add_argument("--strict-namespaces", action="store_true",
                   help="a namespace used but not declared is an error (default: inferred, with a warning)")
    probespec.add_probe_arguments(p)
    p.add_argument("--pretty", action="store_true", help="indented JSON (default: compact)")
    return p


def main(argv: Sequence[str] | None = None, scenario_loader: ScenarioLoader | None = None,
         prog: str = "cilium-verdicts") -> int:
    """The CLI. The cyclic garbage collector is paused meanwhile: one short run builds ~10^5 small
    containers and frees them at exit, and collecting on the way cost a quarter of the run time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), scenario_loader, prog)
    finally:
        if enabled:
            gc.enable()


def _main(argv: list[str], scenario_loader: ScenarioLoader | None, prog: str) -> int:
    if argv[:1] == ["check"]:
        return check.main(argv[1:], scenario_loader or installed_scenario_loader(), prog=f"{prog} check")
    if argv[:1] == ["diff"]:
        return diff.main(argv[1:], prog=f"{prog} diff")
    args = parser(prog).parse_args(argv)
    if args.scenario and scenario_loader is None:
        scenario_loader = installed_scenario_loader()
    if args.scenario and scenario_loader is None:
        print("error: --scenario needs the lab's scenario packs: install cilium-egress-lab (pip install .) "
              "or run python -m model verdicts in the lab", file=sys.stderr)
        return 2
    if not args.file and not args.scenario and not args.cluster:
        print("error: give -f PATH (a file or directory), --cluster NAME=PATH or --scenario NAME", file=sys.stderr)
        return 2
    try:
        fast = args.format == "json" and not args.pretty and not args.explain and not args.cluster
        cluster, results = _evaluate(args, scenario_loader, fast)
        if results is None:  # all pairs as compact JSON, written from per-class templates
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
    if args.cluster:
        parts.append("clusters " + ", ".join(args.cluster))
    probes = len(args.probe) + len(args.probes)
    return "verdicts: " + " + ".join(parts) + (" (your probes)" if probes else "")


def _evaluate(args, scenario_loader, lazy_pairs: bool = False) -> tuple[Cluster, list[tuple[Probe, Verdict]] | None]:
    """The cluster and the results of the probes (all pairs when none is given; ``lazy_pairs``: None
    instead of all pairs, for render_pairs_json)."""
    scenario = scenario_loader(args.scenario, args.stage) if args.scenario else None
    if args.cluster or (scenario and isinstance(scenario[0], Mapping)):  # a ClusterMesh
        return cli_results(args, scenario)
    objects, origins = load_paths(args.file)
    probes: Sequence[Probe] = ()
    if scenario:
        extra, probes = scenario
        origins = {i + len(extra): f for i, f in origins.items()}
        objects = list(extra) + objects
    cluster = Cluster.from_objects(objects, origins=origins, strict_namespaces=args.strict_namespaces)
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
    return [(probe, getattr(cluster, "evaluate_probe", lambda p: evaluate(cluster, p))(probe))]
