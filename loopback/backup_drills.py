"""The backup drills of issue 10, on a loopback database archiving into pgBackRest
(loopback/backups.py). Each returns a result for the tests' assertions
(tests/integration/test_drill_backups.py) and its figures for bench/backups.py.

1. `operator_error`      under steady writes, delete every row; restore to just before.
2. `whole_cluster_loss`  under steady writes, kill primary and replica and delete their
                         data dirs; restore `latest`. RPO and RTO.
3. `timeline_switch`     promote the replica (manual failover); the new primary archives
                         on its new timeline and backs up; restore to after the switch.
                         With Patroni: loopback/backup_patroni.py.
4. (loopback/backup_standby.py) a backup from the standby under load.
5. `encryption`          a copy of the repository without the passphrase yields nothing.

Commit times come from the server (track_commit_timestamp), so "before the target" means
what recovery means by it: a commit whose timestamp is at or before the target.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar
from datetime import datetime
from pathlib import Path

import psycopg

from components.render.pgbackrest import PgBackRestSettings, RepositorySettings

from .backups import LoopbackBackups, posix_repository
from .binaries import find
from .drills import Figure
from .ports import wait_until
from .postgres import PgCluster, as_postgres, chown_to_postgres, remove_tree

# Every drill database runs with this, so each row's commit time can be read back.
DRILL_FLAGS = ("-c", "track_commit_timestamp=on")
# Steady writes: one row per commit, bounded in rate and in time.
WRITE_RATE_PER_S = 50.0
WRITE_MAX_S = 120.0
# Rows committed before a disturbance, and after the target, so each phase is under load.
ROWS_BEFORE = 100
ROWS_AFTER_TARGET = 25
# OpenSSL's "enc" header, which starts every file pgBackRest encrypts (src/common/crypto/cipherBlock.c).
ENCRYPTED_MAGIC = b"Salted__"
CANARY = "hastack-backup-canary"

TABLE_SQL = ("CREATE TABLE drill_rows (id bigint PRIMARY KEY, payload text NOT NULL, "
             "written_at timestamptz NOT NULL DEFAULT clock_timestamp())")


class RowWriter(threading.Thread):
    """Inserts ids 1, 2, 3, ... one commit each at a bounded rate; records every
    acknowledged id with the server's clock at insert time."""

    def __init__(self, connect: Callable[[], psycopg.Connection]):
        super().__init__(daemon=True)
        self.connect = connect
        self.acknowledged: dict[int, datetime] = {}
        self.stopping = threading.Event()
        self.next_id = 1

    def run(self) -> None:
        deadline = time.monotonic() + WRITE_MAX_S
        next_id = self.next_id
        try:
            with self.connect() as conn:
                while not self.stopping.is_set() and time.monotonic() < deadline:
                    written_at = conn.execute("INSERT INTO drill_rows (id, payload) VALUES (%s, %s) RETURNING written_at",
                                              (next_id, f"row {next_id}")).fetchone()[0]
                    self.acknowledged[next_id] = written_at
                    next_id += 1
                    self.stopping.wait(1 / WRITE_RATE_PER_S)
        except psycopg.OperationalError:
            pass  # the server was killed under it; what was acknowledged is recorded

    def wait_for(self, count: int, deadline_s: float = 30.0) -> None:
        wait_until(lambda: len(self.acknowledged) >= count, deadline_s, f"{count} rows written")

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def _figures(drill: str, values: dict[str, tuple[float, str]], detail: dict | None = None) -> list[Figure]:
    """One figure per value; each line carries its own key too (`"rpo_s": 3.1`)."""
    return [Figure(drill, f"backup_{drill}_{name}", value, unit, {name: value, **(detail or {})})
            for name, (value, unit) in values.items()]


def _restored_ids(setup: LoopbackBackups, cluster) -> set[int]:
    with setup.db.connect(cluster, "app") as conn:
        return {row[0] for row in conn.execute("SELECT id FROM drill_rows")}


