"""Reads keep working while there is no primary (loopback/degraded_reads.py): the DB
primary killed under load and promoted by the runbook only seconds later."""

from __future__ import annotations

import json

import pytest

from loopback.degraded_reads import NO_PRIMARY_HOLD_S, reads_without_primary
from loopback.load import POSTS

pytestmark = pytest.mark.integration

# The app's pool timeout (DB_CONNECT_TIMEOUT_S default): a write that waited for it hung.
POOL_TIMEOUT_S = 3.0


def test_no_get_fails_while_no_primary_exists_and_writes_are_refused_quickly(loopback_stack):
    result = reads_without_primary(loopback_stack)
    for figure in result.figures():
        print(figure.json())
    summary = json.dumps(result.load.summary(), indent=1)

    assert result.gets_while_no_primary() > 100, "the no-primary window saw too little read traffic"
    assert result.failed_gets() == 0, summary
    # Writes were unavailable at least for the hold, and each refusal came at once.
    assert result.write_unavailable_s >= NO_PRIMARY_HOLD_S
    refused = result.refused_write_latencies_s()
    assert refused, "no write was refused while no primary existed"
    assert max(refused) < POOL_TIMEOUT_S, sorted(refused)[-5:]
    reasons = {reason for kind in POSTS for reason in result.load.failure_reasons(kind, since=result.killed_at)}
    assert all(reason.startswith("HTTP 503") for reason in reasons), reasons
