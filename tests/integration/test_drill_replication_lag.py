"""Drill 5: replication lag and read-your-writes on the replica under pgbench writes."""

from __future__ import annotations

import pytest

from loopback.drills import LAG_ALERT_BYTES, replication_lag
from loopback.load import nearest_rank

pytestmark = pytest.mark.integration


@pytest.mark.usefixtures("pgbench_installed")
def test_replica_stays_under_the_lag_alert_under_pgbench_writes(loopback_stack):
    result = replication_lag(loopback_stack)
    for figure in result.figures():
        print(figure.json())

    assert result.pgbench_transactions > 0
    assert result.lag_bytes and result.read_your_writes_s
    # The runbook's alert fires above 1 MB; a healthy replica on one host stays below.
    assert nearest_rank(99, result.lag_bytes) < LAG_ALERT_BYTES, sorted(result.lag_bytes)[-10:]
