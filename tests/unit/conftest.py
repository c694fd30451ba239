"""Programs shared by the unit tests: each is run once per session under mocks (the results are
plain data, so sharing them is safe)."""
import pytest

from .harness import ok_program


@pytest.fixture(scope="session")
def unlocked():
    return ok_program({})


@pytest.fixture(scope="session")
def locked():
    return ok_program({"restrictEgress": True})