def prepare(setup: LoopbackBackups) -> None:
    """The drill table, then the first backup, taken by the scheduled job's `ensure`."""
    with setup.db.connect(setup.db.primary, "app") as conn:
        conn.execute(TABLE_SQL)
    setup.run_backup_job("ensure")


# ----------------------------------------------------------------- 1. operator error


@dataclass(frozen=True)
class PointInTimeResult:
    """What a point-in-time restore brought back, against what was committed by the target."""

    committed_before_target: int
    rows_before_target_missing: int
    rows_after_target_present: int
    rto_s: float

    drill: ClassVar[str] = "operator_error"

    def detail(self) -> dict:
        return {"committed_before_target": self.committed_before_target}

    def figures(self) -> list[Figure]:
        return _figures(self.drill, {
            "rows_before_target_missing": (self.rows_before_target_missing, "rows"),
            "rows_after_target_present": (self.rows_after_target_present, "rows"),
            "rto_s": (self.rto_s, "s"),
        }, self.detail())


def operator_error(setup: LoopbackBackups) -> PointInTimeResult:
    prepare(setup)
    primary = setup.db.primary
    writer = RowWriter(lambda: setup.db.connect(primary, "app"))
    writer.start()
    try:
        writer.wait_for(ROWS_BEFORE)
        with setup.db.connect(primary, "app") as conn:
            target = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            writer.wait_for(len(writer.acknowledged) + ROWS_AFTER_TARGET)
            # The mistake: every row gone, with each row's commit time read as it goes.
            deleted = conn.execute("DELETE FROM drill_rows RETURNING id, pg_xact_commit_timestamp(xmin)").fetchall()
        writer.wait_for(len(writer.acknowledged) + ROWS_AFTER_TARGET)
    finally:
        writer.stop()
    setup.wait_archived(primary)
    before = {row_id for row_id, committed in deleted if committed <= target}
    run = setup.restore(target.isoformat())
    rto_s = run.wait_writable()
    restored = _restored_ids(setup, run.cluster)
    return PointInTimeResult(committed_before_target=len(before),
                               rows_before_target_missing=len(before - restored),
                               rows_after_target_present=len(restored - before), rto_s=rto_s)


# ----------------------------------------------------------------- 2. whole-cluster loss


@dataclass(frozen=True)
class WholeClusterLossResult:
    rpo_s: float  # committed writes lost: last acknowledged commit minus newest restored one
    rto_s: float  # restore start to a writable server
    db_bytes: int
    push_s: float  # one archive push (switch to archived), measured before the loss
    archive_timeout_s: int
    acknowledged: int

    def figures(self) -> list[Figure]:
        return _figures("whole_cluster_loss", {
            "rpo_s": (self.rpo_s, "s"),
            "rto_s": (self.rto_s, "s"),
            "db_bytes": (self.db_bytes, "bytes"),
        }, {"archive_timeout_s": self.archive_timeout_s, "push_s": round(self.push_s, 3)})


def grow_database(setup: LoopbackBackups, scale: int) -> None:
    """pgbench tables of `scale` (about 15 MB each) in the app database."""
    primary = setup.db.primary
    subprocess.run(as_postgres([find("pgbench"), "-i", "-q", "-s", str(scale), "-h", "127.0.0.1",
                                "-p", str(primary.port), "-U", "postgres", "app"]),
                   check=True, capture_output=True, timeout=1800,
                   env={**setup.env, "PGPASSWORD": setup.db.passwords.superuser})


