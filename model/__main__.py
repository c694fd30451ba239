"""The lab's offline tools: ``python -m model render | cost | verdicts`` (console command ``cilium-lab``).

``render [--stack dev] [--set key=value ...]`` prints every Kubernetes object the stack would apply as multi-document YAML on stdout (GitOps-
ready), with the Cilium Helm values as a comment. Settings come from ``Pulumi.<stack>.yaml`` and
``--set`` (which wins), validated exactly like ``pulumi up``. ``--set proxyAddress=<ipv4>`` gives
the proxy's address (default: a documented placeholder). ``--values-for kind|existing`` picks the
Helm values (the lab's kind cluster, or an existing Cilium >= 1.16 cluster), ``--values-only``
prints only them. The mTLS Secrets are placeholders (warned about on stderr and in the YAML)
unless ``--secrets-from-stack`` reads them from the deployed ``--stack`` through the Pulumi CLI.
Bad input: message on stderr, exit 2, nothing on stdout.
``python -m model verdicts ...`` is ``cilium-verdicts ...`` (the evaluator's CLI, cilium_verdicts.cli; see its -h)
with the lab's scenario packs available to ``--scenario``.
``python -m model cost [--stack dev] [--set key=value] [--region R] [--format text|json]`` prints the
hourly and monthly on-demand cost of every billable resource (model/cost.py, model/prices.json).
"""
from __future__ import annotations

import argparse
import ipaddress
import pathlib
import re
import sys

import yaml

from cilium_verdicts import cli as verdicts_cli

