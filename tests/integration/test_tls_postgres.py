"""TLS on every database hop: Debian's real PostgreSQL 15 run from the rendered flags and
pg_hba (ssl=on, hostssl-only) with a CA and server certificate made by the real openssl;
and Patroni members from the rendered patroni.yml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from loopback.certificates import issue_loopback_certificates
from loopback.patroni import loopback_patroni
from loopback.postgres import make_owned_dir, remove_tree
from loopback.replication import APP_DB, APP_USER, LoopbackDatabase, loopback_database

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("postgres_installed")]


@pytest.fixture(scope="module")
def database() -> Iterator[LoopbackDatabase]:
    with loopback_database(replicas=1) as db:
        db.start_replica(0)
        yield db


def connect_app(db: LoopbackDatabase, **tls: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=db.primary.port, user=APP_USER, dbname=APP_DB,
                           password=db.passwords.app, connect_timeout=2, autocommit=True, **tls)


def test_a_connection_without_tls_is_refused(database):
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect_app(database, sslmode="disable")


def test_a_replication_connection_without_tls_is_refused(database):
    with pytest.raises(psycopg.OperationalError, match="replication connection .* no encryption"):
        psycopg.connect(host="127.0.0.1", port=database.primary.port, user="replicator", replication="true",
                        password=database.passwords.replication, sslmode="disable", connect_timeout=2)


def test_the_app_url_settings_verify_the_certificate_and_connect_over_tls(database):
    with connect_app(database, sslmode="verify-full", sslrootcert=str(database.certificates.ca_file)) as conn:
        ssl, version = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert ssl is True
    assert version in {"TLSv1.2", "TLSv1.3"}


def test_verify_full_refuses_a_certificate_from_another_ca(database):
    other = make_owned_dir("hastack-other-ca-")
    try:
        stranger = issue_loopback_certificates(Path(other))
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            connect_app(database, sslmode="verify-full", sslrootcert=str(stranger.ca_file))
    finally:
        remove_tree(other)


def test_the_replica_streams_over_tls_verified_against_the_stack_ca(database):
    with database.connect(database.primary) as conn:
        rows = conn.execute("SELECT r.application_name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
                            " WHERE r.state = 'streaming'").fetchall()
    assert rows == [("replica_0", True)]
    with database.connect(database.replicas[0]) as conn:
        conninfo = conninfo_to_dict(conn.execute("SHOW primary_conninfo").fetchone()[0])
    # pg_basebackup -R wrote the bootstrap's verified TLS settings into the streaming connection.
    assert (conninfo["sslmode"], conninfo["sslrootcert"]) == ("verify-full", str(database.certificates.ca_file))


@pytest.mark.usefixtures("patroni_installed")
def test_patroni_members_replicate_over_tls_and_connect_verify_full():
    with loopback_patroni(members=2) as cluster:
        leader = cluster.leader()

        def connect(user: str, password: str, **tls: str) -> psycopg.Connection:
            return psycopg.connect(host="127.0.0.1", port=leader.postgres_port, user=user, dbname="postgres",
                                   password=password, connect_timeout=2, autocommit=True, **tls)

        verified = {"sslmode": "verify-full", "sslrootcert": str(cluster.certificates.ca_file)}
        with connect("postgres", cluster.passwords.superuser, **verified) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
            # The standby's walreceiver came in through a hostssl line, with Patroni's verify-full settings.
            streaming = conn.execute("SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
                                     " WHERE r.state = 'streaming'").fetchall()
        with pytest.raises(psycopg.OperationalError, match="no encryption"):
            connect(APP_USER, cluster.passwords.app, sslmode="disable")
    assert streaming == [(True,)]
