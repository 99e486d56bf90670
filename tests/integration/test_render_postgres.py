"""The rendered postgres flags, pg_hba, init script and replica bootstrap script, run by
Debian's real PostgreSQL 15 on 127.0.0.1 (as the postgres OS user, in temp dirs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.render.postgres import BOOTSTRAP_MARKER, EXISTING_CLUSTER_MARKER, HALF_FINISHED_MARKER
from loopback.ports import wait_until
from loopback.postgres import PgCluster, chown_to_postgres
from loopback.replication import MAX_SLOT_WAL_KEEP_SIZE_MB, LoopbackDatabase, loopback_database

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("postgres_installed")]


@pytest.fixture
def database() -> Iterator[LoopbackDatabase]:
    with loopback_database(replicas=1) as db:
        with db.connect_app(db.primary) as app:
            app.execute("CREATE TABLE notes (id int PRIMARY KEY)")
            app.execute("INSERT INTO notes VALUES (1)")
        yield db


def shows_note(db: LoopbackDatabase, replica: PgCluster, note_id: int) -> bool:
    with db.connect_app(replica) as conn:
        return conn.execute("SELECT count(*) FROM notes WHERE id = %s", (note_id,)).fetchone()[0] == 1


def replica_streams(db: LoopbackDatabase) -> bool:
    with db.connect(db.primary) as conn:
        streaming = conn.execute("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'").fetchall()
        active_slots = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE active").fetchall()
    return streaming == [("replica_0",)] and active_slots == [("replica_0",)]


def new_log_lines(replica: PgCluster, since: int) -> str:
    return replica.log_path.read_text(errors="replace")[since:]


def test_rendered_primary_settings_start_postgres_with_roles_slots_and_app_db() -> None:
    with loopback_database(replicas=2) as db, db.connect(db.primary) as conn:
        def setting(name: str) -> str:
            return conn.execute(f"SHOW {name}").fetchone()[0]

        assert setting("wal_level") == "replica"
        assert setting("max_slot_wal_keep_size") == f"{MAX_SLOT_WAL_KEEP_SIZE_MB}MB"
        assert setting("hot_standby_feedback") == "on"
        assert setting("password_encryption") == "scram-sha-256"
        assert int(setting("max_wal_senders")) >= 2
        assert conn.execute("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchone()[0] == 0
        slots = conn.execute("SELECT slot_name, slot_type FROM pg_replication_slots ORDER BY 1").fetchall()
        assert slots == [("replica_0", "physical"), ("replica_1", "physical")]
        assert conn.execute("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'").fetchone() == (True,)
        assert conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'").fetchone() == ("app",)
        with db.connect_app(db.primary) as app:
            assert app.execute("SELECT current_user, current_database()").fetchone() == ("app", "app")


def test_rendered_bootstrap_script_brings_up_a_streaming_replica(database: LoopbackDatabase) -> None:
    replica = database.start_replica(0)

    assert BOOTSTRAP_MARKER in new_log_lines(replica, since=0)
    visible_s = wait_until(lambda: shows_note(database, replica, 1), deadline_s=15, what="note 1 on the replica")
    wait_until(lambda: replica_streams(database), deadline_s=15, what="replica_0 streaming on an active slot")
    print(f"replica showed the primary's row {visible_s:.3f} s after accepting connections")


def test_bootstrap_script_restart_does_not_rebootstrap_and_catches_up(database: LoopbackDatabase) -> None:
    replica = database.start_replica(0)
    wait_until(lambda: shows_note(database, replica, 1), deadline_s=15, what="note 1 on the replica")
    # A file only this data dir has: a second pg_basebackup would need an empty dir.
    sentinel = replica.data_dir / "hastack-test-sentinel"
    sentinel.write_text("written after the first bootstrap")
    replica.stop()
    with database.connect_app(database.primary) as app:
        app.execute("INSERT INTO notes VALUES (2)")

    log_before_restart = len(replica.log_path.read_text(errors="replace"))
    database.start_replica(0)

    second_run = new_log_lines(replica, since=log_before_restart)
    assert EXISTING_CLUSTER_MARKER in second_run
    assert BOOTSTRAP_MARKER not in second_run
    assert sentinel.exists()
    wait_until(lambda: shows_note(database, replica, 2), deadline_s=15, what="note 2 caught up on the replica")
    wait_until(lambda: replica_streams(database), deadline_s=15, what="replica_0 streaming again")


def test_bootstrap_script_starts_an_existing_replica_while_the_primary_is_down(database: LoopbackDatabase) -> None:
    replica = database.start_replica(0)
    wait_until(lambda: shows_note(database, replica, 1), deadline_s=15, what="note 1 on the replica")
    replica.stop()
    database.primary.stop()

    database.start_replica(0, deadline_s=15)

    assert shows_note(database, replica, 1)


def test_bootstrap_script_replaces_a_half_finished_base_backup(database: LoopbackDatabase) -> None:
    # What a container killed in the middle of pg_basebackup leaves behind: some files,
    # backup_label (sent first), but no standby.signal (written last).
    data_dir = database.root / "replica-0"
    data_dir.mkdir(mode=0o700)
    for name, text in [("PG_VERSION", "15\n"), ("backup_label", "START WAL LOCATION: 0/2000028\n"),
                       ("leftover-partial-file", "x")]:
        (data_dir / name).write_text(text)
        chown_to_postgres(data_dir / name)
    chown_to_postgres(data_dir)

    replica = database.start_replica(0)

    log = new_log_lines(replica, since=0)
    assert HALF_FINISHED_MARKER in log and BOOTSTRAP_MARKER in log
    assert not (data_dir / "leftover-partial-file").exists()
    wait_until(lambda: shows_note(database, replica, 1), deadline_s=15, what="note 1 on the replica")
    wait_until(lambda: replica_streams(database), deadline_s=15, what="replica_0 streaming")
