"""pgBackRest on 127.0.0.1: a repository in a temp dir, WAL archiving from every node of a
loopback database (loopback/replication.py), backups and restores, all from the rendered
pgbackrest.conf, archive settings and scripts (components/render/pgbackrest.py), the
same text the Docker components upload.

    with loopback_backups(replicas=1) as setup:
        setup.db.start_replica(0)
        setup.run_backup_job("ensure")                  # the scheduled job script
        restored = setup.restore("latest")              # the rendered restore script

Every pgbackrest command runs as the postgres OS user with this setup's own config,
lock, log and spool paths, under one temp dir removed on exit.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg

from components.render.backup_report import BackupReportSettings, backup_report_script
from components.render.pgbackrest import (
    CIPHER_PASS_ENV,
    BackupJobSettings,
    PgBackRestSettings,
    RepositorySettings,
    RestoreSettings,
    archive_parameters,
    backup_job_script,
    render_pgbackrest_conf,
    restore_script,
    server_flags,
    stanza_create_script,
)

from .binaries import find
from .ports import free_port, wait_until
from .postgres import PgCluster, as_postgres, chown_to_postgres, make_owned_dir, remove_tree
from .replication import LoopbackDatabase, loopback_database

STANZA = "app"
# Short, so a drill sees a quiet segment archived in seconds; the config floor.
ARCHIVE_TIMEOUT_S = 10
REQUIRED_BINARIES = ("pgbackrest", "postgres", "psql", "jq")
# Restores and backups of the small drill databases finish well within these.
BACKUP_TIMEOUT_S = 300
RESTORE_READY_S = 300


def passphrase() -> str:
    """A repository passphrase, as pulumi-random generates it for a stack."""
    return secrets.token_urlsafe(36)


class ArchivingDatabase(Protocol):
    """What the backup helpers use of the database that archives: superuser connections,
    and the flags a restored copy runs with (LoopbackDatabase, or a Patroni cluster's,
    loopback/backup_patroni.py)."""

    server_flags: list[str]

    def connect(self, cluster: PgCluster, dbname: str = "postgres") -> psycopg.Connection: ...


@dataclass
class LoopbackBackups:
    """A loopback database whose nodes archive into one pgBackRest repository."""

    root: Path
    repository: RepositorySettings
    cipher_pass: str
    db: LoopbackDatabase | ArchivingDatabase | None = None
    archive_timeout_s: int = ARCHIVE_TIMEOUT_S
    restored: list[PgCluster] = field(default_factory=list)
    # Object-store credentials (PGBACKREST_REPO1_AZURE_KEY, ...), as the containers get them.
    secret_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.secret_env, CIPHER_PASS_ENV: self.cipher_pass}

    def node_settings(self, name: str, data_dir: Path, port: int, socket_dir: Path) -> PgBackRestSettings:
        """pgBackRest settings of one node; each has its own config file, spool, lock and log dirs."""
        node_dir = self.root / "nodes" / name
        for sub in ("spool", "lock", "log"):
            (node_dir / sub).mkdir(parents=True, exist_ok=True)
            chown_to_postgres(node_dir / sub)
        chown_to_postgres(node_dir)
        return PgBackRestSettings(
            stanza=STANZA,
            pg_path=str(data_dir),
            pg_port=port,
            pg_socket_path=str(socket_dir),
            repository=self.repository,
            archive_timeout_s=self.archive_timeout_s,
            config_path=str(node_dir / "pgbackrest.conf"),
            spool_path=str(node_dir / "spool"),
            lock_path=str(node_dir / "lock"),
            log_path=str(node_dir / "log"),
            log_level_file="detail",
            binary=find("pgbackrest"),
        )

    def write_config(self, settings: PgBackRestSettings) -> PgBackRestSettings:
        Path(settings.config_path).write_text(render_pgbackrest_conf(settings))
        chown_to_postgres(Path(settings.config_path))
        return settings

    def node_extras(self, name: str, data_dir: Path, port: int, socket_dir: Path) -> tuple[list[str], dict[str, str]]:
        """Archive settings and the passphrase for one node (replication.NodeExtras)."""
        settings = self.write_config(self.node_settings(name, data_dir, port, socket_dir))
        return server_flags(archive_parameters(settings)), {**self.secret_env, CIPHER_PASS_ENV: self.cipher_pass}

    def primary_settings(self) -> PgBackRestSettings:
        primary = self.db.primary
        return self.node_settings("primary", primary.data_dir, primary.port, primary.data_dir)

    def pgbackrest(self, settings: PgBackRestSettings, *args: str, env: dict[str, str] | None = None,
                   timeout_s: float = BACKUP_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Run one pgbackrest command as postgres; the result, whatever its exit code."""
        argv = [settings.binary, f"--config={settings.config_path}", f"--stanza={settings.stanza}", *args]
        return subprocess.run(as_postgres(argv), env=env or self.env, capture_output=True, text=True, errors="replace",
                              timeout=timeout_s)

    def info(self, settings: PgBackRestSettings | None = None) -> dict:
        """`pgbackrest info --output=json` for the stanza: what monitoring reads."""
        result = self.pgbackrest(settings or self.primary_settings(), "--output=json", "info")
        if result.returncode != 0:
            raise RuntimeError(f"pgbackrest info failed: {result.stderr}")
        return json.loads(result.stdout)[0]

    def run_backup_job(self, kind: str, settings: PgBackRestSettings | None = None, *,
                       report_dir: Path | None = None) -> str:
        """Run the rendered scheduled-job script (`full`, `diff` or `ensure`) as the scheduler would;
        with `report_dir`, through the rendered backup report, as the Docker scheduler's crontab does."""
        settings = settings or self.primary_settings()
        script = Path(settings.config_path).parent / "hastack-backup"
        script.write_text(backup_job_script(BackupJobSettings(backup=settings, psql=find("psql"))))
        if report_dir is not None:
            script.chmod(0o755)
            job, script = script, script.with_name("hastack-scheduled-backup")
            script.write_text(backup_report_script(BackupReportSettings(backup=settings, job_path=str(job),
                                                                        directory=str(report_dir))))
        result = subprocess.run(as_postgres(["sh", str(script), kind]), env=self.env, capture_output=True,
                                text=True, timeout=BACKUP_TIMEOUT_S)
        if result.returncode != 0:
            raise RuntimeError(f"hastack-backup {kind} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result.stdout

    def wait_archived(self, cluster: PgCluster, deadline_s: float = 60.0) -> float:
        """Write a WAL record, switch segments on `cluster` and wait until the segment
        holding that record is in the repository; the seconds that took (one push)."""
        with self.db.connect(cluster) as conn:
            conn.execute("SELECT pg_logical_emit_message(false, 'hastack', 'archive me')")
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]

            def archived() -> bool:
                last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
                return last is not None and last[8:] >= segment[8:]

            return wait_until(archived, deadline_s, f"WAL segment {segment} archived", 0.1)

    def restore(self, target: str, name: str = "restored", *, archive_off: bool = True,
                env: dict[str, str] | None = None, data_dir: Path | None = None) -> RestoreRun:
        """Run the rendered restore script into a new data dir (or `data_dir`) and start the
        restored server on its own port. Drills restore with archive_mode=off, and the
        server runs without the archive flags, so the copy never pushes into the stanza."""
        data_dir = data_dir or self.root / name
        port = free_port()
        settings = self.write_config(self.node_settings(name, data_dir, port, data_dir))
        postgres_argv = (*self.db.server_flags, "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                         "-c", f"unix_socket_directories={data_dir}")
        script = Path(settings.config_path).parent / "hastack-restore"
        script.write_text(restore_script(RestoreSettings(backup=settings, target=target, archive_off=archive_off,
                                                         postgres_argv=postgres_argv, postgres_binary=find("postgres"))))
        cluster = PgCluster(data_dir=data_dir, port=port)
        cluster.log_path = self.root / f"{name}.log"
        started = time.monotonic()
        log = open(cluster.log_path, "ab")
        cluster.process = subprocess.Popen(as_postgres(["sh", str(script)]), stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, env=env or self.env)
        log.close()
        self.restored.append(cluster)
        return RestoreRun(cluster=cluster, started=started, settings=settings, backups=self)

    def stop(self) -> None:
        for cluster in self.restored:
            cluster.stop()


@dataclass
class RestoreRun:
    """A restore script that was started: wait for it to end in a writable server, or fail."""

    cluster: PgCluster
    started: float
    settings: PgBackRestSettings
    backups: LoopbackBackups

    def wait_writable(self, deadline_s: float = RESTORE_READY_S) -> float:
        """Seconds from the restore's start until the server accepts writes (RTO)."""
        self.cluster.wait_ready(deadline_s)

        def promoted() -> bool:
            with self.backups.db.connect(self.cluster) as conn:
                return not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]

        wait_until(promoted, deadline_s, "restored server promoted", 0.1)
        return time.monotonic() - self.started

    def wait_failed(self, deadline_s: float = 60.0) -> tuple[int, str]:
        """The exit code and log of a restore that must refuse."""
        code = self.cluster.process.wait(timeout=deadline_s)
        return code, self.cluster.log_path.read_text(errors="replace")


