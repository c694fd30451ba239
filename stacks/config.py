"""Read the stack's configuration once into a validated ``model.settings.Settings``.

Every key is read here and nowhere else; validation (model.settings) runs before the
composition declares any resource, and its message names each bad key.
"""
from __future__ import annotations

from typing import Callable

import pulumi
import pulumi.runtime.config as runtime_config

from model.operator_ip import lookup_public_ipv4
from model.settings import CONFIG_KEYS, PROJECT, Settings, SettingsError, load_settings


def project_keys() -> set[str]:
    """Every key set in this project's namespace (``cilium-egress-lab:<key>``), known or not, so a
    misspelt key fails the update instead of being silently ignored. The engine hands the stack's
    config to the program as the runtime config map (and PULUMI_CONFIG for older hosts)."""
    prefix = f"{PROJECT}:"
    names = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    return {n[len(prefix):] for n in names if n.startswith(prefix)}


def read_settings(public_ip_lookup: Callable[[], str] | None = lookup_public_ipv4) -> Settings:
    config = pulumi.Config(PROJECT)
    raw = {key: config.get(key) for key in {k.name for k in CONFIG_KEYS} | project_keys()}
    try:
        return load_settings(raw, public_ip_lookup=public_ip_lookup,
                             aws_region=pulumi.Config("aws").get("region"))
    except SettingsError as exc:
        # RunError: Pulumi prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
