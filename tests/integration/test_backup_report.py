"""The backup-age alert's feeder with real binaries: Debian's pgbackrest 2.45 takes real
backups through the rendered job and backup report (render/backup_report.py), and Debian's
prometheus-node-exporter 1.5.0 serves the report with its textfile collector, as the
Docker platform's `monitoring-backups` container does. The reported time is the newest
backup's end in `pgbackrest info`, follows each new backup, and stays put (so the alert's
age keeps growing) when the repository cannot be read."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.render.backup_report import FAILED_MARKER, NEWEST_BACKUP_METRIC
from loopback.backups import STANZA, loopback_backups
from loopback.monitoring import textfile_exporter
from loopback.postgres import chown_to_postgres
from tests.integration.conftest import require_binaries

pytestmark = pytest.mark.integration


def reported(exporter: str) -> dict[str, float]:
    """stanza -> the report's value, as Prometheus would scrape it; plus scrape errors."""
    text = httpx.get(f"http://{exporter}/metrics", timeout=5).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert [s.value for s in samples if s.name == "node_textfile_scrape_error"] == [0]
    return {s.labels["stanza"]: s.value for s in samples if s.name == NEWEST_BACKUP_METRIC}


def newest_stop(info: dict) -> int:
    return max(backup["timestamp"]["stop"] for backup in info["backup"])


def test_the_report_serves_the_newest_backups_end_and_follows_every_backup(pgbackrest_installed, tmp_path):
    require_binaries("prometheus-node-exporter")
    with loopback_backups() as setup, ExitStack() as running:
        reports = setup.root / "backup-reports"
        reports.mkdir()
        chown_to_postgres(reports)
        exporter = textfile_exporter(running, reports, tmp_path)
        assert reported(exporter) == {}

        setup.run_backup_job("ensure", report_dir=reports)  # no backup yet: a full one
        first = newest_stop(setup.info())
        assert reported(exporter) == {STANZA: first}

        setup.wait_archived(setup.db.primary)
        setup.run_backup_job("diff", report_dir=reports)
        second = newest_stop(setup.info())
        assert second >= first and len(setup.info()["backup"]) == 2
        assert reported(exporter) == {STANZA: second}

        # The repository unreadable: the job fails, the report says so and keeps the last
        # known backup, whose age the alert goes on counting.
        repository = setup.root / "repo"
        mode = repository.stat().st_mode & 0o7777
        repository.chmod(0)
        try:
            with pytest.raises(RuntimeError) as failed:
                setup.run_backup_job("diff", report_dir=reports)
        finally:
            repository.chmod(mode)
        assert FAILED_MARKER in str(failed.value)
        assert reported(exporter) == {STANZA: second}
        assert [p.name for p in reports.iterdir()] == [f"pgbackrest-{STANZA}.prom"]
