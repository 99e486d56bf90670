"""Drill 1: an app replica SIGKILLed under steady mixed load through HAProxy."""

from __future__ import annotations

import json

import pytest

from loopback.drills import replica_crash

pytestmark = pytest.mark.integration

EJECTION_TARGET_S = 1.0


def test_sigkilled_replica_costs_no_get_and_is_ejected_within_a_second(loopback_stack):
    result = replica_crash(loopback_stack)
    for figure in result.figures():
        print(figure.json())
    summary = json.dumps(result.load.summary(), indent=1)

    assert result.failed_gets() == 0, summary
    assert result.ejection_s <= EJECTION_TARGET_S, f"ejected after {result.ejection_s:.3f}s"
    # POSTs may fail (a request the dead replica had already taken); they are reported,
    # with the reason, by the figures printed above.
    assert result.served_by_victim_after_readd() > 0, "the restarted replica got no traffic"
