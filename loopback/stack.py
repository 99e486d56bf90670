"""The whole "stack on loopback": what `pulumi up -s dev` builds in Docker, as processes
on 127.0.0.1, every piece configured by the same renderers the Docker components use.

- PostgreSQL primary + streaming replicas (loopback/replication.py: rendered flags,
  pg_hba, init script and replica bootstrap script), with `backups=True` archiving every
  node's WAL into a pgBackRest repository (loopback/backups.py), or with `database="patroni"` a
  Patroni cluster over three etcd members (loopback/patroni.py: rendered patroni.yml
  and etcd flags, synchronous mode), as `failover: patroni` builds it;
- N reference-app processes (loopback/app.py) whose DATABASE_URL / DATABASE_READ_URL
  list every DB node, as the Docker platform builds them (libpq multi-host with
  target_session_attrs=read-write / prefer-standby), and one shared temp dir as the
  uploads mount;
- HAProxy (loopback/haproxy.py) from the rendered haproxy.cfg in front of the apps, with
  `tls=True` terminating HTTPS as `loadBalancer.tls` does (stack.url is then https://).

Every database connection is TLS, the apps' verified against the stack CA
(loopback/certificates.py), as on Docker.

    with run_loopback_stack(app_replicas=3) as stack:
        httpx.get(stack.url + "/")
        stack.apps[1].kill()
        stack.haproxy.wait_for_server("app-1", DOWN, deadline_s=5)
        stack.restart_app(1)

On exit every process the stack started has ended and its temp dirs are gone.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import psycopg

from components.render.haproxy import APP_BACKEND, READ_BACKEND
from components.render.postgres import REPLICATION_PASSWORD_ENV, replica_bootstrap_script

from .app import AppProcess, app_cluster, database_url, start_app
from .backups import LoopbackBackups, loopback_backups
from .binaries import find
from .certificates import LoopbackCertificates
from .haproxy import UP, LoopbackHaproxy, loopback_settings
from .patroni import PatroniCluster, loopback_patroni
from .postgres import SUPERUSER, PgCluster, as_postgres, remove_tree
from .processes import process_tree
from .replication import APP_DB, APP_USER, LoopbackDatabase, Passwords, loopback_database

# The app's readiness paths: the LB's health checks, as in the shipped dev stack
# (writes: a primary + storage; reads: any DB node + storage).
HEALTH_PATH = "/readyz"
READ_HEALTH_PATH = "/readyz/read"

# How long a SIGTERMed app keeps serving while /readyz says 503, before it stops
# accepting connections. It must outlast the LB's ejection of an unready server,
# interval + (fall - 1) * fastinter = 750 ms with the default health check, so no
# request is ever sent to a closed socket. Half the app's 3 s default: quicker drills,
# and a tighter margin than production has, so a pass here is the harder case.
SHUTDOWN_DRAIN_S = 1.5

# The slot the old primary streams through once rebuilt as a replica after a failover.
REBUILT_PRIMARY_SLOT = "rebuilt_primary"

# The self-hosted database modes: `failover: manual` (streaming replication, promoted by
# the runbook) or `failover: patroni`.
DatabaseKind = Literal["streaming", "patroni"]


class StackDatabase(Protocol):
    """What the stack needs of either database harness (LoopbackDatabase, PatroniCluster)."""

    passwords: Passwords
    # The CA and server certificate every node serves (HAProxy's too, with tls=True).
    certificates: LoopbackCertificates

    def node_addresses(self) -> list[tuple[str, int]]:
        """Every node as (host, port), in the order the apps' URLs list them."""

    def server_pids(self) -> set[int]:
        """The pids of its server processes, for LoopbackStack.pids()."""


