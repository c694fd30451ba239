"""Read the stack's configuration once into a validated ``model.settings.Settings``.

Every key is read here and nowhere else; validation (model.settings) runs before the
composition declares any resource, and its message names each bad key.
"""
from __future__ import annotations

from typing import Callable

import pulumi

from model.operator_ip import lookup_public_ipv4
from model.settings import CONFIG_KEYS, PROJECT, Settings, SettingsError, load_settings


def read_settings(public_ip_lookup: Callable[[], str] | None = lookup_public_ipv4) -> Settings:
    config = pulumi.Config(PROJECT)
    raw = {key.name: config.get(key.name) for key in CONFIG_KEYS}
    try:
        return load_settings(raw, public_ip_lookup=public_ip_lookup)
    except SettingsError as exc:
        # RunError: Pulumi prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
