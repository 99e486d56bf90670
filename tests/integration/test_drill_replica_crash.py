"""Drill 1: an app replica SIGKILLed under steady mixed load through HAProxy, checked
for requests delivered twice (loopback/no_replay.py)."""

from __future__ import annotations

import json

import pytest

from loopback.no_replay import replica_kill_without_replay

pytestmark = pytest.mark.integration

EJECTION_TARGET_S = 1.0


def test_sigkilled_replica_costs_no_get_nor_keyed_post_and_replays_nothing(loopback_stack):
    result, replays = replica_kill_without_replay(loopback_stack)
    for figure in result.figures() + replays.figures():
        print(figure.json())
    summary = json.dumps(result.load.summary(), indent=1)

    assert result.failed_gets() == 0, summary
    assert result.load.failed("post_note") == [], summary
    # An unkeyed POST the dead replica had taken fails (502): at most those in flight.
    assert replays.failed_unkeyed <= replays.unkeyed_in_flight_at_kill, summary
    assert replays.delivered_twice == {}, replays.delivered_twice
    assert result.ejection_s <= EJECTION_TARGET_S, f"ejected after {result.ejection_s:.3f}s"
    assert result.served_by_victim_after_readd() > 0, "the restarted replica got no traffic"
