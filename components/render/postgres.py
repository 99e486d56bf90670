"""PostgreSQL primary + streaming replicas: server flags, pg_hba.conf and the two scripts.

Valid for PostgreSQL 15 (Debian's, which the integration tests run) through 18 (the
newest pinned image). Passwords never appear in any rendered text: the scripts read
them from environment variables the container is given as secrets.

- `primary_server_parameters` / `primary_server_flags`: settings of every node, as a
  dict or as argv appended to `postgres`
- `render_pg_hba`: pg_hba.conf (TLS-only `hostssl` lines), used through `-c hba_file=...`
- `primary_init_script`: bash, run once at initdb time by the image's entrypoint
- `replica_bootstrap_script`: sh, the replica container's command
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field

from .postgres_exporter import monitor_role_sql

REPLICATION_ROLE = "replicator"
SUPERUSER = "postgres"

# Env var names the scripts read passwords from.
REPLICATION_PASSWORD_ENV = "REPLICATION_PASSWORD"
APP_DB_PASSWORD_ENV = "APP_DB_PASSWORD"
MONITOR_DB_PASSWORD_ENV = "MONITOR_DB_PASSWORD"

# Lines the replica bootstrap script prints, so logs (and tests) show which path it took.
BOOTSTRAP_MARKER = "hastack-replica: taking a base backup"
EXISTING_CLUSTER_MARKER = "hastack-replica: data dir already holds a cluster, starting it"
HALF_FINISHED_MARKER = "hastack-replica: clearing a half-finished base backup"

# WAL senders and slots beyond one per replica: a pg_basebackup with `-X stream` takes
# two senders, a reconnecting replica may briefly hold a second one while the old one
# times out, and a replica added later creates its own slot.
SPARE_WAL_SENDERS = 6
SPARE_REPLICATION_SLOTS = 6

# WAL kept regardless of slots, so a replica that reconnects without its slot (or a
# rebuild with pg_basebackup) still finds recent segments. Small on purpose: slots are
# the mechanism, bounded by max_slot_wal_keep_size.
WAL_KEEP_SIZE_MB = 256

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")


def replica_slot_name(index: int) -> str:
    """The physical replication slot replica `index` streams from: one per replica."""
    if index < 0:
        raise ValueError(f"replica index must be >= 0, got {index}")
    return f"replica_{index}"


def _check_identifier(value: str, what: str) -> None:
    # Identifiers are interpolated into SQL and shell text, so only plain ones are allowed.
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{what} must match [a-z_][a-z0-9_]{{0,62}}, got {value!r}")


# libpq settings of every client connection a node makes to another node (pg_basebackup,
# streaming, Patroni's replication and rewind): encrypted, and the certificate must be
# the stack CA's and name the host connected to
# (https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION).
CLIENT_SSLMODE = "verify-full"
TLS_MIN_VERSION = "TLSv1.2"


@dataclass(frozen=True)
class ServerTls:
    """A node's TLS files; every node serves the same certificate, whose SANs name them all."""

    certificate_file: str
    # PostgreSQL refuses to start unless this is mode 0600 owned by its user, or 0640
    # owned by root (https://www.postgresql.org/docs/15/ssl-tcp.html#SSL-SETUP).
    key_file: str
    # The CA that signed it: what a node verifies another node's certificate with.
    ca_file: str


@dataclass(frozen=True)
class PrimarySettings:
    replica_slots: tuple[str, ...]
    # The most WAL one lagging slot may pin; a dead replica cannot fill the primary's disk.
    max_slot_wal_keep_size_mb: int
    # Who may connect at all: the Docker private subnet, or "127.0.0.1/32" on loopback.
    replication_cidr: str
    app_db: str
    app_user: str
    port: int = 5432
    listen_addresses: str = "*"
    tls: ServerTls = field(kw_only=True)
    # Create postgres_exporter's pg_monitor role (password from $MONITOR_DB_PASSWORD).
    monitoring_role: bool = False

    def __post_init__(self) -> None:
        for slot in self.replica_slots:
            _check_identifier(slot, "slot name")
        if len(set(self.replica_slots)) != len(self.replica_slots):
            raise ValueError(f"slot names must be unique, got {self.replica_slots}")
        _check_identifier(self.app_db, "app_db")
        _check_identifier(self.app_user, "app_user")
        if self.max_slot_wal_keep_size_mb <= 0:
            raise ValueError("max_slot_wal_keep_size_mb must be > 0: an unbounded slot can fill the disk")
        ipaddress.ip_network(self.replication_cidr)  # raises ValueError on a bad CIDR


