"""Drill 2: every app replica restarted in turn (SIGTERM, graceful drain) under load,
with jobs in flight."""

from __future__ import annotations

import json

import pytest

from loopback.drills import rolling_restart

pytestmark = pytest.mark.integration


def test_rolling_restart_fails_no_request_and_loses_no_job(loopback_stack):
    result = rolling_restart(loopback_stack)
    for figure in result.figures():
        print(figure.json())

    assert result.failed_requests == 0, json.dumps(result.load.summary(), indent=1)
    assert len(result.step_s) == len(loopback_stack.apps)
    stats = result.job_stats
    assert stats["by_status"] == {"queued": 0, "processing": 0, "done": result.jobs_submitted, "failed": 0}, stats
    assert stats["completed_more_than_once"] == 0, stats
