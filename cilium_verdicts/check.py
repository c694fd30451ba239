"""``python -m model verdicts check -f PATH... --expect FILE [--junit FILE] [--format text|json]``

FILE is YAML: ``expect: [{from: "ns/name" | "ns/*" | "*", to: "ns/name" | "world:HOST", port: 8080,
protocol: TCP, request: "GET /api" (optional), verdict: allow|drop|l7-deny|dns-fail, except: [workloads]
(optional)}]`` (``via`` may be given too: pod-ip by default, fqdn for a world destination). Every
expectation is evaluated: a wildcard expands to every declared workload that matches it, minus
``except`` and minus the destination itself (a workload to itself is not a cell). Exit 0 when all
hold, 1 when any fails (stdout lists each failing cell with expected, actual and the why chain),
2 on bad input (a message on stderr, nothing on stdout). ``--junit FILE`` writes JUnit XML: one
testcase per expectation, a failure per failing cell. ``--format json`` prints
``{"expectations": N, "failed": [{"from", "to", "port", "protocol", "request", "expected", "actual",
"why"}]}``.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Sequence

import yaml

from . import probespec
from .classes import Evaluator
from .cluster import Cluster, PolicyInputError, load_paths
from .render import dumps
from .verdict import VERDICTS, Probe, Verdict

EXPECT_KEYS = ("from", "to", "port", "protocol", "request", "verdict", "except", "via")


@dataclass
class Expectation:
    index: int
    text: dict
    verdict: str
    probes: list[Probe]

    @property
    def name(self) -> str:
        t = self.text
        request = f" {t['request']}" if t.get("request") else ""
        excluded = f" except {', '.join(map(str, t['except']))}" if t.get("except") else ""
        return (f"expect[{self.index}]: {t['from']} -> {t['to']}:{t['port']}/{t.get('protocol') or 'TCP'}"
                f"{request}{excluded} is {self.verdict}")


def parser(prog: str = "cilium-verdicts check") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description=" ".join(__doc__.split("\n\n")[1].split()))
    p.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                   help="a YAML/JSON file or a directory of them (repeatable)")
    p.add_argument("--expect", required=True, metavar="FILE", help="the expectations (YAML, see above)")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML there")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--pretty", action="store_true", help="indented JSON (default: compact)")
    p.add_argument("--scenario", metavar="NAME", help="a scenario's objects (and -f files) instead of only -f")
    p.add_argument("--stage", metavar="S", help="the scenario stage")
    return p


def main(argv: Sequence[str] | None = None, scenario_loader=None, prog: str = "cilium-verdicts check") -> int:
    args = parser(prog).parse_args(argv)
    try:
        if not args.file and not args.scenario:
            raise PolicyInputError("give -f PATH (a file or directory)")
        objects, origins = load_paths(args.file)
        if args.scenario:
            if scenario_loader is None:
                raise PolicyInputError("--scenario needs the scenario registry")
            extra, _ = scenario_loader(args.scenario, args.stage)
            origins = {i + len(extra): f for i, f in origins.items()}
            objects = list(extra) + objects
        cluster = Cluster.from_objects(objects, origins=origins)
        expectations = load_expectations(cluster, args.expect)
        evaluator = Evaluator(cluster)
        failed = [(e, p, v) for e in expectations for p, v in evaluator.many(e.probes) if v.verdict != e.verdict]
    except PolicyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in cluster.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.junit:
        pathlib.Path(args.junit).write_text(junit(expectations, failed))
    if args.format == "json":
        sys.stdout.write(dumps({"expectations": len(expectations),
                                "failed": [failure(e, p, v) for e, p, v in failed]}, args.pretty))
    else:
        sys.stdout.write(text(expectations, failed))
    return 1 if failed else 0


def failure(e: Expectation, p: Probe, v: Verdict) -> dict:
    return {"from": p.source, "to": p.to, "port": p.port, "protocol": p.protocol, "request": p.request,
            "expected": e.verdict, "actual": v.verdict, "why": list(v.why)}


def load_expectations(cluster: Cluster, path: str) -> list[Expectation]:
    try:
        doc = yaml.safe_load(pathlib.Path(path).read_text())
    except yaml.YAMLError as exc:
        raise PolicyInputError(f"{path}: YAML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyInputError(f"{path}: cannot read: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"expect"} or not isinstance(doc["expect"], list):
        raise PolicyInputError(f"{path}: expected a mapping with one key, expect: a list of expectations")
    out = []
    for i, entry in enumerate(doc["expect"]):
        where = f"{path}: expect[{i}]"
        if not isinstance(entry, dict):
            raise PolicyInputError(f"{where}: an expectation is a mapping with keys {', '.join(EXPECT_KEYS)}")
        out.append(_expectation(cluster, i, entry, where))
    return out


def _expectation(cluster: Cluster, i: int, entry: dict, where: str) -> Expectation:
    unknown = sorted(map(str, set(entry) - set(EXPECT_KEYS)))
    if unknown:
        raise PolicyInputError(f"{where}: unknown key {', '.join(unknown)}; accepted: {', '.join(EXPECT_KEYS)}")
    for key in ("from", "to", "port", "verdict"):
        if entry.get(key) in (None, ""):
            raise PolicyInputError(f"{where}: {key} is required")
    if entry["verdict"] not in VERDICTS:
        raise PolicyInputError(f"{where}: verdict {entry['verdict']!r}; accepted: {', '.join(VERDICTS)}")
    excluded = entry.get("except") or []
    if not isinstance(excluded, list):
        raise PolicyInputError(f"{where}: except is a list of workloads (ns/name)")
    excluded_keys = {cluster.workload(str(x)).key for x in excluded}
    to = str(entry["to"])
    target = to if to.startswith("world:") else cluster.workload(to).key
    sources = _sources(cluster, str(entry["from"]), where)
    request = entry.get("request")
    method, path = str(request).split(" ", 1) if request and " " in str(request) else (request, None)
    if request and path is None:
        raise PolicyInputError(f"{where}: request {request!r} must be 'METHOD /path'")
    base = {"to": target, "port": entry["port"], "protocol": entry.get("protocol"), "via": entry.get("via"),
            "method": method, "path": path}
    probes = [probespec.probe(cluster, {"from": s, **{k: v for k, v in base.items() if v is not None}}, where)
              for s in sources if s not in excluded_keys and (s != target or "*" not in str(entry["from"]))]
    if not probes:
        raise PolicyInputError(f"{where}: from {entry['from']!r} matches no workload (after except)")
    return Expectation(i, entry, entry["verdict"], probes)


def _sources(cluster: Cluster, pattern: str, where: str) -> list[str]:
    """``*`` every declared workload, ``ns/*`` every one in ns, else one workload (``ns/name`` or a unique
    name); built-ins (kube-system/coredns unless declared) only by name."""
    if "*" not in pattern:
        return [cluster.workload(pattern).key]
    if pattern != "*" and not (pattern.endswith("/*") and "*" not in pattern[:-2]):
        raise PolicyInputError(f"{where}: from {pattern!r}: a wildcard is '*' or 'ns/*'")
    return [w.key for w in cluster.workloads.values()
            if not w.builtin and (pattern == "*" or w.namespace == pattern[:-2])]


def text(expectations: list[Expectation], failed: list) -> str:
    cells = sum(len(e.probes) for e in expectations)
    lines = []
    for e, p, v in failed:
        request = f" {p.request}" if p.request else ""
        lines.append(f"FAIL {p.source} -> {p.to}:{p.port}/{p.protocol}{request} (via {p.via}): expected {e.verdict}, "
                     f"actual {v.verdict}  [expect[{e.index}]]")
        lines += [f"  {n}. {line}" for n, line in enumerate(v.why, 1)]
    broken = len({e.index for e, _, _ in failed})
    lines.append(f"{len(expectations)} expectations ({cells} cells): "
                 + (f"{broken} failed ({len(failed)} cells)" if failed else "all hold"))
    return "\n".join(lines) + "\n"


def junit(expectations: list[Expectation], failed: list) -> str:
    """JUnit XML as CI systems read it (testsuites > testsuite > testcase > failure)."""
    by_index: dict[int, list] = {}
    for e, p, v in failed:
        by_index.setdefault(e.index, []).append((p, v))
    broken = len(by_index)
    suites = ET.Element("testsuites", name="verdicts check", tests=str(len(expectations)), failures=str(broken))
    suite = ET.SubElement(suites, "testsuite", name="verdicts check", tests=str(len(expectations)),
                          failures=str(broken), errors="0", skipped="0")
    for e in expectations:
        case = ET.SubElement(suite, "testcase", classname="verdicts.check", name=e.name)
        for p, v in by_index.get(e.index, ()):
            request = f" {p.request}" if p.request else ""
            node = ET.SubElement(case, "failure", type="VerdictMismatch",
                                 message=f"{p.source} -> {p.to}:{p.port}/{p.protocol}{request}: "
                                         f"expected {e.verdict}, actual {v.verdict}")
            node.text = "\n".join(f"{n}. {line}" for n, line in enumerate(v.why, 1))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