def primary_server_parameters(s: PrimarySettings) -> dict[str, str]:
    """postgresql.conf settings of every node, primary and replicas alike.

    Replicas get the same settings: a standby needs max_wal_senders and friends at least
    as high as its primary's, and after a promotion it must behave as the primary did.
    WAL archiving stays off (the default) until something consumes the archive.
    """
    return {
        "listen_addresses": s.listen_addresses,
        "port": str(s.port),
        "wal_level": "replica",
        "max_wal_senders": str(len(s.replica_slots) + SPARE_WAL_SENDERS),
        "max_replication_slots": str(len(s.replica_slots) + SPARE_REPLICATION_SLOTS),
        "max_slot_wal_keep_size": f"{s.max_slot_wal_keep_size_mb}MB",
        "wal_keep_size": f"{WAL_KEEP_SIZE_MB}MB",
        "hot_standby": "on",
        # Replicas tell the primary which rows their queries still read, so long reads on
        # a replica are not cancelled by vacuum on the primary.
        "hot_standby_feedback": "on",
        # Lets pg_rewind turn a failed old primary into a replica of the new one.
        "wal_log_hints": "on",
        "password_encryption": "scram-sha-256",
        "ssl": "on",
        "ssl_cert_file": s.tls.certificate_file,
        "ssl_key_file": s.tls.key_file,
        "ssl_min_protocol_version": TLS_MIN_VERSION,
    }


def primary_server_flags(s: PrimarySettings) -> list[str]:
    """`primary_server_parameters` as `-c name=value` pairs appended to the `postgres` command.

    The caller adds `-c hba_file=<path>` for wherever it puts `render_pg_hba`'s output.
    """
    return [arg for name, value in primary_server_parameters(s).items() for arg in ("-c", f"{name}={value}")]


def render_pg_hba(s: PrimarySettings) -> str:
    """pg_hba.conf for every node (primary and replicas), read by postgres via hba_file.

    Over TCP only `hostssl` lines: a connection without TLS matches no line and is refused,
    replication included."""
    cidr = s.replication_cidr
    return (
        "# Rendered by hastack. First matching line wins.\n"
        "# TYPE  DATABASE     USER        ADDRESS  METHOD\n"
        # The image's entrypoint and init scripts, and `docker exec ... psql`.
        f"local   all          {SUPERUSER}              peer\n"
        f"hostssl replication  {REPLICATION_ROLE}  {cidr}  scram-sha-256\n"
        f"hostssl all          all         {cidr}  scram-sha-256\n"
    )


def primary_init_script(s: PrimarySettings) -> str:
    """bash for /docker-entrypoint-initdb.d/: run once, when initdb created the cluster.

    The official image runs it as the postgres user against a temporary server on the
    local socket, with psql on PATH. It may be sourced rather than executed (when not
    executable), so it sets no shell options and never calls `exit`.
    """
    slot_statements = "".join(
        f"SELECT pg_create_physical_replication_slot('{slot}');\n" for slot in s.replica_slots
    )
    return f"""#!/usr/bin/env bash
# Rendered by hastack: roles, replication slots and the app database, created once at
# initdb time. Passwords come from the environment; \\getenv (psql >= 15) keeps them out
# of this text and out of any command line.
: "${{{REPLICATION_PASSWORD_ENV}:?{REPLICATION_PASSWORD_ENV} must be set}}"
: "${{{APP_DB_PASSWORD_ENV}:?{APP_DB_PASSWORD_ENV} must be set}}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${{POSTGRES_USER:-{SUPERUSER}}}" --dbname postgres <<'SQL'
\\getenv replication_password {REPLICATION_PASSWORD_ENV}
CREATE ROLE {REPLICATION_ROLE} WITH LOGIN REPLICATION PASSWORD :'replication_password';
{app_database_sql(s)}{slot_statements}SQL
"""


def app_database_sql(s: PrimarySettings) -> str:
    """psql input creating the app's role (password from $APP_DB_PASSWORD) and database,
    and with `monitoring_role` the exporter's role (password from $MONITOR_DB_PASSWORD)."""
    monitoring = (f"\\getenv monitor_password {MONITOR_DB_PASSWORD_ENV}\n{monitor_role_sql('monitor_password')}"
                  if s.monitoring_role else "")
    return (
        f"\\getenv app_password {APP_DB_PASSWORD_ENV}\n"
        f"CREATE ROLE {s.app_user} WITH LOGIN PASSWORD :'app_password';\n"
        f"CREATE DATABASE {s.app_db} OWNER {s.app_user};\n"
        f"{monitoring}"
    )


