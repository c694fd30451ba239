"""Benchmark (not a test): ``python -m cilium_verdicts.bench [--repeat 3] [--baseline-ref REF] [--nca PATH]``.

In one run, on this machine, each command a fresh process (YAML in, output to a file):
1. ``verdicts -f FILE --format json`` (all pairs) on the synthetic cluster (cilium_verdicts/synthetic.py),
   200 workloads / 40 policies, in two shapes: 200 Deployments with distinct labels (no two alike: no
   class is shared), and 200 Pods as ``kubectl get pods -A -o yaml`` lists them (20 Deployments x 10
   replicas: pods of one Deployment are one class) - by this code, by the code before issue 21
   (``--baseline-ref``, extracted with ``git archive``) and by network-config-analyzer's connectivity
   map (``--nca``, its own venv; it reads the NetworkPolicies and ignores the Cilium ones).
2. ``verdicts check`` (40 wildcard expectations) and ``verdicts diff`` (two policies removed, one added)
   on 2,000 pods / 200 policies.
Times are wall clock (the best of ``--repeat``) and the CPU time of that process.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from . import synthetic

ROOT = pathlib.Path(__file__).resolve().parents[2]
BASELINE_REF = "a7b4005"  # main before issue 21
ENTRY = f"import sys; from {__package__}.cli import main; sys.exit(main())"
BASELINE_ENTRY = "import sys; from cilium_verdicts.cli import main; sys.exit(main())"


def run(argv: list[str], cwd: pathlib.Path, out: pathlib.Path, repeat: int) -> tuple[float, float, int]:
    """(best wall seconds, CPU seconds of that run, exit code)."""
    best = None
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        with out.open("wb") as fh:
            code = subprocess.run(argv, cwd=cwd, stdout=fh, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "PYTHONPATH": str(cwd)}).returncode
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if best is None or wall < best[0]:
            best = (wall, cpu, code)
    return best


def baseline_tree(ref: str, into: pathlib.Path) -> pathlib.Path | None:
    """The repository's ``model/`` at ``ref`` (git archive), or None without git history."""
    if shutil.which("git") is None:
        return None
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "model"], capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def expectations(objects: list[dict], count: int = 40) -> dict:
    """``count`` expectations ``ns/* -> one pod`` on its first port (verdict allow; some fail: timed alike)."""
    pods = [o for o in objects if o["kind"] == "Pod"]
    namespaces = sorted({o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"})
    out = []
    for i in range(count):
        pod = pods[(i * 97) % len(pods)]
        port = pod["spec"]["containers"][0]["ports"][0]
        out.append({"from": f"{namespaces[i % len(namespaces)]}/*",
                    "to": f"{pod['metadata']['namespace']}/{pod['metadata']['name']}",
                    "port": port["containerPort"], "protocol": port["protocol"], "verdict": "allow"})
    return {"expect": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cilium_verdicts.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the code to compare with")
    parser.add_argument("--nca", default="/work/venv-nca/bin/nca", help="network-config-analyzer's nca")
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--policies", type=int, default=40)
    parser.add_argument("--scale", type=int, nargs=2, default=(2000, 200), metavar=("WORKLOADS", "POLICIES"))
    args = parser.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        base_tree = baseline_tree(args.baseline_ref, tmp)
        nca = args.nca if shutil.which(args.nca) else None
        rows = []
        for shape, replicas in (("Deployments, distinct", 1), ("Pods, 10 per Deployment", 10)):
            src = tmp / f"in-{replicas}.yaml"
            src.write_text(yaml.safe_dump_all(synthetic.objects(args.workloads, args.policies, replicas=replicas)))
            now = run([py, "-c", ENTRY, "-f", str(src), "--format", "json"], ROOT, tmp / "now.json", args.repeat)
            line = [f"{args.workloads} {shape} / {args.policies} policies, all pairs, JSON: this code "
                    f"{now[0]:.2f} s (CPU {now[1]:.2f} s)"]
            if base_tree:
                before = run([py, "-c", BASELINE_ENTRY, "-f", str(src), "--format", "json"], base_tree,
                             tmp / "before.json", args.repeat)
                line.append(f"before ({args.baseline_ref}) {before[0]:.2f} s (CPU {before[1]:.2f} s), "
                            f"{before[0] / now[0]:.1f}x")
            if nca:
                theirs = run([nca, "--connectivity", "-r", str(src), "-o", "txt"], tmp, tmp / "nca.txt", args.repeat)
                line.append(f"network-config-analyzer {theirs[0]:.2f} s (CPU {theirs[1]:.2f} s), "
                            f"{theirs[0] / now[0]:.1f}x")
            rows.append("; ".join(line))
        n, k = args.scale
        objects = synthetic.objects(n, k, replicas=10)
        head = [o for o in objects if o["metadata"]["name"] not in ("cnp0", "np1")]
        head.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "deny-egress", "namespace": "ns0"},
                     "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})
        for name, objs in (("base", objects), ("head", head)):
            (tmp / name).mkdir()
            (tmp / name / "all.yaml").write_text(yaml.safe_dump_all(objs))
        (tmp / "expect.yaml").write_text(yaml.safe_dump(expectations(objects)))
        check = run([py, "-c", ENTRY, "check", "-f", str(tmp / "base"), "--expect", str(tmp / "expect.yaml"),
                     "--format", "json"], ROOT, tmp / "check.json", args.repeat)
        diff = run([py, "-c", ENTRY, "diff", str(tmp / "base"), str(tmp / "head"), "--format", "json"], ROOT,
                   tmp / "diff.json", args.repeat)
        changed = sum(len(v) for v in json.loads((tmp / "diff.json").read_text()).values())
        failed = len(json.loads((tmp / "check.json").read_text())["failed"])
        rows.append(f"{n} pods / {k} policies: check (40 expectations, {failed} failing cells) {check[0]:.2f} s "
                    f"(CPU {check[1]:.2f} s, exit {check[2]}); diff ({changed} changed cells) {diff[0]:.2f} s "
                    f"(CPU {diff[1]:.2f} s, exit {diff[2]})")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
