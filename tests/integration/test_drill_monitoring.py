"""Detection drill: Debian's prometheus and prometheus-postgres-exporter watch the stack on
loopback (haproxy, app processes, postgresql-15 primary + replica), and each fault's alert
goes from quiet to firing in Prometheus's API (loopback/monitoring.py). The seconds each
took are figures for `python -m bench monitoring`, not assertions here."""

from __future__ import annotations

import pytest

from loopback.monitoring import ALERT_DEADLINE_S, detection_drill, watching
from tests.integration.conftest import require_binaries

pytestmark = pytest.mark.integration


def test_each_fault_turns_its_alert_from_quiet_to_firing(loopback_stack):
    require_binaries("prometheus", "prometheus-postgres-exporter")
    with watching(loopback_stack) as watch:
        result = detection_drill(loopback_stack, watch)
    assert all(result.quiet_before.values()), result.quiet_before
    for seconds in (result.backend_alert_s, result.replica_alert_s, result.archive_alert_s):
        assert 0 < seconds < ALERT_DEADLINE_S
