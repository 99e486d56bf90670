"""patroni.yml for one node of a Patroni + etcd cluster, and its post-bootstrap script.

Consumed by `patroni <file>` (3.x), with the etcd v3 API as the DCS. Server settings
and pg_hba come from the same renderers as the manual-failover setup, so both modes
run identically configured PostgreSQL.

Failover budget: the leader refreshes its etcd lease every `loop_wait_s`; when the
leader node dies, the lease expires after at most `ttl_s`, the sync standby (watching
the leader key) takes the lock and promotes at once. With the defaults (6 s / 1 s)
writes are accepted again within about 7 s. `synchronous_mode` means a commit is
acknowledged only once the sync standby has it, and only that standby may take over,
so no acknowledged commit is lost.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import yaml

from components.render.postgres import (
    APP_DB_PASSWORD_ENV,
    CLIENT_SSLMODE,
    REPLICATION_ROLE,
    SUPERUSER,
    PrimarySettings,
    app_database_sql,
    primary_server_parameters,
    render_pg_hba,
)

# Patroni reads these itself and merges them into postgresql.authentication.
SUPERUSER_PASSWORD_ENV = "PATRONI_SUPERUSER_PASSWORD"
REPLICATION_PASSWORD_ENV = "PATRONI_REPLICATION_PASSWORD"

# Patroni's DCS namespace (its default, written out because leader_key relies on it).
NAMESPACE = "/service/"

# Patroni derives these from postgresql.listen; setting them twice would conflict.
_SET_BY_PATRONI = {"listen_addresses", "port"}

# A replica more than this far behind may not become the leader (the same 1 MB the lag
# alert uses). In synchronous mode the sync standby is never behind on commits.
MAXIMUM_LAG_ON_FAILOVER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PatroniSettings:
    scope: str  # cluster name, the same on every node
    node_name: str  # unique per node, e.g. "db-0"
    etcd_hosts: tuple[str, ...]  # "etcd:2379"
    restapi_listen: str  # "0.0.0.0:8008"
    restapi_connect_address: str  # how the other nodes reach this node's API, "db-0:8008"
    postgres_listen: str  # "0.0.0.0:5432"
    postgres_connect_address: str  # how the other nodes reach this node's postgres, "db-0:5432"
    data_dir: str
    # Server parameters, pg_hba and the app database come from here.
    database: PrimarySettings
    bin_dir: str | None = None
    unix_socket_dir: str = "/var/run/postgresql"
    synchronous_mode: bool = True
    ttl_s: int = 6
    loop_wait_s: int = 1
    retry_timeout_s: int = 2
    # Patroni's DCS failsafe mode (3.0+): while etcd is unreachable, a leader that still
    # reaches every other member (POST /failsafe) keeps its role instead of demoting.
    failsafe_mode: bool = False
    # Where patroni_post_bootstrap_script's output is; None: no app database.
    post_bootstrap_path: str | None = None
    # WAL archiving (components/render/pgbackrest.py archive_parameters): in the DCS
    # parameters, so whichever member leads archives, and a new leader carries on.
    archive_parameters: dict[str, str] = field(default_factory=dict)
    # A `pgbackrest restore` command line that builds a replica from the repository;
    # None: replicas only by pg_basebackup.
    pgbackrest_replica_command: str | None = None
    # The restore script (components/render/pgbackrest.py restore_script) to bootstrap
    # the cluster from instead of initdb; None: initdb.
    restore_bootstrap_command: str | None = None

    def __post_init__(self) -> None:
        if not self.etcd_hosts:
            raise ValueError("patroni needs at least one etcd host")
        # Patroni's rule: a leader must be able to retry the DCS twice within one TTL,
        # or a short etcd hiccup demotes a healthy primary.
        if self.ttl_s < self.loop_wait_s + 2 * self.retry_timeout_s:
            raise ValueError(f"ttl_s ({self.ttl_s}) must be >= loop_wait_s + 2 * retry_timeout_s "
                             f"({self.loop_wait_s + 2 * self.retry_timeout_s})")


def container_member(*, name: str, restapi_port: int, postgres_port: int, **settings) -> PatroniSettings:
    """Settings of a member in a container: it listens on every address of the container,
    and the others reach it by `name`, its DNS name (a Docker alias, a Swarm service name).
    Both connect addresses are explicit: Patroni's default would be a container-local address."""
    return PatroniSettings(
        node_name=name,
        restapi_listen=f"0.0.0.0:{restapi_port}",
        restapi_connect_address=f"{name}:{restapi_port}",
        postgres_listen=f"0.0.0.0:{postgres_port}",
        postgres_connect_address=f"{name}:{postgres_port}",
        **settings,
    )


def leader_key(scope: str) -> str:
    """The etcd key that names cluster `scope`'s leader (Patroni's dcs `leader` path)."""
    return f"{NAMESPACE}{scope}/leader"


