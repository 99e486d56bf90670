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

    # The runbook's rebuild: the old primary, emptied, comes back as a replica of the
    # new one through the rendered bootstrap script, and has every acknowledged note.
    assert result.rebuilt_by_base_backup, result.rebuild_log
    assert result.rebuilt_streaming
    assert result.notes_on_rebuilt_node == len(result.committed_note_ids) - len(result.lost_note_ids)
    # It is first in the apps' writer URL, yet, a standby now, libpq skips it for writes.
    assert result.write_after_rebuild_ok
