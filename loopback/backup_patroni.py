"""Drill 3 of issue 10 with Patroni: archiving goes on after the leader is killed, and a
point-in-time restore to a moment after the switch works.

A Patroni cluster on loopback (loopback/patroni.py) whose rendered patroni.yml carries the
rendered archive settings in its DCS parameters and pgBackRest first in
create_replica_methods, and the stanza created by the post_bootstrap hook, as
components/docker/patroni.py renders them. The scheduled job's `ensure` takes the first
full backup on the leader. Then the leader is SIGKILLed, Patroni promotes the other
member, and the rest is the manual drill's (backup_drills.restore_past_the_switch): `ensure`
on the new leader takes a full backup on the new timeline, and a restore reaches a moment
among the new leader's writes.

    with loopback_patroni_backups() as (setup, cluster):
        result = patroni_timeline_switch(setup, cluster)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import psycopg

from components.render.pgbackrest import (
    CIPHER_PASS_ENV,
    PgBackRestSettings,
    archive_parameters,
    replica_restore_command,
)
from components.render.postgres import primary_server_flags, render_pg_hba

from .backup_drills import DRILL_FLAGS, ROWS_BEFORE, TABLE_SQL, RowWriter, TimelineSwitchResult, current_timeline, \
    restore_past_the_switch
from .backups import ARCHIVE_TIMEOUT_S, LoopbackBackups, passphrase, posix_repository
from .patroni import FAILOVER_WAIT_S, PatroniCluster, PatroniNode, loopback_patroni
from .ports import wait_until
from .postgres import PgCluster, chown_to_postgres, make_owned_dir, remove_tree


@dataclass(frozen=True)
class PatroniTimelineSwitchResult(TimelineSwitchResult):
    # pg_stat_archiver.failed_count on the first leader: 0 when the stanza existed before
    # its first segment was archived.
    archive_failures_before_switch: int = -1

    drill: ClassVar[str] = "patroni_timeline_switch"


@dataclass
class PatroniArchive:
    """The Patroni cluster as the backup helpers see it (backups.ArchivingDatabase)."""

    cluster: PatroniCluster | None
    # A restored copy runs with the members' server settings (Patroni passes some of them
    # on its postgres command line, so the copied postgresql.conf lacks them).
    server_flags: list[str]

    def connect(self, cluster: PgCluster, dbname: str = "postgres") -> psycopg.Connection:
        return cluster.connect(dbname, password=self.cluster.passwords.superuser)


def member_paths_env(settings: PgBackRestSettings) -> dict[str, str]:
    """This member's own paths for the archive_command every member runs.

    The DCS parameters are the cluster's, so every member runs the first member's
    archive_command, naming its config file. In a container every member has the same
    paths, so that is right; on loopback each member's data dir, port and spool differ,
    and pgBackRest lets the environment override the config file
    (https://pgbackrest.org/configuration.html#introduction), which Patroni's postgres inherits.
    """
    return {"PGBACKREST_PG1_PATH": settings.pg_path, "PGBACKREST_PG1_PORT": str(settings.pg_port),
            "PGBACKREST_PG1_SOCKET_PATH": settings.pg_socket_path, "PGBACKREST_SPOOL_PATH": settings.spool_path,
            "PGBACKREST_LOCK_PATH": settings.lock_path, "PGBACKREST_LOG_PATH": settings.log_path}


def member_cluster(node: PatroniNode) -> PgCluster:
    """A Patroni member's postgres, to connect to (Patroni owns its process)."""
    return PgCluster(data_dir=Path(node.settings.data_dir), port=node.postgres_port)


@contextmanager
def loopback_patroni_backups() -> Iterator[tuple[LoopbackBackups, PatroniCluster]]:
    """Two Patroni members archiving into a fresh, encrypted repository."""
    root = make_owned_dir("hastack-patroni-backups-")
    repo_dir = root / "repo"
    repo_dir.mkdir()
    chown_to_postgres(repo_dir)
    setup = LoopbackBackups(root=root, repository=posix_repository(str(repo_dir)), cipher_pass=passphrase(),
                            archive_timeout_s=ARCHIVE_TIMEOUT_S)
    commit_timestamps_name, commit_timestamps = DRILL_FLAGS[1].split("=")

    def extras(name: str, data_dir: Path, port: int, socket_dir: Path) -> tuple[dict, dict[str, str]]:
        settings = setup.write_config(setup.node_settings(name, data_dir, port, socket_dir))
        parameters = {**archive_parameters(settings), commit_timestamps_name: commit_timestamps}
        return ({"archive_parameters": parameters, "pgbackrest_replica_command": replica_restore_command(settings)},
                {CIPHER_PASS_ENV: setup.cipher_pass, **member_paths_env(settings)})

    # Names the first member's config file, which `extras` writes before Patroni starts; the
    # bootstrapping member's own paths come from its environment (member_paths_env).
    stanza_create = setup.node_settings("db-0", root / "db-0", 0, root).command("stanza-create")
    try:
        with loopback_patroni(2, member_extras=extras, stanza_create=stanza_create) as cluster:
            database = cluster.nodes[0].settings.database
            hba_file = root / "pg_hba.conf"
            hba_file.write_text(render_pg_hba(database))
            chown_to_postgres(hba_file)
            setup.db = PatroniArchive(cluster, [*primary_server_flags(database), "-c", f"hba_file={hba_file}",
                                                *DRILL_FLAGS])
            try:
                yield setup, cluster
            finally:
                setup.stop()
    finally:
        remove_tree(root)


def patroni_timeline_switch(setup: LoopbackBackups, cluster: PatroniCluster) -> PatroniTimelineSwitchResult:
    leader = cluster.leader()
    leader_settings = setup.node_settings(leader.name, Path(leader.settings.data_dir), leader.postgres_port,
                                          cluster.root)
    with cluster.writer() as conn:
        conn.execute(TABLE_SQL)
    setup.run_backup_job("ensure", leader_settings)
    writer = RowWriter(cluster.writer)
    writer.start()
    writer.wait_for(ROWS_BEFORE)
    writer.stop()
    setup.wait_archived(member_cluster(leader))
    with setup.db.connect(member_cluster(leader)) as conn:
        archive_failures = conn.execute("SELECT failed_count FROM pg_stat_archiver").fetchone()[0]
    leader.crash()
    wait_until(lambda: cluster.roles().get(leader.name) != "leader" and "leader" in cluster.roles().values(),
               FAILOVER_WAIT_S, "a new Patroni leader", interval_s=0.2)
    new_leader = cluster.leader()
    new_primary = member_cluster(new_leader)
    wait_until(lambda: not _in_recovery(setup, new_primary), FAILOVER_WAIT_S, "the new leader writable", 0.2)
    with setup.db.connect(new_primary) as conn:
        timeline = current_timeline(conn)
    settings = setup.node_settings(new_leader.name, new_primary.data_dir, new_primary.port, cluster.root)
    result = restore_past_the_switch(setup, new_primary, settings, timeline, PatroniTimelineSwitchResult)
    return replace(result, archive_failures_before_switch=archive_failures)


def _in_recovery(setup: LoopbackBackups, cluster: PgCluster) -> bool:
    with setup.db.connect(cluster) as conn:
        return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
