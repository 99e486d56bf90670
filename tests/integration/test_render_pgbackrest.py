"""The rendered pgbackrest.conf, archive settings, backup job and restore script, run by
real pgbackrest 2.45 and PostgreSQL 15 on 127.0.0.1 (loopback/backups.py): archiving from
the primary, the scheduled job's choices, and every way a restore must refuse before it
writes anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.render.pgbackrest import (
    BACKUP_CURRENT_MARKER,
    BACKUP_SKIPPED_MARKER,
    EXISTING_CLUSTER_MARKER,
    NOT_OURS_MARKER,
    OUTSIDE_WINDOW_MARKER,
)
from loopback.backups import LoopbackBackups, loopback_backups


@pytest.fixture(scope="module")
def archived(pgbackrest_installed) -> Iterator[LoopbackBackups]:
    """A primary and one streaming replica archiving into an encrypted repository, with one full backup."""
    with loopback_backups(replicas=1) as setup:
        setup.db.start_replica(0)
        setup.first_backup_log = setup.run_backup_job("ensure")
        yield setup


def test_the_primary_archives_with_the_rendered_command_and_nothing_fails(archived):
    with archived.db.connect(archived.db.primary) as conn:
        assert conn.execute("SHOW archive_mode").fetchone()[0] == "on"
        assert "archive-push %p" in conn.execute("SHOW archive_command").fetchone()[0]
        assert conn.execute("SHOW archive_timeout").fetchone()[0] == "10s"
    archived.wait_archived(archived.db.primary)
    with archived.db.connect(archived.db.primary) as conn:
        assert conn.execute("SELECT failed_count FROM pg_stat_archiver").fetchone()[0] == 0


def test_the_standby_has_the_same_settings_but_does_not_archive(archived):
    with archived.db.connect(archived.db.replicas[0]) as conn:
        assert conn.execute("SHOW archive_mode").fetchone()[0] == "on"
        assert conn.execute("SELECT archived_count, failed_count FROM pg_stat_archiver").fetchone() == (0, 0)


def test_ensure_took_a_full_backup_and_check_passed_then_finds_it_current(archived):
    assert "--type=full" in archived.first_backup_log and "check command end: completed successfully" in archived.first_backup_log
    assert BACKUP_CURRENT_MARKER in archived.run_backup_job("ensure")


def test_info_json_shows_the_backup_and_the_archive_for_monitoring(archived):
    info = archived.info()
    assert info["status"]["code"] == 0
    assert [backup["type"] for backup in info["backup"]][:1] == ["full"]
    assert info["backup"][-1]["timestamp"]["stop"] >= info["backup"][-1]["timestamp"]["start"]
    assert info["archive"][0]["min"] and info["archive"][0]["max"]
    assert info["cipher"] == "aes-256-cbc"


def test_a_diff_backup_runs_on_top_of_the_full(archived):
    archived.run_backup_job("diff")
    types = [backup["type"] for backup in archived.info()["backup"]]
    assert types[-1] == "diff"


def test_the_scheduled_job_on_a_standby_backs_up_nothing(archived):
    replica = archived.db.replicas[0]
    settings = archived.node_settings("replica-0", replica.data_dir, replica.port, archived.db.root)
    before = len(archived.info()["backup"])
    assert BACKUP_SKIPPED_MARKER in archived.run_backup_job("full", settings)
    assert len(archived.info()["backup"]) == before


@pytest.mark.parametrize("target", ["2001-01-01T00:00:00Z", "2999-01-01T00:00:00+02:00"])
def test_a_target_outside_the_window_is_one_clear_error_and_nothing_is_written(archived, target):
    run = archived.restore(target, name=f"outside-{target[:4]}")
    code, log = run.wait_failed()
    assert code == 1
    assert OUTSIDE_WINDOW_MARKER in log and "nothing was restored" in log
    assert not run.cluster.data_dir.exists()


def test_a_non_empty_data_dir_it_did_not_create_is_refused_untouched(archived):
    data_dir = archived.root / "someone-elses"
    data_dir.mkdir()
    (data_dir / "precious.txt").write_text("keep me")
    code, log = archived.restore("latest", data_dir=data_dir, name="someone-elses").wait_failed()
    assert code == 1 and NOT_OURS_MARKER in log
    assert [p.name for p in data_dir.iterdir()] == ["precious.txt"]
    assert (data_dir / "precious.txt").read_text() == "keep me"


def test_a_restored_cluster_is_started_as_it_is_on_the_next_run(archived):
    first = archived.restore("latest", name="restarted")
    first.wait_writable()
    first.cluster.stop()
    again = archived.restore("latest", data_dir=first.cluster.data_dir, name="restarted-again")
    again.wait_writable()
    assert EXISTING_CLUSTER_MARKER in again.cluster.log_path.read_text()