@dataclass
class LoopbackStack:
    """A running stack. `restart_app(i)` replaces `apps[i]` in place, in the very list
    app_cluster stops on exit; a replaced process has always exited already.

    `db` is a LoopbackDatabase or a PatroniCluster (`database` of run_loopback_stack);
    `primary`, `replica` and the promote/rebuild steps are for the streaming one."""

    root: Path
    storage: Path
    db: LoopbackDatabase | PatroniCluster
    apps: list[AppProcess]
    haproxy: LoopbackHaproxy
    writer_url: str
    reader_url: str
    app_env: dict[str, str]
    # The pgBackRest repository every node archives into (`backups=True`).
    backups: LoopbackBackups | None = None

    @property
    def url(self) -> str:
        """The load balancer: what clients of the Docker stack reach on its published port."""
        return self.haproxy.url

    @property
    def ca_file(self) -> Path:
        """What a client verifies the LB's (with tls=True) and the database's certificate with."""
        return self.db.certificates.ca_file

    @property
    def primary(self) -> PgCluster:
        return self.db.primary

    @property
    def replica(self) -> PgCluster:
        """The first DB replica."""
        return self.db.replicas[0]

    def restart_app(self, index: int, deadline_s: float = 30.0) -> AppProcess:
        """Start app `index` again, on the port the LB knows it by, once the old process
        has exited; returns when it is ready (the LB still has to see it UP)."""
        old = self.apps[index]
        if old.running:
            raise RuntimeError(f"{old.node_id} is still running; kill or terminate it first")
        new = start_app(old.node_id, database_url=self.writer_url, read_url=self.reader_url,
                        storage_path=self.storage, log_dir=self.root, extra_env=self.app_env, port=old.port)
        self.apps[index] = new
        new.wait_ready(deadline_s)
        return new

    def connect_app_writer(self) -> psycopg.Connection:
        """A connection as the app makes one: its DATABASE_URL, whichever node leads now."""
        return psycopg.connect(self.writer_url, password=self.db.passwords.app, connect_timeout=2, autocommit=True)

    def wait_all_up(self, deadline_s: float = 30.0) -> None:
        """Every app UP in both backends (writes and reads)."""
        for backend in (APP_BACKEND, READ_BACKEND):
            for app in self.apps:
                self.haproxy.wait_for_server(app.node_id, UP, deadline_s, backend=backend)

    def promote_command(self, replica_index: int = 0) -> list[str]:
        """The runbook's manual failover, loopback form: `SELECT pg_promote()` through
        psql as the postgres OS user on the replica's local socket (the pg_hba `local
        ... peer` line), as `docker exec -u postgres <replica> psql -c ...` does in a
        container. See docs/runbooks.md."""
        replica = self.db.replicas[replica_index]
        return as_postgres([find("psql"), "-h", str(self.db.root), "-p", str(replica.port), "-U", SUPERUSER,
                            "-d", "postgres", "-X", "-tA", "-c", "SELECT pg_promote()"])

    def promote(self, replica_index: int = 0) -> None:
        """Run `promote_command`; pg_promote() waits (60 s by default) until the
        replica accepts writes and returns true, else false."""
        result = subprocess.run(self.promote_command(replica_index), capture_output=True, text=True, timeout=90)
        if result.returncode != 0 or result.stdout.strip() != "t":
            raise RuntimeError(f"promotion failed ({result.returncode}): {result.stdout}{result.stderr}")

    def rebuild_old_primary_as_replica(self, slot: str = REBUILT_PRIMARY_SLOT, deadline_s: float = 60.0) -> int:
        """The runbook's step after a failover to replica 0: empty the dead old primary's
        data dir and run the rendered replica bootstrap script into it, streaming from
        the new primary through a slot of its own, on the old port (still first in the
        apps' URLs, where libpq now skips it for writes). Returns the byte offset in
        its log where this run's output starts."""
        old, new = self.db.primary, self.replica
        if old.process is not None and old.process.poll() is None:
            raise RuntimeError("the old primary is still running; a rebuild would destroy a live primary")
        for child in old.data_dir.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        settings = dataclasses.replace(self.db.replica_settings(0), primary_port=new.port, slot_name=slot,
                                       data_dir=str(old.data_dir), port=old.port)
        script = self.db.root / "rebuilt-primary-bootstrap.sh"
        script.write_text(replica_bootstrap_script(settings))
        log_offset = old.log_path.stat().st_size if old.log_path and old.log_path.exists() else 0
        old.launch(["sh", str(script)], deadline_s,
                   env={**os.environ, REPLICATION_PASSWORD_ENV: self.db.passwords.replication})
        return log_offset

    def pids(self) -> set[int]:
        """Every live process the stack started, with all their descendants (postgres
        backends, haproxy workers)."""
        roots = {app.process.pid for app in self.apps} | self.db.server_pids()
        if self.haproxy.process is not None:
            roots.add(self.haproxy.process.pid)
        return process_tree(roots)


