"""`database.restore` on Azure: check the source Flexible Server before anything is declared.

The config rules (components/config.py) check what the stack file alone can say: the
source id's shape and a target inside the longest possible retention. What only the
source server knows is read here, with one `getServer` call made before the first
resource is registered, so a bad restore is one clear line and nothing half-applied:
- the target is not before the source's earliest restore point (`backup.earliestRestoreDate`);
- the source runs `database.version` (a restore keeps the source's major version;
  upgrade after the restore);
- a point-in-time restore stays in the source's region; a geo restore goes to the
  paired region and needs the source's geo-redundant backups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pulumi_azure_native.dbforpostgresql as dbforpostgresql

from components.config import ConfigError, RestoreConfig, parse_restore_time

_WHERE = "hastack:database.restore"


@dataclass(frozen=True)
class SourceServer:
    """What a restore needs to know about the server it restores from."""

    version: str
    location: str
    earliest_restore_point: datetime
    geo_redundant_backup: bool


def source_resource_group_and_name(server_id: str) -> tuple[str, str]:
    """`/subscriptions/s/resourceGroups/<group>/providers/.../flexibleServers/<name>` -> (group, name)."""
    parts = server_id.strip("/").split("/")
    return parts[3], parts[-1]


def read_source_server(server_id: str) -> SourceServer:
    """The source server as Azure reports it now; ConfigError when it cannot be read."""
    group, name = source_resource_group_and_name(server_id)
    try:
        server = dbforpostgresql.get_server(resource_group_name=group, server_name=name)
    except Exception as err:  # the provider's error names the cause (not found, no access)
        raise ConfigError([f"{_WHERE}.sourceServerId: cannot read the source server {name} in {group}: {err}"]) from None
    return SourceServer(
        version=str(server.version),
        location=server.location,
        earliest_restore_point=parse_restore_time(server.backup.earliest_restore_date),
        geo_redundant_backup=server.backup.geo_redundant_backup == "Enabled",
    )


def restore_problems(restore: RestoreConfig, source: SourceServer, version: str, location: str) -> list[str]:
    """One line per reason this restore cannot work (empty: it can)."""
    problems = []
    target = parse_restore_time(restore.target)
    if target < source.earliest_restore_point:
        problems.append(
            f"{_WHERE}.target: {restore.target} is before the source's earliest restore point "
            f"{source.earliest_restore_point:%Y-%m-%dT%H:%M:%SZ}"
        )
    if source.version != version:
        problems.append(
            f"{_WHERE}: the source runs PostgreSQL {source.version} and a restore keeps that version, but "
            f"database.version is {version}; set database.version: \"{source.version}\" (upgrade after the restore)"
        )
    if restore.mode == "PointInTimeRestore" and source.location != location:
        problems.append(
            f"{_WHERE}: a point-in-time restore stays in the source's region {source.location}, but azure.location is "
            f"{location}; set azure.location: {source.location}, or mode GeoRestore for the paired region"
        )
    if restore.mode == "GeoRestore" and not source.geo_redundant_backup:
        problems.append(
            f"{_WHERE}.mode: GeoRestore needs the source's geo-redundant backups, which it does not keep; "
            "use PointInTimeRestore in its region"
        )
    return problems


def check_restore(restore: RestoreConfig, version: str, location: str) -> None:
    """Raise ConfigError (one line per problem) unless the restore can work."""
    problems = restore_problems(restore, read_source_server(str(restore.source_server_id)), version, location)
    if problems:
        raise ConfigError(problems)
