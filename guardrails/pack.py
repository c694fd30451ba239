"""pulumi-policy wrappers around guardrails/rules.py: one policy per ``Rule``, nothing decided here.

What each policy sees (pulumi-policy 1.21, pulumi_policy/policy.py): a resource policy gets the
resource's *inputs* as ``args.props``, a stack policy gets every resource's *outputs* (the root
``pulumi:pulumi:Stack`` resource's are the stack outputs); both as read-only proxies that raise
UnknownValueError on a value unknown during preview (the SDK then reports "can't run policy during
preview" instead of a violation), and with secret values already decrypted. Configuration: the
policy's own ``--policy-pack-config`` entry (``args.get_config()``) and the stack's config, which
the engine hands the pack process as PULUMI_CONFIG (read through ``pulumi.runtime.get_config``).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from model.operator_ip import lookup_public_ipv4
from model.settings import PROJECT

from . import rules

PACK_NAME = "cilium-egress-lab-guardrails"
STACK_KEYS = (f"{PROJECT}:maxMonthlyCostUsd", f"{PROJECT}:operatorCidr", f"{PROJECT}:restrictEgress",
              f"{PROJECT}:envName", "aws:region")
LEVELS = {rules.MANDATORY: EnforcementLevel.MANDATORY, rules.ADVISORY: EnforcementLevel.ADVISORY}


def read_stack_config() -> dict[str, Any]:
    """The stack's config keys the rules use, as the engine passed them to this process."""
    import pulumi.runtime
    return {k: v for k in STACK_KEYS if (v := pulumi.runtime.get_config(k)) is not None}


def plain(value: Any) -> Any:
    """A props proxy as plain dicts and lists (values unknown during preview stay their sentinel
    strings), for checks that scan text rather than read fields."""
    if isinstance(value, Mapping):
        return {k: plain(value["__target"][k] if _proxied(value) else value[k]) for k in value}
    if isinstance(value, (str, bytes)) or value is None:
        return value
    if hasattr(value, "__len__") and hasattr(value, "__getitem__"):
        target = value["__target"] if _proxied(value) else value
        return [plain(x) for x in target]
    return value


def _proxied(value: Any) -> bool:
    return type(value).__name__ in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy")


@functools.lru_cache(maxsize=1)
def lookup_operator_ip() -> str:
    """operatorCidr auto: the operator's public IPv4, looked up once per pack process exactly as the
    program does (model/operator_ip.py, at program start)."""
    return lookup_public_ipv4()


def _props_for(rule: rules.Rule, props: Mapping[str, Any]) -> Mapping[str, Any]:
    # the secret scans read every string, known or not; the field checks read through the proxy
    return plain(props) if rule.check in (rules.check_command_secrets, rules.check_secret_outputs) else props


def context(config: Mapping[str, Any] | None, stack_config: Callable[[], Mapping[str, Any]],
            operator_lookup: Callable[[], str] | None = lookup_operator_ip) -> rules.Context:
    return rules.Context(dict(config or {}), dict(stack_config()), dict(os.environ), operator_lookup)


def resource_policy(rule: rules.Rule, stack_config: Callable[[], Mapping[str, Any]] = read_stack_config,
                    operator_lookup: Callable[[], str] | None = lookup_operator_ip):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = rules.Resource(args.resource_type, args.name, _props_for(rule, args.props), args.urn)
        for message in rule.check(resource, context(args.get_config(), stack_config, operator_lookup)):
            report_violation(message, None)
    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, enforcement_level=LEVELS[rule.level],
        config_schema=PolicyConfigSchema(dict(rule.config)) if rule.config else None, validate=validate)


def stack_policy(rule: rules.Rule, stack_config: Callable[[], Mapping[str, Any]] = read_stack_config,
                 operator_lookup: Callable[[], str] | None = lookup_operator_ip):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [rules.Resource(r.resource_type, r.name, _props_for(rule, r.props), r.urn,
                                    tuple(d.urn for d in r.dependencies)) for r in args.resources]
        for urn, message in rule.check(resources, context(args.get_config(), stack_config, operator_lookup)):
            report_violation(message, urn or None)
    return StackValidationPolicy(
        name=rule.name, description=rule.description, enforcement_level=LEVELS[rule.level],
        config_schema=PolicyConfigSchema(dict(rule.config)) if rule.config else None, validate=validate)


def policies(stack_config: Callable[[], Mapping[str, Any]] = read_stack_config,
             operator_lookup: Callable[[], str] | None = lookup_operator_ip) -> list:
    """Every rule of guardrails/rules.py as a pulumi-policy policy, in RULES order; ``operator_lookup``
    resolves operatorCidr auto (tests inject a fake: no network)."""
    return [(resource_policy if r.scope == "resource" else stack_policy)(r, stack_config, operator_lookup)
            for r in rules.RULES]
