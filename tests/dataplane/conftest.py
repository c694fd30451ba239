"""The egress lab fixture, shared by the egress data-plane modules (test_egress_dataplane,
test_lockdown_dataplane); the mTLS module defines its own ``lab``."""
from __future__ import annotations

import pytest

from . import netlab


@pytest.fixture(scope="module")
def lab():
    """One ``netlab.Lab`` per module, egress unlocked; tests switch the lock with ``set_lock``."""
    reason = netlab.unavailable()
    if reason:
        pytest.skip(reason)
    with netlab.Lab() as running:  # down() on success, failure and interruption (+ atexit, SIGTERM)
        yield running