def render_patroni_yml(s: PatroniSettings) -> str:
    """patroni.yml for node `s.node_name`. Passwords are read by Patroni from
    $PATRONI_SUPERUSER_PASSWORD and $PATRONI_REPLICATION_PASSWORD, never from this file."""
    parameters = {name: value for name, value in primary_server_parameters(s.database).items()
                  if name not in _SET_BY_PATRONI} | s.archive_parameters
    bootstrap: dict = {
        "dcs": {
            "ttl": s.ttl_s,
            "loop_wait": s.loop_wait_s,
            "retry_timeout": s.retry_timeout_s,
            "maximum_lag_on_failover": MAXIMUM_LAG_ON_FAILOVER_BYTES,
            "synchronous_mode": s.synchronous_mode,
            # With the sync standby gone, keep accepting writes (asynchronously) rather
            # than block every commit: availability over a second copy.
            "synchronous_mode_strict": False,
            "failsafe_mode": s.failsafe_mode,
            "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": parameters},
        },
        "initdb": [{"encoding": "UTF8"}, "data-checksums"],
    }
    if s.post_bootstrap_path:
        bootstrap["post_bootstrap"] = s.post_bootstrap_path
    if s.restore_bootstrap_command:
        # https://patroni.readthedocs.io/en/latest/replica_bootstrap.html#bootstrap: the
        # script leaves pgBackRest's recovery settings (target, promote, timeline) in place,
        # and Patroni passes it no arguments (it knows its data dir).
        bootstrap["method"] = "pgbackrest"
        bootstrap["pgbackrest"] = {"command": s.restore_bootstrap_command, "keep_existing_recovery_conf": True,
                                   "no_params": True}
    verified_tls = {"sslmode": CLIENT_SSLMODE, "sslrootcert": s.database.tls.ca_file}
    postgresql: dict = {
        "listen": s.postgres_listen,
        "connect_address": s.postgres_connect_address,
        "data_dir": s.data_dir,
        # Patroni talks to its own postgres over the socket, which pg_hba admits by peer.
        "use_unix_socket": True,
        # A new replica's base backup starts at once instead of after a spread checkpoint.
        "basebackup": [{"checkpoint": "fast"}],
        "pg_hba": [line for line in render_pg_hba(s.database).splitlines() if line and not line.startswith("#")],
        # Patroni's connections to other members (a new replica's base backup, streaming,
        # pg_rewind) are TLS verified against the stack CA; over the local socket libpq
        # ignores these settings.
        "authentication": {
            "superuser": {"username": SUPERUSER, **verified_tls},
            "replication": {"username": REPLICATION_ROLE, **verified_tls},
        },
        "parameters": {"unix_socket_directories": s.unix_socket_dir},
    }
    if s.bin_dir:
        postgresql["bin_dir"] = s.bin_dir
    if s.pgbackrest_replica_command:
        # https://patroni.readthedocs.io/en/latest/replica_bootstrap.html#building-replicas:
        # from the repository first (spares the leader), pg_basebackup when that fails;
        # keep_data lets pgBackRest's --delta reuse what the data dir still holds.
        postgresql["create_replica_methods"] = ["pgbackrest", "basebackup"]
        postgresql["pgbackrest"] = {"command": s.pgbackrest_replica_command, "keep_data": True, "no_params": True}
    document = {
        "namespace": NAMESPACE,
        "scope": s.scope,
        "name": s.node_name,
        "restapi": {"listen": s.restapi_listen, "connect_address": s.restapi_connect_address},
        "etcd3": {"hosts": list(s.etcd_hosts)},
        "bootstrap": bootstrap,
        "postgresql": postgresql,
    }
    return "# Rendered by hastack.\n" + yaml.safe_dump(document, sort_keys=False)


def patroni_post_bootstrap_script(s: PrimarySettings, bin_dir: str | None = None, stanza_create: str | None = None) -> str:
    """bash run by Patroni once, on the node that initialised the cluster: creates the
    app role and database. Patroni passes a superuser connection URL as $1.

    `stanza_create` (components/render/pgbackrest.py): the pgBackRest stanza, created
    here so it exists before the first WAL segment is archived. Otherwise archive-push
    fails until the backup job creates it, and after three failures in a row postgres's
    archiver waits up to a minute before it tries again, longer than the first backup
    waits for its WAL (pgarch.c, NUM_ARCHIVE_RETRIES and PGARCH_AUTOWAKE_INTERVAL)."""
    psql = shlex.quote(f"{bin_dir}/psql" if bin_dir else "psql")
    return f"""#!/usr/bin/env bash
# Rendered by hastack: Patroni's post_bootstrap hook. The password comes from ${APP_DB_PASSWORD_ENV}.
set -eu
: "${{{APP_DB_PASSWORD_ENV}:?{APP_DB_PASSWORD_ENV} must be set}}"
{psql} -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$1" <<'SQL'
{app_database_sql(s)}SQL
{stanza_create or ""}
"""
