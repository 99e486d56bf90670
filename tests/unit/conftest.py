"""Fixtures for the unit tests; helpers for reading recorded resources are in mock_run.py."""

import pulumi
import pytest
from pulumi.runtime import settings as pulumi_settings

from plan import fakes
from plan.engine import PROJECT


@pytest.fixture
def pulumi_mocks_dev() -> None:
    """Plain mocks for `@pulumi.runtime.test` functions (pulumi/examples testing-unit-py style)."""
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(fakes.ProviderFakes(), project=PROJECT, stack="dev", preview=False)
