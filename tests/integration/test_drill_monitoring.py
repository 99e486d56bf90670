"""Detection drill: Debian's prometheus, prometheus-alertmanager, prometheus-postgres-exporter
and prometheus-node-exporter watch the stack on loopback (haproxy, app processes,
postgresql-15 primary + replica archiving through pgbackrest), and each fault's alert goes
from quiet to firing in Prometheus's API and reaches Alertmanager's webhook
(loopback/monitoring.py). The seconds each took are figures for `python -m bench
monitoring`, not assertions here."""

from __future__ import annotations

import pytest

from loopback.monitoring import ALERT_DEADLINE_S, CUSTOM_METRICS, detection_drill, patroni_leader_drill, watching
from loopback.stack import run_loopback_stack
from tests.integration.conftest import require_binaries

pytestmark = pytest.mark.integration

MONITORING_BINARIES = ("prometheus", "prometheus-alertmanager", "prometheus-postgres-exporter",
                       "prometheus-node-exporter")


def test_each_fault_turns_its_alert_from_quiet_to_firing_and_notified(stack_binaries_installed, pgbackrest_installed):
    require_binaries(*MONITORING_BINARIES)
    with run_loopback_stack(backups=True) as stack, watching(stack) as watch:
        result = detection_drill(stack, watch)
    # The custom queries work as the pg_monitor role on the primary and the replica.
    assert result.custom_metric_nodes == {metric: 2 for metric in CUSTOM_METRICS}
    assert all(result.quiet_before.values()), result.quiet_before
    # Prometheus read the real backup's end from the report, through the textfile collector.
    assert result.reported_backup_stop == result.backup_stop > 0
    for seconds in (result.backend_alert_s, result.replica_alert_s, result.archive_alert_s, result.archive_notified_s):
        assert 0 < seconds < ALERT_DEADLINE_S
    # Timed from the moment the backup became too old, which the rule cannot see before.
    assert 0 < result.backup_alert_s < ALERT_DEADLINE_S


def test_patroni_no_leader_follows_the_real_patroni_metric(patroni_installed, tmp_path):
    require_binaries("prometheus")
    result = patroni_leader_drill(tmp_path)
    assert result.leaders_before == 1 and result.quiet_before
    assert 0 < result.no_leader_alert_s < ALERT_DEADLINE_S