from . import cost, fleet
from .helm import HELM_TARGETS
from .lint import check
from .render import (
    PLACEHOLDER_ADDRESS,
    PROXY_ADDRESS_OUTPUT,
    SECRET_MATERIAL_OUTPUT,
    address_from_outputs,
    has_placeholder_secrets,
    lab_objects,
    parse_assignment,
    placeholder_warning,
    read_stack_outputs,
    render_yaml,
    scenario_objects_and_probes,
    secrets_from_outputs,
    values_yaml,
)
from .settings import (
    ECHO_LIMIT,
    PROJECT,
    SettingsError,
    load_settings,
    shown,
    shown_name,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
RENDER_ONLY = {"proxyAddress"}


class StackFileError(ValueError):
    """Pulumi.<stack>.yaml cannot be used (unreadable, not YAML, not a stack file): one line."""


def _where(path: pathlib.Path, mark) -> str:
    return f"{path.name} line {mark.line + 1}" + (f", column {mark.column + 1}" if mark.column else "")


_NODE_KINDS = {yaml.ScalarNode: "a plain value", yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping"}


def _describe(node: yaml.Node) -> str:
    kind = _NODE_KINDS.get(type(node), "something else")
    return f"{kind} ({shown(node.value)})" if isinstance(node, yaml.ScalarNode) else kind


def stack_config(stack: str | None, namespace: str = PROJECT) -> dict:
    """This project's keys of ``Pulumi.<stack>.yaml`` (without the ``cilium-egress-lab:`` prefix), or
    another namespace's (``namespace="aws"``: ``{"region": ...}``).

    A file that cannot be read, is not YAML, or is not a mapping with a ``config:`` mapping raises
    StackFileError naming ``--stack``, the file and the line - never a traceback."""
    if stack is None:
        return {}
    path = ROOT / f"Pulumi.{stack}.yaml"
    flag = f"--stack {shown_name(stack)}"
    if not path.is_file():
        raise SettingsError([f"--stack: {shown_name(path.name)} not found; accepted: a stack with a Pulumi.<stack>.yaml"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StackFileError(f"{flag}: cannot read {path.name}: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = (f" ({exc.context} at line {exc.context_mark.line + 1})"
                   if exc.context and exc.context_mark and exc.context_mark is not mark else "")
        raise StackFileError(f"{flag}: {_where(path, mark)}: YAML syntax error: {exc.problem}{context}; "
                             "accepted: a Pulumi stack file (config: mapping of key: value)") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{flag}: {path.name}: YAML error: {exc}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise StackFileError(f"{flag}: {_where(path, root.start_mark)}: the file is {_describe(root)}; "
                             "accepted: a mapping with a config: key, as pulumi writes it")
    config = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "config"), None)
    if config is None or (isinstance(config, yaml.ScalarNode) and config.tag == "tag:yaml.org,2002:null"):
        return {}
    if not isinstance(config, yaml.MappingNode):
        raise StackFileError(f"{flag}: {_where(path, config.start_mark)}: config: is {_describe(config)}; "
                             "accepted: a mapping of <project>:<key>: value")
    prefix = f"{namespace}:"
    out: dict = {}
    for key, value in config.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if not isinstance(name, str) or not name.startswith(prefix):
            continue  # other namespaces (aws:region when reading ours, ...)
        try:
            out[name[len(prefix):]] = yaml.SafeLoader("").construct_document(value)
        except (yaml.YAMLError, ValueError) as exc:
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
            raise StackFileError(f"{flag}: {_where(path, value.start_mark)}: {shown_name(name)}: "
                                 f"cannot read the value ({shown_name(reason, 120)})") from None
    return out


def run_cost(args: argparse.Namespace) -> int:
    """``python -m model cost``: settings exactly as ``render`` reads them, priced by model/cost.py."""
    import os
    try:
        raw = stack_config(args.stack)
        overrides = dict(parse_assignment(a) for a in args.set)
        settings = load_settings({**raw, **overrides}, resolve_operator_cidr=False)
        region = (args.region or stack_config(args.stack, "aws").get("region") or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or cost.DEFAULT_REGION)
        estimate = cost.estimate(settings, str(region))
    except (SettingsError, cost.CostError, ValueError) as exc:  # StackFileError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(cost.as_json(estimate) if args.format == "json" else cost.render_text(estimate, args.stack))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error names the accepted values of our flags and cuts echoed values."""

    ACCEPTED = {"--values-for": ", ".join(HELM_TARGETS),
                "--values-only": "the flag alone, without a value",
                "--secrets-from-stack": "the flag alone, with --stack <stack>"}

    def error(self, message: str):
        flag = re.match(r"argument (--[\w-]+)", message)
        if flag and "ignored explicit argument" in message:
            message = f"argument {flag.group(1)}: takes no value (got {message.split('argument ', 2)[-1]})"
        if flag and flag.group(1) in self.ACCEPTED and "accepted:" not in message:
            message += f"; accepted: {self.ACCEPTED[flag.group(1)]}"
        super().error(re.sub(r"\S{%d,}" % (ECHO_LIMIT + 1), lambda m: m.group(0)[:ECHO_LIMIT - 1] + "…", message))


def _values_target(text: str) -> str:
    if text not in HELM_TARGETS:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not accepted; accepted: {', '.join(HELM_TARGETS)}")
    return text


def main(argv: list[str] | None = None, prog: str = "python -m model") -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verdicts"]:
        return verdicts_cli.main(argv[1:], scenario_loader=scenario_objects_and_probes, prog="python -m model verdicts")
    parser = _Parser(prog=prog, description="The lab's offline tools: render its manifests, estimate its cost, "
                                            "and the verdict evaluator with its scenario packs.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verdicts", help="offline Cilium verdicts of your own YAML or a scenario stage (same as cilium-verdicts; verdicts -h)")
    render = sub.add_parser("render", help="print the Kubernetes manifests as multi-document YAML")
    render.add_argument("--stack", help="read Pulumi.<stack>.yaml (e.g. dev)")
    render.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key; proxyAddress=<ipv4> sets the proxy address")
    render.add_argument("--platform", choices=("aws", "local", "existing"),
                        help="render for this platform (the config key platform, like --set platform=...): "
                             "local shows its egress lock (CiliumClusterwideNetworkPolicy), existing drops the "
                             "platform's proxy guard")
    render.add_argument("--values-for", type=_values_target, default="kind", metavar="{kind,existing}",
                        help="Helm values for the lab's kind cluster (default) or for an existing "
                             "Cilium >= 1.16 cluster (no kind-specific keys; merge with --reuse-values)")
    render.add_argument("--values-only", action="store_true",
                        help="print only the Helm values, as a file for helm -f")
    render.add_argument("--secrets-from-stack", action="store_true",
                        help="fill the mTLS Secrets (and the proxy address) from the deployed --stack via "
                             f"the Pulumi CLI (its secret output {SECRET_MATERIAL_OUTPUT}); "
                             "without it they are placeholders")
    # a GitOps bundle for a fleet of clusters (model/fleet.py)
    render.add_argument("--fleet", type=int, metavar="N", help="write a GitOps bundle for N clusters to --out "
                        "(one directory per cluster, an Argo CD ApplicationSet, Flux Kustomizations)")
    render.add_argument("--out", metavar="DIR", help="the bundle's directory (with --fleet)")
    render.add_argument("--repo-url", metavar="URL", help="the Git repository the bundle is pushed to "
                        "(ApplicationSet/GitRepository; default: a placeholder)")
    render.add_argument("--proxy-for", action="append", default=[], metavar="CLUSTER=IPV4",
                        help="a cluster's own proxy address (default: proxyAddress for every cluster)")
    cost_cmd = sub.add_parser("cost", help="the hourly and monthly on-demand cost of every billable resource")
    cost_cmd.add_argument("--stack", help="read Pulumi.<stack>.yaml (e.g. dev): its keys and aws:region")
    cost_cmd.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    cost_cmd.add_argument("--region", help="AWS region (default: the stack's aws:region, else AWS_REGION / "
                                           f"AWS_DEFAULT_REGION, else {cost.DEFAULT_REGION})")
    cost_cmd.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.command == "cost":
        return run_cost(args)
    flag = "--secrets-from-stack"
    try:
        raw = stack_config(args.stack)
        overrides = dict(parse_assignment(a) for a in args.set)
        if args.platform:
            overrides["platform"] = args.platform
        explicit_address = "proxyAddress" in overrides
        proxy_address = overrides.pop("proxyAddress", PLACEHOLDER_ADDRESS)
        problems = []
        try:
            ipaddress.IPv4Address(proxy_address)
        except ValueError:
            problems.append(f"proxyAddress: {shown(proxy_address)} is not accepted; accepted: an IPv4 address")
        try:
            settings = load_settings({**raw, **overrides}, resolve_operator_cidr=False)
        except SettingsError as exc:
            problems = exc.errors + problems
        if problems:
            raise SettingsError(problems)
        mtls_secrets = None
        if args.secrets_from_stack:  # only after every local check passed: no CLI call for a typo
            if args.stack is None:
                raise ValueError(f"{flag}: needs --stack <stack> (the deployed stack to read); "
                                 f"accepted: --stack <stack> {flag}")
            if args.values_only:
                raise ValueError(f"{flag}: --values-only prints no Secrets; accepted: one of the two")
            if not has_placeholder_secrets(settings):
                raise ValueError(f"{flag}: no selected scenario has Secrets to fill; accepted: with the "
                                 f"mtls scenario in scenarios (in Pulumi.{shown_name(args.stack)}.yaml or "
                                 "--set scenarios=egress,mtls)")
            outputs = read_stack_outputs(args.stack, ROOT)
            mtls_secrets = secrets_from_outputs(args.stack, outputs)
            stack_address = address_from_outputs(outputs)
            if not explicit_address and stack_address:
                proxy_address = stack_address
            elif not explicit_address:
                print(f"warning: stack {shown(args.stack)} has no {PROXY_ADDRESS_OUTPUT} output; the proxy "
                      f"address stays the placeholder {PLACEHOLDER_ADDRESS} (--set proxyAddress=<ipv4>)",
                      file=sys.stderr)
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.fleet is not None or args.out is not None:
        return _render_fleet(args, settings, proxy_address)
    problems = check(lab_objects(settings, proxy_address, mtls_secrets))
    if problems:  # a model bug, not a user error: refuse to hand out manifests Cilium would reject
        print("error: rendered objects fail Cilium's semantic checks:\n  - " + "\n  - ".join(problems),
              file=sys.stderr)
        return 1
    if args.values_only:
        sys.stdout.write(values_yaml(settings, args.values_for))
        return 0
    if has_placeholder_secrets(settings) and mtls_secrets is None:
        print(f"warning: {placeholder_warning()}", file=sys.stderr)
    sys.stdout.write(render_yaml(settings, proxy_address, args.values_for, mtls_secrets, args.stack))
    return 0


def _render_fleet(args: argparse.Namespace, settings, proxy_address: str) -> int:
    """``render --fleet N --out DIR``: the GitOps bundle of model/fleet.py, written under DIR."""
    try:
        if args.fleet is None or args.out is None:
            raise fleet.FleetError("--fleet N and --out DIR go together; accepted: --fleet N --out DIR")
        if args.values_only or args.secrets_from_stack:
            raise fleet.FleetError("--fleet writes files; accepted without --values-only/--secrets-from-stack")
        per = {}
        for text in args.proxy_for:
            name, _, address = text.partition("=")
            try:
                per[name] = str(ipaddress.IPv4Address(address))
            except ValueError:
                raise fleet.FleetError(f"--proxy-for {shown(text)}: accepted: CLUSTER=<ipv4>") from None
        files = fleet.bundle(settings, args.fleet, proxy_address, proxy_addresses=per,
                             repo_url=args.repo_url or fleet.DEFAULT_REPO_URL)
        fleet.write(pathlib.Path(args.out), files)
    except (fleet.FleetError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files for {args.fleet} clusters to {args.out}", file=sys.stderr)
    return 0


def console() -> int:
    """The ``cilium-lab`` console command."""
    return main(prog="cilium-lab")


if __name__ == "__main__":
    sys.exit(main())