def whole_cluster_loss(setup: LoopbackBackups, *, pgbench_scale: int = 0) -> WholeClusterLossResult:
    """Needs a setup with a replica slot; starts the replica itself."""
    if pgbench_scale:
        grow_database(setup, pgbench_scale)
    prepare(setup)
    db = setup.db
    replica = db.start_replica(0)
    push_s = setup.wait_archived(db.primary)
    writer = RowWriter(lambda: db.connect(db.primary, "app"))
    writer.start()
    try:
        # Long enough that archive_timeout has switched segments under load.
        writer.wait_for(int(WRITE_RATE_PER_S * (setup.archive_timeout_s + 2)), deadline_s=setup.archive_timeout_s * 3)
        db.primary.kill()
        replica.kill()
    finally:
        writer.stop()
    last_acknowledged = max(writer.acknowledged.values())
    for cluster in (db.primary, replica):
        remove_tree(cluster.data_dir)
    run = setup.restore("latest")
    rto_s = run.wait_writable()
    with db.connect(run.cluster, "app") as conn:
        newest = conn.execute("SELECT max(written_at) FROM drill_rows").fetchone()[0]
        db_bytes = conn.execute("SELECT sum(pg_database_size(oid))::bigint FROM pg_database").fetchone()[0]
    return WholeClusterLossResult(rpo_s=max(0.0, (last_acknowledged - newest).total_seconds()), rto_s=rto_s,
                                  db_bytes=db_bytes, push_s=push_s, archive_timeout_s=setup.archive_timeout_s,
                                  acknowledged=len(writer.acknowledged))


# ----------------------------------------------------------------- 3. timeline switch


@dataclass(frozen=True)
class TimelineSwitchResult(PointInTimeResult):
    promoted_timeline: int = 0
    new_timeline_archived: bool = False  # the new primary pushed its timeline history and WAL
    backup_after_promotion: bool = False  # `ensure` took a full backup on the new timeline
    restored_timeline: int = 0

    drill: ClassVar[str] = "timeline_switch"

    def detail(self) -> dict:
        return {"promoted_timeline": self.promoted_timeline, "restored_timeline": self.restored_timeline}


def current_timeline(conn: psycopg.Connection) -> int:
    """The timeline a primary writes WAL on now (pg_control's lags until a checkpoint)."""
    return int(conn.execute("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").fetchone()[0], 16)


def timeline_switch(setup: LoopbackBackups) -> TimelineSwitchResult:
    """Manual failover (docs/runbooks.md: `pg_promote()` on the replica), then a
    point-in-time restore to a moment after the switch. Needs a setup with a replica slot."""
    prepare(setup)
    db = setup.db
    replica = db.start_replica(0)
    writer = RowWriter(lambda: db.connect(db.primary, "app"))
    writer.start()
    writer.wait_for(ROWS_BEFORE)
    writer.stop()
    setup.wait_archived(db.primary)
    db.primary.kill()
    with db.connect(replica) as conn:
        conn.execute("SELECT pg_promote(wait => true)")
        timeline = current_timeline(conn)
    replica_settings = setup.node_settings("replica-0", replica.data_dir, replica.port, db.root)
    return restore_past_the_switch(setup, replica, replica_settings, timeline)


def restore_past_the_switch(setup: LoopbackBackups, new_primary: PgCluster, settings: PgBackRestSettings,
                            timeline: int, result: type[TimelineSwitchResult] = TimelineSwitchResult
                            ) -> TimelineSwitchResult:
    """After a promotion onto `timeline`: the scheduled job's `ensure` on the new primary,
    steady writes on it, then a point-in-time restore to a moment among those writes."""
    db = setup.db
    backup_log = setup.run_backup_job("ensure", settings)
    writer = RowWriter(lambda: db.connect(new_primary, "app"))
    writer.next_id = 1_000_000  # ids after the switch, apart from those before it
    writer.start()
    try:
        writer.wait_for(ROWS_BEFORE)
        with db.connect(new_primary, "app") as conn:
            target = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            writer.wait_for(len(writer.acknowledged) + ROWS_AFTER_TARGET)
            before = {row[0] for row in conn.execute(
                "SELECT id FROM drill_rows WHERE pg_xact_commit_timestamp(xmin) <= %s", (target,))}
    finally:
        writer.stop()
    setup.wait_archived(new_primary)
    archive = setup.info(settings)["archive"][0]
    run = setup.restore(target.isoformat())
    rto_s = run.wait_writable()
    restored = _restored_ids(setup, run.cluster)
    with db.connect(run.cluster) as conn:
        restored_timeline = current_timeline(conn)
    return result(
        promoted_timeline=timeline, new_timeline_archived=int(archive["max"][:8], 16) >= timeline,
        backup_after_promotion="--type=full" in backup_log, committed_before_target=len(before),
        rows_before_target_missing=len(before - restored), rows_after_target_present=len(restored - before),
        restored_timeline=restored_timeline, rto_s=rto_s)


