"""The shipped Azure stacks under mocks, run once per session and shared by every Azure test
file (the tests only read them)."""

from __future__ import annotations

import pytest

from plan.engine import ProgramRun, run_stack_file
from tests.unit.azure.helpers import PROD, STAGING


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    return run_stack_file(PROD)


@pytest.fixture(scope="session")
def staging() -> ProgramRun:
    return run_stack_file(STAGING)


@pytest.fixture(scope="session", params=["prod", "staging"])
def shipped(request, prod, staging) -> ProgramRun:
    """Both shipped Azure stacks, for what must hold in each."""
    return {"prod": prod, "staging": staging}[request.param]
