"""Drill 2: every app replica restarted in turn (SIGTERM, graceful drain) under load,
with jobs in flight."""

from __future__ import annotations

import json

import pytest

from loopback.drills import submit_jobs
from loopback.haproxy import UP
from loopback.no_replay import rolling_restart_without_replay
from loopback.stack import run_loopback_stack

pytestmark = pytest.mark.integration


def test_rolling_restart_fails_no_request_of_any_kind_replays_none_and_loses_no_job(loopback_stack):
    result, replays = rolling_restart_without_replay(loopback_stack)
    for figure in result.figures() + replays.figures():
        print(figure.json())

    assert result.failed_requests == 0, json.dumps(result.load.summary(), indent=1)
    assert replays.delivered_twice == {}, replays.delivered_twice
    assert len(result.step_s) == len(loopback_stack.apps)
    stats = result.job_stats
    assert stats["by_status"] == {"queued": 0, "processing": 0, "done": result.jobs_submitted, "failed": 0}, stats
    assert stats["completed_more_than_once"] == 0, stats


@pytest.mark.usefixtures("stack_binaries_installed")
def test_sigterm_during_a_claim_leaves_no_job_stuck_in_processing():
    """The rolling restart's job check, made sharp: workers that poll without pause are
    almost always mid-claim when SIGTERM lands. A claim abandoned there would leave its
    job `processing` until the stale reclaim (a minute by default)."""
    with run_loopback_stack(app_replicas=2, app_env={"JOB_POLL_S": "0.001"}) as stack:
        for step in range(4):
            app = stack.apps[step % 2]
            submit_jobs(stack.url, f"claim-race-{step}", 300, work_s=0.0)
            app.terminate()
            app.wait_exit(timeout_s=30)
            with stack.db.connect_app(stack.primary) as conn:
                stuck = conn.execute("SELECT id FROM jobs WHERE status = 'processing' AND node_id = %s",
                                     (app.node_id,)).fetchall()
            assert stuck == [], f"SIGTERM {step} left {app.node_id}'s claimed jobs in processing"
            stack.restart_app(step % 2)
            stack.haproxy.wait_for_server(app.node_id, UP, deadline_s=30)