@dataclass(frozen=True)
class ReplicaSettings:
    primary_host: str
    primary_port: int
    slot_name: str
    data_dir: str
    port: int = 5432
    # None: binaries on PATH (the image); "/usr/lib/postgresql/15/bin" in tests.
    bin_dir: str | None = None
    # Usually primary_server_flags(...) plus anything node-specific.
    server_flags: tuple[str, ...] = ()
    # How many times (about one a second) a first bootstrap checks whether the primary
    # accepts connections before giving up; the container's restart policy retries.
    primary_wait_attempts: int = 120
    # The stack CA: the primary's certificate is verified against it (CLIENT_SSLMODE).
    ca_file: str = field(kw_only=True)

    def __post_init__(self) -> None:
        _check_identifier(self.slot_name, "slot name")
        if not _HOST.match(self.primary_host):
            raise ValueError(f"primary_host must be a host name or IPv4 address, got {self.primary_host!r}")
        if not self.data_dir.startswith("/"):
            raise ValueError(f"data_dir must be absolute, got {self.data_dir!r}")
        if self.primary_wait_attempts < 1:
            raise ValueError("primary_wait_attempts must be >= 1")


def replica_bootstrap_script(s: ReplicaSettings) -> str:
    """sh, the replica's container command; runs as the postgres user and ends in `exec postgres`.

    Idempotent: pg_basebackup runs only into an empty (or half-finished) data dir. A data
    dir that holds a cluster, whether still a replica or promoted since, is started as it
    is, even while the primary is down.
    """
    def tool(name: str) -> str:
        return shlex.quote(f"{s.bin_dir}/{name}" if s.bin_dir else name)

    q = shlex.quote
    primary = f"-h {q(s.primary_host)} -p {s.primary_port} -U {REPLICATION_ROLE} --no-password"
    postgres_argv = shlex.join([*s.server_flags, "-c", f"port={s.port}"])
    return f"""#!/bin/sh
# Rendered by hastack: bootstraps this streaming replica once, then runs postgres.
# The replication password comes from ${REPLICATION_PASSWORD_ENV}, never from this text.
set -eu
data_dir={q(s.data_dir)}
# Every connection to the primary is TLS, verified against the stack CA; pg_basebackup -R
# keeps both settings in primary_conninfo, so streaming is verified the same way.
export PGSSLMODE={CLIENT_SSLMODE} PGSSLROOTCERT={q(s.ca_file)}

if [ "$(id -u)" = 0 ]; then
    echo "hastack-replica: run this as the postgres user; postgres refuses to run as root" >&2
    exit 1
fi

# A base backup was interrupted (container killed mid-copy) when the dir is non-empty but
# has no standby.signal, which pg_basebackup -R writes only once every data file, with
# pg_control last, has arrived; and either PG_VERSION is missing, or backup_label is still
# there (a replica that has started once has renamed it to backup_label.old; a promoted
# one has neither). Such a dir holds only a partial copy of the primary, so clearing it
# and copying again loses nothing. pg_basebackup itself clears the dir on ordinary errors.
half_finished() {{
    [ -n "$(ls -A "$data_dir" 2>/dev/null)" ] || return 1
    [ ! -f "$data_dir/standby.signal" ] && [ ! -f "$data_dir/recovery.signal" ] || return 1
    [ ! -f "$data_dir/PG_VERSION" ] || [ -f "$data_dir/backup_label" ]
}}

if [ -f "$data_dir/PG_VERSION" ] && ! half_finished; then
    echo "{EXISTING_CLUSTER_MARKER}"
else
    if half_finished; then
        echo "{HALF_FINISHED_MARKER} in $data_dir"
        find "$data_dir" -mindepth 1 -delete
    fi
    mkdir -p "$data_dir"
    chmod 0700 "$data_dir"

    waited=0
    until {tool("pg_isready")} -h {q(s.primary_host)} -p {s.primary_port} -t 1 -q; do
        waited=$((waited + 1))
        if [ "$waited" -ge {s.primary_wait_attempts} ]; then
            echo "hastack-replica: primary {s.primary_host}:{s.primary_port} not ready after {s.primary_wait_attempts} tries" >&2
            exit 1
        fi
        sleep 1
    done

    export PGPASSWORD="${{{REPLICATION_PASSWORD_ENV}:?{REPLICATION_PASSWORD_ENV} must be set to bootstrap a replica}}"
    # Names this replica in pg_stat_replication; -R keeps it in primary_conninfo.
    export PGAPPNAME={q(s.slot_name)}
    # The primary's init script created the slots it knew of at initdb time; a replica
    # added later creates its own.
    {tool("pg_receivewal")} {primary} --create-slot --if-not-exists -S {q(s.slot_name)}
    echo "{BOOTSTRAP_MARKER} from {s.primary_host}:{s.primary_port} into $data_dir (slot {s.slot_name})"
    {tool("pg_basebackup")} {primary} -D "$data_dir" -R -X stream -S {q(s.slot_name)} --checkpoint=fast
    unset PGPASSWORD PGAPPNAME
fi

exec {tool("postgres")} -D "$data_dir" {postgres_argv}
"""
