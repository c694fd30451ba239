"""``python -m model verdicts diff BASE HEAD [--probe ... | --probes FILE] [--format table|json|html]``

BASE and HEAD are each a file or a directory (what ``-f`` takes). Both sides get the same probes: all
pairs of the union of their workloads on every declared port of the destination (by pod IP), or the
``--probe``/``--probes`` given. Only the cells whose verdict changes are printed: ``opened`` (was not
allow, now allow), ``closed`` (was allow, now not) and ``changed`` (another change, e.g. drop ->
l7-deny), each with both why chains. A workload declared on one side only is ``absent`` on the other.
JSON: ``{"opened": [cell...], "closed": [cell...], "changed": [cell...]}``, a cell being ``{"from",
"to", "port", "protocol", "via", "request", "before", "after", "why": {"before": [...], "after":
[...]}}``. Exit 0 when nothing changes, 1 when something does, 2 on bad input (stderr, nothing on
stdout).

All pairs are compared class pair by class pair (cilium_verdicts/classes.py): a workload's diff class is
its class on both sides, so a class pair whose verdict is the same on both sides is the same for all
its members, and only changed class pairs are expanded into cells.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence

from . import probespec
from .classes import Evaluator
from .cluster import Cluster, PolicyInputError, load_paths
from .probespec import add_probe_arguments
from .render import dumps
from .verdict import ALLOW, Probe, Verdict

ABSENT = "absent"
KINDS = ("opened", "closed", "changed")
FORMATS = ("table", "json", "html")


@dataclass(frozen=True)
class Side:
    name: str          # BASE or HEAD
    path: str
    cluster: Cluster
    evaluator: Evaluator

    def has(self, key: str) -> bool:
        return key.startswith("world:") or key in self.cluster.workloads

    def verdict(self, probe: Probe) -> Verdict:
        missing = [k for k in (probe.source, probe.to) if not self.has(k)]
        if missing:
            return Verdict(ABSENT, ABSENT, ABSENT, tuple(f"{k} is not declared in {self.name} ({self.path})"
                                                         for k in missing))
        return self.evaluator.verdict(probe)

    def template(self, probe: Probe) -> Verdict | None | str:
        """The verdict shared by the probe's class pair, ABSENT, or None (evaluate member by member)."""
        if not (self.has(probe.source) and self.has(probe.to)):
            return ABSENT
        return self.evaluator.template(probe)


