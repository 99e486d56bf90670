"""Drill 6: the Patroni leader node SIGKILLed under load through HAProxy and the apps;
Patroni promotes the sync standby by itself and the apps follow it unchanged."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from loopback.drills import AUTOMATIC_FAILOVER_TARGET_S, automatic_failover
from loopback.load import GETS, KINDS
from loopback.processes import process_tree
from loopback.stack import run_loopback_stack

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("patroni_installed", "stack_binaries_installed")]


def test_patroni_leader_crash_resumes_writes_through_the_lb_within_ten_seconds_losing_no_note():
    with run_loopback_stack(database="patroni") as stack:
        started = stack.pids()
        dirs = [stack.root, stack.db.root, stack.db.etcd.root]
        result = automatic_failover(stack)
        started |= stack.pids()
        urls = (stack.writer_url, stack.reader_url)
    for figure in result.figures():
        print(figure.json())
    summary = json.dumps(result.load.summary(), indent=1)

    assert result.new_leader != result.crashed
    # The HA target, end to end: kill -> Patroni promotes -> the app's pool reconnects ->
    # /readyz 200 -> HAProxy has the apps UP again -> a POST is acknowledged.
    assert result.first_write_s <= AUTOMATIC_FAILOVER_TARGET_S, summary
    # Synchronous mode: every note the load saw acknowledged is on the new leader.
    assert result.committed_note_ids, "no note was acknowledged"
    assert result.lost_note_ids == set(), f"{len(result.lost_note_ids)} of {len(result.committed_note_ids)} lost"
    # The same app processes, running with the same multi-host URLs, which list every member.
    assert result.apps_after == result.apps_before
    assert all(env["DATABASE_URL"] == urls[0] and env["DATABASE_READ_URL"] == urls[1]
               for env in result.apps_after.values())
    # Reads keep being served while no leader exists: the LB's read backend checks
    # /readyz/read (any DB node), which the surviving standby satisfies.
    assert all(result.load.failed(kind, since=result.killed_at) == [] for kind in GETS), summary
    # Failed writes while no leader exists are reported (figures above), not asserted;
    # once writes resumed, nothing fails.
    resumed_at = result.killed_at + result.first_write_s
    assert all(result.load.failed(kind, since=resumed_at + 1.0) == [] for kind in KINDS), summary

    # Teardown: etcd, Patroni, every postgres, the apps and HAProxy are gone, and their dirs.
    assert process_tree(started) == set(), "processes left running after the stack stopped"
    assert [path for path in dirs if path.exists()] == []
    assert all(path.parent == Path(tempfile.gettempdir()) for path in dirs), dirs
