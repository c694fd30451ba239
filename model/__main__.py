"""Offline render CLI: ``python -m model render [--stack dev] [--set key=value ...]``.

Prints every Kubernetes object the stack would apply as multi-document YAML on stdout (GitOps-
ready), with the Cilium Helm values as a comment. Settings come from ``Pulumi.<stack>.yaml`` and
``--set`` (which wins), validated exactly like ``pulumi up``. ``--set proxyAddress=<ipv4>`` gives
the proxy's address (default: a documented placeholder). Bad input: message on stderr, exit 2,
nothing on stdout. ``python -m model verdicts ...`` forwards to ``model.policy.cli`` (see its -h).
"""
from __future__ import annotations

import argparse
import ipaddress
import pathlib
import sys

import yaml

from .lint import check
from .render import PLACEHOLDER_ADDRESS, lab_objects, parse_assignment, render_yaml
from .settings import PROJECT, SettingsError, load_settings

ROOT = pathlib.Path(__file__).resolve().parents[1]
RENDER_ONLY = {"proxyAddress"}


def stack_config(stack: str | None) -> dict:
    if stack is None:
        return {}
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise SettingsError([f"--stack: {path.name} not found; accepted: a stack with a Pulumi.<stack>.yaml"])
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    prefix = f"{PROJECT}:"
    return {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verdicts"]:
        from .policy.cli import main as verdicts
        return verdicts(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verdicts", help="offline Cilium verdicts of your own YAML (python -m model verdicts -h)")
    render = sub.add_parser("render", help="print the Kubernetes manifests as multi-document YAML")
    render.add_argument("--stack", help="read Pulumi.<stack>.yaml (e.g. dev)")
    render.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key; proxyAddress=<ipv4> sets the proxy address")
    args = parser.parse_args(argv)
    try:
        raw = stack_config(args.stack)
        overrides = dict(parse_assignment(a) for a in args.set)
        proxy_address = overrides.pop("proxyAddress", PLACEHOLDER_ADDRESS)
        problems = []
        try:
            ipaddress.IPv4Address(proxy_address)
        except ValueError:
            problems.append(f"proxyAddress: {proxy_address!r} is not accepted; accepted: an IPv4 address")
        try:
            settings = load_settings({**raw, **overrides}, resolve_operator_cidr=False)
        except SettingsError as exc:
            problems = exc.errors + problems
        if problems:
            raise SettingsError(problems)
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = check(lab_objects(settings, proxy_address))
    if problems:  # a model bug, not a user error: refuse to hand out manifests Cilium would reject
        print("error: rendered objects fail Cilium's semantic checks:\n  - " + "\n  - ".join(problems),
              file=sys.stderr)
        return 1
    sys.stdout.write(render_yaml(settings, proxy_address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
