"""A PostgreSQL primary and streaming replicas on 127.0.0.1, brought up by the rendered
server flags, pg_hba, init script and replica bootstrap script: the same text the
Docker database component uploads. Every TCP connection is TLS (loopback/certificates.py).

    with loopback_database(replicas=1) as db:
        replica = db.start_replica(0)        # runs the rendered bootstrap script
        db.connect(db.primary).execute(...)

Every process runs as the postgres OS user; everything lives under one temp dir that
is removed on exit.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from components.render.postgres import (
    APP_DB_PASSWORD_ENV,
    REPLICATION_PASSWORD_ENV,
    PrimarySettings,
    ReplicaSettings,
    primary_init_script,
    primary_server_flags,
    render_pg_hba,
    replica_bootstrap_script,
    replica_slot_name,
)

from .binaries import POSTGRES_BIN_DIR
from .certificates import LoopbackCertificates, issue_loopback_certificates
from .ports import free_port
from .postgres import SUPERUSER, PgCluster, as_postgres, chown_to_postgres, init_cluster, make_owned_dir, remove_tree

APP_DB = "app"
APP_USER = "app"
LOOPBACK_CIDR = "127.0.0.1/32"
# Small, so a test can see the bound without writing gigabytes.
MAX_SLOT_WAL_KEEP_SIZE_MB = 256


@dataclass(frozen=True)
class Passwords:
    superuser: str
    replication: str
    app: str

    @classmethod
    def generate(cls) -> Passwords:
        return cls(*(secrets.token_urlsafe(18) for _ in range(3)))


# What a node adds to the shared flags and environment once initdb is done, e.g. WAL
# archiving (loopback/backups.py): (node name, data dir, port, socket dir) -> (flags, env).
NodeExtras = Callable[[str, Path, int, Path], tuple[list[str], dict[str, str]]]


@dataclass
class LoopbackDatabase:
    """A running primary, and the replicas started so far, all sharing one pg_hba and one set of flags."""

    root: Path
    passwords: Passwords
    primary_settings: PrimarySettings
    server_flags: list[str]
    primary: PgCluster
    certificates: LoopbackCertificates
    replicas: dict[int, PgCluster] = field(default_factory=dict)
    node_extras: NodeExtras | None = None

    def extras(self, name: str, data_dir: Path, port: int, socket_dir: Path) -> tuple[list[str], dict[str, str]]:
        return self.node_extras(name, data_dir, port, socket_dir) if self.node_extras else ([], {})

    def node_addresses(self) -> list[tuple[str, int]]:
        """Every node as (host, port), primary first, as the Docker platform lists them in the apps' URLs."""
        return [("127.0.0.1", cluster.port) for cluster in [self.primary, *self.replicas.values()]]

    def server_pids(self) -> set[int]:
        """The postgres (or bootstrap script) pid of every node started so far."""
        return {cluster.process.pid for cluster in [self.primary, *self.replicas.values()]
                if cluster.process is not None}

    def connect(self, cluster: PgCluster, dbname: str = "postgres") -> psycopg.Connection:
        """Superuser connection over TCP, authenticated like any client on the private network."""
        return cluster.connect(dbname, password=self.passwords.superuser)

    def connect_app(self, cluster: PgCluster) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=cluster.port, user=APP_USER, dbname=APP_DB,
                               password=self.passwords.app, connect_timeout=2, autocommit=True)

    def replica_settings(self, index: int) -> ReplicaSettings:
        replica = self.replicas.get(index)
        data_dir = self.root / f"replica-{index}"
        port = replica.port if replica else free_port()
        extra_flags, _ = self.extras(f"replica-{index}", data_dir, port, self.root)
        return ReplicaSettings(
            primary_host="127.0.0.1",
            primary_port=self.primary.port,
            slot_name=replica_slot_name(index),
            data_dir=str(data_dir),
            port=port,
            bin_dir=str(POSTGRES_BIN_DIR),
            # The replica's socket goes in the shared root; its data dir must start empty.
            server_flags=(*self.server_flags, *extra_flags, "-c", f"unix_socket_directories={self.root}"),
            ca_file=str(self.certificates.ca_file),
        )

    def start_replica(self, index: int, deadline_s: float = 60.0) -> PgCluster:
        """Run the rendered bootstrap script for replica `index` until it accepts connections.

        Calling it again after `replicas[index].stop()` restarts the same replica on
        the same port and data dir. The script's output goes to `replicas[index].log_path`.
        """
        settings = self.replica_settings(index)
        script = self.root / f"replica-{index}-bootstrap.sh"
        script.write_text(replica_bootstrap_script(settings))
        replica = self.replicas.setdefault(index, PgCluster(data_dir=Path(settings.data_dir), port=settings.port))
        _, extra_env = self.extras(f"replica-{index}", replica.data_dir, replica.port, self.root)
        replica.launch(["sh", str(script)], deadline_s,
                       env={**os.environ, **extra_env, REPLICATION_PASSWORD_ENV: self.passwords.replication})
        return replica

    def stop(self) -> None:
        for cluster in [*self.replicas.values(), self.primary]:
            cluster.stop()


