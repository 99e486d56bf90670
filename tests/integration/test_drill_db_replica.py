"""Drill 3: the DB replica killed under load, then restarted by its bootstrap script."""

from __future__ import annotations

import json

import pytest

from loopback.drills import db_replica_loss
from loopback.load import KINDS

pytestmark = pytest.mark.integration


def test_replica_loss_keeps_the_app_ready_and_its_return_does_not_rebootstrap(loopback_stack):
    result = db_replica_loss(loopback_stack)
    for figure in result.figures():
        print(figure.json())
    outage = {"since": result.killed_at, "until": result.returned_at}

    # While the replica is down: every app stays ready, and note reads fall back to
    # the writer (the reader URL's prefer-standby lands on the primary).
    assert result.readyz_statuses and set(result.readyz_statuses) == {200}, result.readyz_statuses
    assert result.load.of("get_note", **outage), "no note was read during the outage"
    assert result.load.failed("get_note", **outage) == []
    assert result.reader_sessions_on_primary > 0
    assert sum(len(result.load.failed(kind)) for kind in KINDS) == 0, \
        json.dumps(result.load.summary(), indent=1)

    # Its return: the same data dir started as it was, no new base backup.
    assert result.started_existing_cluster and not result.rebootstrapped, result.restart_log
    assert result.data_dir_identity_after == result.data_dir_identity_before
    # ...and it caught up: replay lag reached 0 bytes (polled, with a deadline, by the drill).
    assert result.catchup_s < 30