# ----------------------------------------------------------------- 5. encryption


@dataclass(frozen=True)
class EncryptionResult:
    files: int
    unencrypted_files: list[str]
    canary_found_in: list[str]
    readable_without_passphrase: list[str]  # the ways of reading the copy that worked
    restored_without_passphrase: bool

    def figures(self) -> list[Figure]:
        return _figures("encryption", {
            "repository_files": (self.files, "files"),
            "unencrypted_files": (len(self.unencrypted_files), "files"),
            "readable_without_passphrase": (len(self.readable_without_passphrase), "ways"),
        })


def encryption(setup: LoopbackBackups) -> EncryptionResult:
    """Back up a row holding a known string, copy the repository somewhere else, and try
    to read the copy as someone who has it but not the passphrase."""
    with setup.db.connect(setup.db.primary, "app") as conn:
        conn.execute("CREATE TABLE canary (note text)")
        conn.execute("INSERT INTO canary VALUES (%s)", (CANARY,))
    setup.run_backup_job("ensure")
    setup.wait_archived(setup.db.primary)

    copy = setup.root / "stolen-repo"
    shutil.copytree(setup.repository.path, copy)
    chown_tree(copy)
    files = [path for path in copy.rglob("*") if path.is_file()]
    unencrypted = [str(p.relative_to(copy)) for p in files if not p.read_bytes().startswith(ENCRYPTED_MAGIC)]
    canary = [str(p.relative_to(copy)) for p in files if CANARY.encode() in p.read_bytes()]

    readable = []
    without_passphrase = {k: v for k, v in setup.env.items() if not k.startswith("PGBACKREST_")}
    stolen = posix_repository(str(copy))
    for cipher in ("aes-256-cbc", "none"):
        info = setup.pgbackrest(_reader_settings(setup, stolen, cipher), "--output=json", "info", env=without_passphrase)
        if info.returncode == 0 and '"code":0' in info.stdout.replace(" ", ""):
            readable.append(f"info with cipher {cipher}")
    run = setup.restore("latest", "restored-without-passphrase", env=without_passphrase)
    code, _ = run.wait_failed()
    data_dir = run.cluster.data_dir
    restored = code == 0 or (data_dir.exists() and any(data_dir.iterdir()))
    return EncryptionResult(files=len(files), unencrypted_files=unencrypted, canary_found_in=canary,
                            readable_without_passphrase=readable, restored_without_passphrase=restored)


def _reader_settings(setup: LoopbackBackups, repository: RepositorySettings, cipher: str) -> PgBackRestSettings:
    """The config of someone who has the copy at `repository` but not the passphrase:
    the rendered one, with the cipher type they guess."""
    settings = replace(setup.node_settings(f"reader-{cipher}", setup.root / f"reader-{cipher}", 5432, setup.root),
                       repository=repository)
    setup.write_config(settings)
    conf = Path(settings.config_path)
    conf.write_text(conf.read_text().replace("repo1-cipher-type=aes-256-cbc", f"repo1-cipher-type={cipher}"))
    return settings


def chown_tree(path: Path) -> None:
    for entry in [path, *path.rglob("*")]:
        chown_to_postgres(entry)
