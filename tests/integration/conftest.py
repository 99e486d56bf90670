"""Fixtures for integration tests: real postgres clusters, fresh databases, temp dirs,
and app replicas as OS processes (loopback/app.py). Everything binds 127.0.0.1 and
everything started here is stopped and removed in teardown."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from loopback.app import AppProcess, app_cluster, database_url
from loopback.backups import REQUIRED_BINARIES as BACKUP_BINARIES
from loopback.binaries import MissingBinary, find, in_ci
from loopback.patroni import REQUIRED_BINARIES as PATRONI_BINARIES
from loopback.postgres import PgCluster, init_cluster, make_owned_dir, remove_tree
from loopback.stack import LoopbackStack, run_loopback_stack

# Durability is not under test; these make initdb'd clusters fast on a shared CI box.
FAST_POSTGRES_FLAGS = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                       "-c", "max_connections=200"]


def require_binaries(*names: str) -> None:
    """Skip when a binary is missing, except under CI, where that is a failure."""
    for name in names:
        try:
            find(name)
        except MissingBinary as missing:
            if in_ci():
                pytest.fail(str(missing))
            pytest.skip(str(missing))


@pytest.fixture
def haproxy_installed() -> None:
    require_binaries("haproxy", "openssl")


def require_network_namespaces() -> None:
    """Skip when this machine cannot make network namespaces, except under CI: fail."""
    from loopback.netns import netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason is not None:
        if in_ci():
            pytest.fail(f"the multi-machine drills need network namespaces: {reason}")
        pytest.skip(reason)


# openssl: the loopback database's CA and server certificate (loopback/certificates.py).
POSTGRES_BINARIES = ("initdb", "postgres", "psql", "pg_isready", "pg_basebackup", "pg_receivewal", "openssl")


@pytest.fixture
def postgres_installed() -> None:
    """What a primary + streaming replica from the rendered scripts runs."""
    require_binaries(*POSTGRES_BINARIES)


@pytest.fixture
def patroni_installed() -> None:
    require_binaries(*PATRONI_BINARIES)


@contextmanager
def running_postgres(prefix: str) -> Iterator[PgCluster]:
    require_binaries("initdb", "postgres", "pg_isready")
    root = make_owned_dir(prefix)
    try:
        cluster = init_cluster(root)
        cluster.start(FAST_POSTGRES_FLAGS)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        remove_tree(root)


@pytest.fixture(scope="session")
def pg_primary() -> Iterator[PgCluster]:
    """One postgres for the session; tests isolate themselves with `fresh_database`."""
    with running_postgres("hastack-pg-primary-") as cluster:
        yield cluster


@pytest.fixture
def pg_disposable() -> Iterator[PgCluster]:
    """A postgres of this test's own, for tests that stop or kill it."""
    with running_postgres("hastack-pg-disposable-") as cluster:
        yield cluster


@pytest.fixture
def fresh_database(pg_primary: PgCluster) -> Iterator[str]:
    """An empty database on `pg_primary`; yields its DATABASE_URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with pg_primary.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield database_url(pg_primary.port, name)
    with pg_primary.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hastack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shared_storage(workdir: Path) -> Path:
    """The directory every replica mounts as STORAGE_PATH."""
    path = workdir / "shared"
    path.mkdir()
    return path


@pytest.fixture
def start_apps(workdir: Path, shared_storage: Path) -> Iterator[Callable[..., list[AppProcess]]]:
    """`start_apps(n, database_url, **app_cluster_kwargs)` starts n replicas sharing
    `shared_storage`; every one started is reaped in teardown."""
    with ExitStack() as clusters:
        def start(replicas: int, database_url: str, **kwargs) -> list[AppProcess]:
            kwargs.setdefault("storage_path", shared_storage)
            return clusters.enter_context(app_cluster(replicas, database_url, log_dir=workdir, **kwargs))

        yield start


@pytest.fixture
def stack_binaries_installed() -> None:
    """Every binary the whole stack on loopback (loopback/stack.py) runs."""
    require_binaries("haproxy", *POSTGRES_BINARIES)


@pytest.fixture
def pgbench_installed() -> None:
    require_binaries("pgbench")


@pytest.fixture
def loopback_stack(stack_binaries_installed: None) -> Iterator[LoopbackStack]:
    """The whole stack on loopback, as `pulumi up -s dev` builds it in Docker: 3 app
    replicas behind HAProxy, a DB primary + streaming replica, a shared temp dir; all
    from the Docker components' renderers. Every process ends and every dir goes in
    teardown."""
    with run_loopback_stack() as stack:
        yield stack


@pytest.fixture(scope="session")
def pgbackrest_installed() -> None:
    """pgBackRest, and what its rendered scripts run (jq, psql, postgres)."""
    require_binaries(*POSTGRES_BINARIES, *BACKUP_BINARIES)
