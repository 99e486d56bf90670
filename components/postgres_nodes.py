"""What every self-hosted PostgreSQL platform (docker, swarm) shares about its nodes:
the port, where the official image keeps PGDATA and its TLS files, and the multi-host
URLs the app gets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.config import DatabaseConfig
from components.render.postgres import CLIENT_SSLMODE, PrimarySettings, ServerTls, replica_slot_name

# Every PostgreSQL node listens here, whichever component runs it.
POSTGRES_PORT = 5432
# The server's TLS files in every PostgreSQL container (outside the data dir, so a base
# backup does not copy them), and the CA in every container that connects to one.
POSTGRES_TLS = ServerTls(
    certificate_file="/etc/postgresql/hastack/server.crt",
    key_file="/etc/postgresql/hastack/server.key",
    ca_file="/etc/postgresql/hastack/ca.crt",
)
DATABASE_CA_FILE = "/etc/hastack/database-ca.crt"
# The official postgres images' `postgres` user and group
# (https://github.com/docker-library/postgres/blob/master/16/bookworm/Dockerfile).
POSTGRES_UID = "999"


@dataclass(frozen=True)
class DataLayout:
    """Where a postgres image keeps PGDATA and where its data volume is mounted."""

    volume_path: str
    pgdata: str


def data_layout(version: str) -> DataLayout:
    """PG >= 18 images moved PGDATA to /var/lib/postgresql/<major>/docker and declare
    the volume at /var/lib/postgresql (so pg_upgrade --link can see both majors)."""
    if int(version) >= 18:
        return DataLayout(volume_path="/var/lib/postgresql", pgdata=f"/var/lib/postgresql/{version}/docker")
    return DataLayout(volume_path="/var/lib/postgresql/data", pgdata="/var/lib/postgresql/data")


def server_settings(config: DatabaseConfig, replication_cidr: str, tls: ServerTls = POSTGRES_TLS, *,
                    monitoring_role: bool = False) -> PrimarySettings:
    """The server settings every node of a self-hosted cluster runs: one slot per replica
    (with Patroni, which makes the slots itself, they only size max_replication_slots and
    max_wal_senders), pg_hba admitting `replication_cidr`, TLS from `tls`, and the
    exporter's monitoring role when one is wanted."""
    return PrimarySettings(
        replica_slots=tuple(replica_slot_name(index) for index in range(config.replicas)),
        max_slot_wal_keep_size_mb=config.max_slot_wal_keep_size_mb,
        replication_cidr=replication_cidr,
        app_db=config.name,
        app_user=config.user,
        port=POSTGRES_PORT,
        tls=tls,
        monitoring_role=monitoring_role,
    )


def connection_urls(
    user: str, password: pulumi.Input[str], hosts: Sequence[str], database: str, *, ca_file: str,
    client_options: Mapping[str, str] | None = None,
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """(writer, reader) multi-host libpq URLs over every PostgreSQL node, as secrets.

    Clients try the nodes in order and keep the first whose role fits (the writer:
    `read-write`; the reader: a standby if any is up, else the primary), so they follow a
    promotion, manual or Patroni's, without being reconfigured. Each connection is TLS,
    and libpq checks the certificate against the stack CA (`ca_file` in the client) and
    the host it dialled (`verify-full`), whichever of the hosts that is. `client_options`
    are further libpq parameters for every connection (a platform's timeouts).
    """
    extra = "".join(f"&{name}={value}" for name, value in (client_options or {}).items())

    def url(target_session_attrs: str) -> pulumi.Output[str]:
        query = f"target_session_attrs={target_session_attrs}&sslmode={CLIENT_SSLMODE}&sslrootcert={ca_file}{extra}"
        return pulumi.Output.secret(
            pulumi.Output.concat(f"postgresql://{user}:", password, f"@{','.join(hosts)}/{database}?{query}")
        )

    return url("read-write"), url("prefer-standby")