def run_image_initdb_steps(cluster: PgCluster, init_scripts: Sequence[str], passwords: Passwords, workdir: Path,
                           extra_env: dict[str, str] | None = None) -> None:
    """Do to a freshly initdb'd, running cluster what the official image's entrypoint does:
    set the superuser password (POSTGRES_PASSWORD), then run the init scripts in order as
    the postgres user with psql on PATH, talking to the server over its local socket."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "PATH": f"{POSTGRES_BIN_DIR}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PGHOST": str(cluster.data_dir),  # PgCluster puts the socket in the data dir
        "PGPORT": str(cluster.port),
        "POSTGRES_PASSWORD": passwords.superuser,
        REPLICATION_PASSWORD_ENV: passwords.replication,
        APP_DB_PASSWORD_ENV: passwords.app,
    }
    set_superuser_password = (
        "\\getenv password POSTGRES_PASSWORD\n"
        f"ALTER ROLE {SUPERUSER} WITH PASSWORD :'password';\n"
    )
    _run_as_postgres(["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "--username", SUPERUSER, "--dbname", "postgres"],
                    env, stdin=set_superuser_password)
    for number, init_script in enumerate(init_scripts):
        script = workdir / f"initdb.d-hastack-{number}.sh"
        script.write_text(init_script)
        _run_as_postgres(["bash", str(script)], env)


def _run_as_postgres(argv: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    result = subprocess.run(as_postgres(argv), env=env, input=stdin, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@contextmanager
def loopback_database(replicas: int = 1, *, node_extras: NodeExtras | None = None,
                      init_scripts: Sequence[str] = (), root: Path | None = None) -> Iterator[LoopbackDatabase]:
    """A primary started from the rendered flags, pg_hba and init script, with slots for
    `replicas` replicas (start them with `start_replica`). Everything stops on exit.

    `init_scripts` run after the hastack init script, as further initdb.d scripts; as in
    the image, initdb and the init scripts see a server without `node_extras`, which the
    primary (restarted) and every replica then run with. `root`: a postgres-owned dir
    to use (and remove on exit) instead of a fresh one.
    """
    root = root or make_owned_dir("hastack-pg-")
    database: LoopbackDatabase | None = None
    try:
        primary = init_cluster(root, "primary")
        certificates = issue_loopback_certificates(root)
        settings = PrimarySettings(
            replica_slots=tuple(replica_slot_name(index) for index in range(replicas)),
            max_slot_wal_keep_size_mb=MAX_SLOT_WAL_KEEP_SIZE_MB,
            replication_cidr=LOOPBACK_CIDR,
            app_db=APP_DB,
            app_user=APP_USER,
            port=primary.port,
            listen_addresses="127.0.0.1",
            tls=certificates.server_tls(),
        )
        hba_file = root / "pg_hba.conf"
        hba_file.write_text(render_pg_hba(settings))
        chown_to_postgres(hba_file)
        server_flags = [*primary_server_flags(settings), "-c", f"hba_file={hba_file}"]
        database = LoopbackDatabase(root=root, passwords=Passwords.generate(), primary_settings=settings,
                                    server_flags=server_flags, primary=primary, certificates=certificates,
                                    node_extras=node_extras)
        primary.start(server_flags)
        extra_flags, extra_env = database.extras("primary", primary.data_dir, primary.port, primary.data_dir)
        run_image_initdb_steps(primary, [primary_init_script(settings), *init_scripts], database.passwords, root,
                               extra_env)
        if node_extras is not None:
            # The image's entrypoint stops its temporary init server and execs the real one.
            primary.stop()
            primary.start([*server_flags, *extra_flags], env={**os.environ, **extra_env})
        yield database
    finally:
        if database is not None:
            database.stop()
        remove_tree(root)
