"""Drill 4 of issue 10: a scheduled backup taken from the standby while the primary is
under steady writes, on a loopback database archiving into pgBackRest (loopback/backups.py).

Every node runs a real `pgbackrest server` (its TLS server, mutual certificate auth
against the loopback CA) and its rendered pgbackrest.conf lists itself as pg1 and the
other node as pg2, as the Docker platform renders them (components/render/pgbackrest.py).
The rendered job on the primary then runs `backup --backup-standby`: pgBackRest starts
and stops the backup on the primary and copies the replicated files from the standby.

Proof that the standby served the data: pgBackRest logs every file it copies as
`backup file [<host>:]<path>` (src/command/backup/backup.c, `fileLog`), and on loopback
the two nodes' data dirs differ, so the log says which node each file was read from.
Then a restore of that backup must bring back every row acknowledged before it.

    with loopback_backups(replicas=1, extra_flags=DRILL_FLAGS) as setup:
        result = backup_from_standby(setup)
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from components.render.pgbackrest import (
    STANDBY_BACKUP_MARKER,
    STANDBY_UNREACHABLE_MARKER,
    PeerNode,
    PeerTls,
    PgBackRestSettings,
    tls_server_command,
)

from .backup_drills import TABLE_SQL, RowWriter, _figures, _restored_ids
from .backups import LoopbackBackups
from .certificates import SERVER_DNS_NAME, issue_loopback_client_certificate
from .drills import Figure
from .ports import free_port, wait_for_port
from .postgres import PgCluster, as_postgres
from .processes import kill_tree

# The CN every node's client certificate carries, and every node's server admits.
CLIENT_COMMON_NAME = "pgbackrest-client"
# Short, so the drill's dead standby server costs seconds before the job falls back to
# the primary (twice this); the data it moves on loopback never waits that long.
BACKUP_IO_TIMEOUT_S = 5
# Rows committed before the backup starts, so the standby holds data worth copying.
ROWS_BEFORE_BACKUP = 200
# `backup file <path> (<size>, ...)`; a file read through a TLS server has `<host>:` first.
_BACKUP_FILE = re.compile(r"backup file (?:(?P<host>[^ :/]+):)?(?P<path>/\S+) \((?P<size>[^,)]+)")


@dataclass(frozen=True)
class PeerNodeOnLoopback:
    name: str
    cluster: PgCluster
    socket_dir: Path


@dataclass
class TlsServers:
    """Each node's settings with its peers, and its running `pgbackrest server`."""

    settings: dict[str, PgBackRestSettings]
    processes: dict[str, subprocess.Popen]

    def stop(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait(timeout=30)


@contextmanager
def serving_peers(setup: LoopbackBackups, nodes: list[PeerNodeOnLoopback]) -> Iterator[TlsServers]:
    """Rewrite every node's pgbackrest.conf to list the others as peers over TLS, and run
    each node's TLS server on its own port; the servers are killed on exit. The servers
    get no repository passphrase: a pg host only reads its data dir for the backup."""
    certificates = setup.db.certificates
    client = issue_loopback_client_certificate(certificates, CLIENT_COMMON_NAME)
    ports = {node.name: free_port() for node in nodes}
    settings = {}
    for node in nodes:
        tls = PeerTls(ca_file=str(certificates.ca_file), server_certificate_file=str(certificates.certificate_file),
                      server_key_file=str(certificates.key_file), client_certificate_file=str(client.certificate_file),
                      client_key_file=str(client.key_file), client_common_name=CLIENT_COMMON_NAME,
                      server_address="127.0.0.1", server_port=ports[node.name])
        peers = tuple(PeerNode(host=SERVER_DNS_NAME, pg_path=str(peer.cluster.data_dir), pg_port=peer.cluster.port,
                               pg_socket_path=str(peer.socket_dir), tls_port=ports[peer.name])
                      for peer in nodes if peer is not node)
        own = setup.node_settings(node.name, node.cluster.data_dir, node.cluster.port, node.socket_dir)
        settings[node.name] = setup.write_config(replace(own, peers=peers, tls=tls,
                                                         backup_io_timeout_s=BACKUP_IO_TIMEOUT_S))
    servers = TlsServers(settings=settings, processes={})
    try:
        for name, node_settings in settings.items():
            log = open(setup.root / f"{name}-tls-server.log", "ab")
            servers.processes[name] = subprocess.Popen(as_postgres(tls_server_command(node_settings)), stdout=log,
                                                       stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            wait_for_port(ports[name])
        yield servers
    finally:
        for name in servers.processes:
            servers.stop(name)


@dataclass(frozen=True)
class StandbyBackupResult:
    backup_s: float
    from_standby_marker: bool
    standby_files: int
    standby_bytes: int
    primary_files: int
    primary_bytes: int
    primary_relation_files: list[str]  # base/, global/ files read on the primary (pg_control is expected)
    rows_during_backup: int
    primary_commits_per_s: float  # the steady writer's rate while the backup ran
    baseline_commits_per_s: float  # and just before it, with no backup running
    rows_acknowledged: int
    rows_missing_after_restore: int
    fallback_marker: bool  # with the standby's TLS server down, the job backed up from the primary
    fallback_standby_files: int
    fallback_primary_files: int

    def figures(self) -> list[Figure]:
        return _figures("from_standby", {
            "backup_s": (self.backup_s, "s"),
            "primary_commits_per_s": (self.primary_commits_per_s, "commits/s"),
            "baseline_commits_per_s": (self.baseline_commits_per_s, "commits/s"),
            "standby_bytes": (self.standby_bytes, "bytes"),
            "primary_bytes": (self.primary_bytes, "bytes"),
            "rows_missing_after_restore": (self.rows_missing_after_restore, "rows"),
        }, {"standby_files": self.standby_files, "primary_files": self.primary_files})


@dataclass(frozen=True)
class CopiedFiles:
    standby: list[tuple[str, int]]
    primary: list[tuple[str, int]]


def copied_files(log: str, standby: PgCluster, primary: PgCluster) -> CopiedFiles:
    """The files the backup logged as copied, by the node whose data dir they were read from."""
    copied = CopiedFiles(standby=[], primary=[])
    for match in _BACKUP_FILE.finditer(log):
        path, size = match["path"], _bytes(match["size"])
        for cluster, files in ((standby, copied.standby), (primary, copied.primary)):
            if path.startswith(f"{cluster.data_dir}/"):
                files.append((path[len(str(cluster.data_dir)) + 1:], size))
    return copied


def _bytes(size: str) -> int:
    """pgBackRest's human size ('8KB', '1.2MB', '0B') in bytes."""
    number, unit = re.fullmatch(r"([\d.]+)([KMGT]?B)", size).groups()
    return int(float(number) * 1024 ** "BKMGT".index(unit[0]))


def _new_log(settings: PgBackRestSettings, since: int) -> str:
    """What the backup command appended to this node's pgBackRest log file after `since`."""
    log = Path(settings.log_path) / f"{settings.stanza}-backup.log"
    return log.read_text(errors="replace")[since:]


def _log_size(settings: PgBackRestSettings) -> int:
    log = Path(settings.log_path) / f"{settings.stanza}-backup.log"
    return len(log.read_text(errors="replace")) if log.exists() else 0


def backup_from_standby(setup: LoopbackBackups) -> StandbyBackupResult:
    """Needs a setup with a replica slot; starts the replica itself."""
    db = setup.db
    with db.connect(db.primary, "app") as conn:
        conn.execute(TABLE_SQL)
    replica = db.start_replica(0)
    nodes = [PeerNodeOnLoopback("primary", db.primary, db.primary.data_dir),
             PeerNodeOnLoopback("replica-0", replica, db.root)]
    with serving_peers(setup, nodes) as servers:
        primary_settings = servers.settings["primary"]
        writer = RowWriter(lambda: db.connect(db.primary, "app"))
        writer.start()
        try:
            writer.wait_for(ROWS_BEFORE_BACKUP)
            # The writer's rate with no backup running, against which the rate during it is read.
            baseline_started, baseline_rows = time.monotonic(), len(writer.acknowledged)
            writer.wait_for(baseline_rows + ROWS_BEFORE_BACKUP)
            baseline_commits_per_s = (len(writer.acknowledged) - baseline_rows) / (time.monotonic() - baseline_started)
            log_start = _log_size(primary_settings)
            rows_at_start, started = len(writer.acknowledged), time.monotonic()
            job_log = setup.run_backup_job("full", primary_settings)
            backup_s = time.monotonic() - started
            rows_during = len(writer.acknowledged) - rows_at_start
            copied = copied_files(_new_log(primary_settings, log_start), replica, db.primary)

            # The standby's TLS server is gone: 2.45 cannot back up from the standby, so
            # the job must back up from the primary instead of failing.
            servers.stop("replica-0")
            log_start = _log_size(primary_settings)
            fallback_log = setup.run_backup_job("diff", primary_settings)
            fallback = copied_files(_new_log(primary_settings, log_start), replica, db.primary)
            writer.wait_for(len(writer.acknowledged) + ROWS_BEFORE_BACKUP // 4)
        finally:
            writer.stop()
        setup.wait_archived(db.primary)
    run = setup.restore("latest")
    run.wait_writable()
    missing = set(writer.acknowledged) - _restored_ids(setup, run.cluster)
    relation_files = [name for name, _ in copied.primary
                      if name.startswith(("base/", "global/")) and name != "global/pg_control"]
    return StandbyBackupResult(
        backup_s=backup_s, from_standby_marker=STANDBY_BACKUP_MARKER in job_log,
        standby_files=len(copied.standby), standby_bytes=sum(size for _, size in copied.standby),
        primary_files=len(copied.primary), primary_bytes=sum(size for _, size in copied.primary),
        primary_relation_files=relation_files, rows_during_backup=rows_during,
        primary_commits_per_s=rows_during / backup_s, baseline_commits_per_s=baseline_commits_per_s,
        rows_acknowledged=len(writer.acknowledged),
        rows_missing_after_restore=len(missing), fallback_marker=STANDBY_UNREACHABLE_MARKER in fallback_log,
        fallback_standby_files=len(fallback.standby), fallback_primary_files=len(fallback.primary))