def parser(prog: str = "cilium-verdicts diff") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description=" ".join(__doc__.split("\n\n")[1].split()))
    p.add_argument("base", metavar="BASE", help="the policies before (a file or directory)")
    p.add_argument("head", metavar="HEAD", help="the policies after (a file or directory)")
    add_probe_arguments(p)
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--pretty", action="store_true", help="indented JSON (default: compact)")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "cilium-verdicts diff") -> int:
    args = parser(prog).parse_args(argv)
    try:
        base, head = _side("BASE", args.base), _side("HEAD", args.head)
        if args.probe or args.probes:
            changes = diff_probes(base, head, _probes(base, head, args.probe, args.probes))
        else:
            changes = diff_all_pairs(base, head)
    except PolicyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for side in (base, head):
        for warning in side.cluster.warnings:
            print(f"warning: {side.name}: {warning}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(dumps(changes, args.pretty))
    elif args.format == "html":
        sys.stdout.write(render_html(changes, args.base, args.head))
    else:
        sys.stdout.write(render_table(changes, args.base, args.head))
    return 1 if any(changes.values()) else 0


def _side(name: str, path: str) -> Side:
    objects, origins = load_paths([path])
    cluster = Cluster.from_objects(objects, origins=origins)
    return Side(name, path, cluster, Evaluator(cluster))


def _probes(base: Side, head: Side, texts: Sequence[str], files: Sequence[str]) -> list[Probe]:
    """Each probe resolved on HEAD, or on BASE when it names a workload only BASE declares."""
    entries = [(probespec.parse_probe(t), f"--probe {t!r}") for t in texts]
    entries += [(e, f"{path}[{i}]") for path in files for i, e in enumerate(probespec.load_probe_file(path))]
    out = []
    for entry, where in entries:
        try:
            out.append(probespec.probe(head.cluster, entry, where))
        except PolicyInputError as first:
            try:
                out.append(probespec.probe(base.cluster, entry, where))
            except PolicyInputError:
                raise first from None
    return out


def _cell(probe: Probe, before: Verdict, after: Verdict) -> dict:
    return {"from": probe.source, "to": probe.to, "port": probe.port, "protocol": probe.protocol,
            "via": probe.via, "request": probe.request, "before": before.verdict, "after": after.verdict,
            "why": {"before": list(before.why), "after": list(after.why)}}


def kind(before: str, after: str) -> str | None:
    if before == after:
        return None
    if after == ALLOW:
        return "opened"
    return "closed" if before == ALLOW else "changed"


def diff_probes(base: Side, head: Side, probes: Sequence[Probe]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {k: [] for k in KINDS}
    for probe in probes:
        before, after = base.verdict(probe), head.verdict(probe)
        k = kind(before.verdict, after.verdict)
        if k:
            out[k].append(_cell(probe, before, after))
    return out


def diff_all_pairs(base: Side, head: Side) -> dict[str, list[dict]]:
    """All pairs of the union of workloads, ordered by source, destination, port (as all_pairs)."""
    users: dict[str, list] = {}
    for side in (base, head):
        for w in side.cluster.workloads.values():
            if not w.builtin:
                users.setdefault(w.key, []).append(w)
    order = sorted(users, key=lambda k: (users[k][0].namespace, users[k][0].name))
    ports = {k: sorted({(p, proto) for w in ws for _, p, proto in w.ports}) for k, ws in users.items()}
    groups: dict[tuple, list[str]] = {}
    for k in order:
        groups.setdefault(tuple(side.evaluator.class_of(side.cluster.workloads[k]).number
                                if k in side.cluster.workloads else None for side in (base, head)), []).append(k)
    touched = _touched(base, head, groups)
    changed: list[tuple[str, str, int, str]] = []
    for sg, sources in groups.items():
        for tg, targets in groups.items():
            if not (touched[sg, "egress"] or touched[tg, "ingress"]):
                continue  # no policy that decides this pair differs between BASE and HEAD
            pair = next(((s, t) for s in sources[:2] for t in targets[:2] if s != t), None)
            if pair is None:
                continue
            for port, protocol in ports[pair[1]]:
                probe = Probe(pair[0], pair[1], port, protocol=protocol)
                before, after = base.template(probe), head.template(probe)
                shared = before is not None and after is not None
                if shared and _verdict(before) == _verdict(after):
                    continue
                changed += [(s, t, port, protocol) for s in sources for t in targets if s != t]
    rank = {k: i for i, k in enumerate(order)}
    changed.sort(key=lambda c: (rank[c[0]], rank[c[1]], c[2], c[3]))
    return diff_probes(base, head, [Probe(s, t, port, protocol=protocol) for s, t, port, protocol in changed])


def _touched(base: Side, head: Side, groups: dict[tuple, list[str]]) -> dict[tuple, bool]:
    """(group, direction) -> whether a pod-IP verdict with the group on that side (egress: source,
    ingress: destination) may differ: the workload is missing or is another workload on one side, a
    policy selecting it for that direction exists on one side only (policies compared by their parsed
    form), or the Envoy listeners differ. Anything else decides the pair identically on both sides."""
    shapes = [{id(p): repr(p) for p in side.cluster.policies} for side in (base, head)]
    differ = set(shapes[0].values()) ^ set(shapes[1].values())
    changed = {i for shape in shapes for i, text in shape.items() if text in differ}
    listeners = base.cluster.listeners != head.cluster.listeners
    out = {}
    for group, members in groups.items():
        ws = [side.cluster.workloads.get(members[0]) for side in (base, head)]
        moved = (listeners or None in ws
                 or base.evaluator.fields_key(ws[0]) != head.evaluator.fields_key(ws[1]))
        for direction in ("egress", "ingress"):
            out[group, direction] = moved or any(
                id(p) in changed for side, w in zip((base, head), ws) for p in side.cluster.selecting(w, direction))
    return out


def _verdict(v: Verdict | str) -> str:
    return v if isinstance(v, str) else v.verdict


# ------------------------------------------------------------------------------------------ renderings
_HEADINGS = {"opened": "opened (was not allow, now allow)", "closed": "closed (was allow, now not)",
             "changed": "changed (another verdict, still not allow)"}


def _probe_text(c: dict) -> str:
    request = f" {c['request']}" if c["request"] else ""
    return f"{c['from']} -> {c['to']}:{c['port']}/{c['protocol']}{request} via {c['via']}"


def render_table(changes: dict[str, list[dict]], base: str, head: str) -> str:
    lines = [f"verdicts diff {base} -> {head}"]
    for k in KINDS:
        lines.append(f"{_HEADINGS[k]}: {len(changes[k])} cell{'s' if len(changes[k]) != 1 else ''}")
        for c in changes[k]:
            lines.append(f"  {_probe_text(c)}: {c['before']} -> {c['after']}")
            for side in ("before", "after"):
                lines += [f"    {side + ':' if n == 1 else '':7} {n}. {line}"
                          for n, line in enumerate(c["why"][side], 1)]
    if not any(changes.values()):
        lines.append("no verdict changes")
    return "\n".join(line.rstrip() for line in lines) + "\n"


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:2em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
thead th{position:sticky;top:0;background:#f4f4f4}
.opened{color:#0b5394}.closed{color:#8a1c1c}.changed{color:#6a4a00}
ol{margin:0;padding-left:1.5em}
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ summary }}</p>
{% for k in kinds %}<h2 id="{{ k }}" class="{{ k }}">{{ headings[k] }}: {{ changes[k]|length }}</h2>
{% if changes[k] %}<table class="{{ k }}"><thead><tr><th>probe</th><th>before</th><th>after</th>
<th>why before</th><th>why after</th></tr></thead><tbody>
{% for c in changes[k] %}<tr data-kind="{{ k }}"><td>{{ probe(c) }}</td><td>{{ c.before }}</td><td>{{ c.after }}</td>
<td><ol>{% for line in c.why.before %}<li>{{ line }}</li>{% endfor %}</ol></td>
<td><ol>{% for line in c.why.after %}<li>{{ line }}</li>{% endfor %}</ol></td></tr>
{% endfor %}</tbody></table>{% endif %}
{% endfor %}</body></html>
"""


def render_html(changes: dict[str, list[dict]], base: str, head: str) -> str:
    import jinja2
    template = jinja2.Environment(autoescape=True).from_string(_HTML)
    counts = ", ".join(f"{len(changes[k])} {k}" for k in KINDS)
    return template.render(title=f"verdicts diff {base} → {head}", summary=counts, kinds=KINDS,
                           headings=_HEADINGS, changes=changes, probe=_probe_text)