def _node_urls(db: StackDatabase) -> tuple[str, str]:
    """DATABASE_URL and DATABASE_READ_URL as the Docker platform builds them: every node,
    libpq choosing by role, so the app follows a promotion unchanged."""
    nodes, ca_file = db.node_addresses(), db.certificates.ca_file
    return (database_url(nodes, APP_DB, user=APP_USER, target_session_attrs="read-write", ca_file=ca_file),
            database_url(nodes, APP_DB, user=APP_USER, target_session_attrs="prefer-standby", ca_file=ca_file))


@contextmanager
def _streaming_database(replicas: int) -> Iterator[LoopbackDatabase]:
    with loopback_database(replicas=replicas) as db:
        yield _with_replicas(db, replicas)


@contextmanager
def _backed_up_database(replicas: int) -> Iterator[LoopbackBackups]:
    with loopback_backups(replicas) as backups:
        _with_replicas(backups.db, replicas)
        yield backups


def _with_replicas(db: LoopbackDatabase, replicas: int) -> LoopbackDatabase:
    for index in range(replicas):
        db.start_replica(index)
    return db


def _running_database(kind: DatabaseKind, replicas: int) -> AbstractContextManager[StackDatabase]:
    """The database of the stack: a primary and `replicas` streaming replicas, or
    1 + `replicas` Patroni members (one leader, the rest standbys)."""
    if kind == "patroni":
        return loopback_patroni(members=1 + replicas)
    return _streaming_database(replicas)


@contextmanager
def run_loopback_stack(app_replicas: int = 3, db_replicas: int = 1, *,
                   database: DatabaseKind = "streaming",
                   app_env: Mapping[str, str] | None = None,
                   tls: bool = False, backups: bool = False) -> Iterator[LoopbackStack]:
    """Start the stack, wait until the LB sees every app UP, yield it; stop it all on exit.
    HAProxy's health checks have the stack config's defaults, as in the shipped stacks.

    `database` picks the self-hosted DB mode; `app_env` adds to or overrides the app's
    environment (loopback/app.py LOOPBACK_ENV); `tls` makes HAProxy terminate HTTPS with
    the stack's server certificate; `backups` makes the streaming database archive into a
    pgBackRest repository (stack.backups).
    """
    if backups and database != "streaming":
        raise ValueError("backups=True runs with the streaming database only")
    root = Path(tempfile.mkdtemp(prefix="hastack-stack-"))
    try:
        with ExitStack() as running:
            repository = running.enter_context(_backed_up_database(db_replicas)) if backups else None
            db = repository.db if repository else running.enter_context(_running_database(database, db_replicas))
            writer_url, reader_url = _node_urls(db)
            storage = root / "shared"
            storage.mkdir()
            env = {
                "SHUTDOWN_DRAIN_S": str(SHUTDOWN_DRAIN_S),
                # The Docker stack puts the password in the URL; libpq reads it from here too.
                "PGPASSWORD": db.passwords.app,
                **(app_env or {}),
            }
            apps = running.enter_context(app_cluster(app_replicas, writer_url, storage, root,
                                                     read_url=reader_url, extra_env=env))
            tls_bundle = db.certificates.bundle_file if tls else None
            haproxy = LoopbackHaproxy(loopback_settings({app.node_id: app.port for app in apps}, HEALTH_PATH,
                                                        tls_bundle=tls_bundle, read_health_path=READ_HEALTH_PATH),
                                      root)
            stack = LoopbackStack(root=root, storage=storage, db=db, apps=apps, haproxy=haproxy,
                                  writer_url=writer_url, reader_url=reader_url, app_env=env, backups=repository)
            running.enter_context(haproxy)
            stack.wait_all_up()
            yield stack
    finally:
        remove_tree(root)
