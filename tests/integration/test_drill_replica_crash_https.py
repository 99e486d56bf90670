"""Drill 1 over HTTPS: the same SIGKILL of an app replica (loopback/drills.py
replica_crash) through HAProxy terminating TLS, as `loadBalancer.tls` runs it; the load
verifies the certificate against the stack CA."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from loopback.drills import replica_crash
from loopback.stack import LoopbackStack, run_loopback_stack

pytestmark = pytest.mark.integration

EJECTION_TARGET_S = 1.0


@pytest.fixture
def https_stack(stack_binaries_installed: None) -> Iterator[LoopbackStack]:
    with run_loopback_stack(tls=True) as stack:
        yield stack


def test_sigkilled_replica_behind_https_costs_no_get_and_is_ejected_within_a_second(https_stack):
    assert https_stack.url.startswith("https://127.0.0.1:")
    result = replica_crash(https_stack)
    for figure in result.figures():
        print(figure.json())
    summary = json.dumps(result.load.summary(), indent=1)

    assert len(result.load.results) > 0 and result.failed_gets() == 0, summary
    assert result.ejection_s <= EJECTION_TARGET_S, f"ejected after {result.ejection_s:.3f}s"
    assert result.served_by_victim_after_readd() > 0, "the restarted replica got no traffic"