def posix_repository(path: str) -> RepositorySettings:
    return RepositorySettings(type="posix", path=path, retention_full=2, retention_diff=3)


@contextmanager
def loopback_backups(replicas: int = 0, *, repository: RepositorySettings | None = None,
                     secret_env: dict[str, str] | None = None, extra_flags: tuple[str, ...] = (),
                     archive_timeout_s: int = ARCHIVE_TIMEOUT_S) -> Iterator[LoopbackBackups]:
    """A loopback database (primary, and slots for `replicas`) archiving into a fresh,
    encrypted repository (a temp dir, or `repository` with its `secret_env` credentials);
    the stanza is created by the rendered initdb.d script, as in the image. `extra_flags`
    go to every node (e.g. track_commit_timestamp for a drill)."""
    root = make_owned_dir("hastack-backups-")
    repo_dir = root / "repo"
    repo_dir.mkdir()
    chown_to_postgres(repo_dir)
    setup = LoopbackBackups(root=root, repository=repository or posix_repository(str(repo_dir)),
                            cipher_pass=passphrase(), archive_timeout_s=archive_timeout_s,
                            secret_env=dict(secret_env or {}))

    def extras(name: str, data_dir: Path, port: int, socket_dir: Path) -> tuple[list[str], dict[str, str]]:
        flags, env = setup.node_extras(name, data_dir, port, socket_dir)
        return [*flags, *extra_flags], env

    db_root = make_owned_dir("hastack-backups-db-")
    primary_dir = db_root / "primary"  # where loopback_database initdb's the primary
    # The stanza-create script only names the primary's config file, which node_extras
    # writes (with the primary's port) before the init scripts run.
    stanza_create = stanza_create_script(setup.node_settings("primary", primary_dir, 0, primary_dir))
    try:
        with loopback_database(replicas, node_extras=extras, root=db_root, init_scripts=[stanza_create]) as db:
            setup.db = db
            try:
                yield setup
            finally:
                setup.stop()
    finally:
        remove_tree(root)
