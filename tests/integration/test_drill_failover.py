"""Drill 4: the DB primary killed under load; the replica promoted with the runbook's
`SELECT pg_promote()`; the apps resume writes without any config change."""

from __future__ import annotations

import pytest

from loopback.drills import manual_failover

pytestmark = pytest.mark.integration


def test_writes_resume_after_promotion_with_no_config_change(loopback_stack):
    writer_url = loopback_stack.writer_url
    result = manual_failover(loopback_stack)
    for figure in result.figures():
        print(figure.json())

    assert result.new_primary_in_recovery is False
    # Writes were acknowledged again (the drill polls for one, with a deadline)...
    assert result.first_write_s > 0
    # ...by the very same app processes, with the very same DATABASE_URL.
    assert result.app_pids_after == result.app_pids_before
    assert all(app.env["DATABASE_URL"] == writer_url for app in loopback_stack.apps)
    # Rows lost is the async RPO: measured and reported, not asserted.
