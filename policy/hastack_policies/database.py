"""PostgreSQL: a standby to fail over to, backups that outlive a region, nothing exposed."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy, HastackStackPolicy
from .resources import (
    AZURE_PG_CONFIGURATION,
    AZURE_PG_SERVER,
    DOCKER_CONTAINER,
    DOCKER_SERVICE,
    is_being_restored,
    is_database_container,
    is_swarm_data_member,
    is_read_replica,
    known_items,
)


# Flexible Server builds a restored server single-instance; hastack adds HA and replicas on
# the next run (components/azure/database.py), where these rules apply again.
RESTORE_RUN = "a server restored from a backup starts single-instance; HA and replicas follow on the run after the restore"


def _check_zone_redundant_ha(args, report, settings):
    if is_read_replica(args.props):
        args.not_applicable("HA is configured on the primary; a read replica has no standby of its own")
    if is_being_restored(args.props):
        args.not_applicable(RESTORE_RUN)
    wanted = settings["mode"]
    ha = args.props.get("highAvailability") or {}
    mode = ha.get("mode") or "Disabled"
    if mode != wanted:
        report(
            f"The server's high availability is '{mode}', '{wanted}' required. "
            f"Fix: set hastack:database.managed.highAvailability to {wanted}."
        )
    elif mode == "ZoneRedundant" and ha.get("standbyAvailabilityZone") == args.props.get("availabilityZone"):
        report(
            "The standby is in the primary's zone, so one zone outage takes both. "
            "Fix: set hastack:database.managed.standbyZone to a zone other than zone."
        )


db_zone_redundant_ha = HastackResourcePolicy(
    "db-zone-redundant-ha",
    "The managed PostgreSQL server keeps a hot standby in another zone (high availability ZoneRedundant). Self-hosted HA is covered by db-streaming-replica.",
    applies_to=[AZURE_PG_SERVER],
    check=_check_zone_redundant_ha,
    # A standby doubles the server bill: advisory unless a stack's config raises it (prod does).
    enforcement_level=EnforcementLevel.ADVISORY,
    settings={
        "mode": {
            "type": "string",
            "enum": ["ZoneRedundant", "SameZone"],
            "default": "ZoneRedundant",
            "description": "The high availability mode the primary server must run.",
        }
    },
)


def _check_streaming_replicas(args, report, settings):
    minimum = settings["minReplicas"]
    postgres_nodes = [
        r for r in args.resources if r.resource_type in (DOCKER_CONTAINER, DOCKER_SERVICE) and is_database_container(r.urn)
    ]
    # One node is the primary (or the Patroni leader); every other node streams from it.
    if postgres_nodes and len(postgres_nodes) - 1 < minimum:
        report(
            f"{len(postgres_nodes)} PostgreSQL node(s): {len(postgres_nodes) - 1} streaming replica(s), at least {minimum} needed. "
            f"Fix: set hastack:database.replicas to {minimum} or more."
        )
    servers = [r for r in args.resources if r.resource_type == AZURE_PG_SERVER]
    if not postgres_nodes and not servers:
        args.not_applicable("no PostgreSQL in this stack")
    if any(is_being_restored(s.props) for s in servers):
        args.not_applicable(RESTORE_RUN)
    read_replicas = [s for s in servers if is_read_replica(s.props)]
    if servers and len(read_replicas) < minimum:
        report(
            f"{len(read_replicas)} read replica server(s), at least {minimum} needed. "
            f"Fix: set hastack:database.replicas to {minimum} or more."
        )


db_streaming_replica = HastackStackPolicy(
    "db-streaming-replica",
    "The database has streaming replicas to read from and promote (self-hosted standby containers or Swarm member services; managed read replicas).",
    check=_check_streaming_replicas,
    # Replicas cost money: advisory unless a stack's config raises it (prod does).
    enforcement_level=EnforcementLevel.ADVISORY,
    settings={
        "minReplicas": {
            "type": "integer",
            "minimum": 0,
            "default": 1,
            "description": "Fewest streaming (self-hosted) or read (managed) replicas.",
        }
    },
)


def _check_backup_retention(args, report, settings):
    if is_read_replica(args.props):
        args.not_applicable("backups are taken of the primary")
    minimum = settings["minDays"]
    days = (args.props.get("backup") or {}).get("backupRetentionDays") or 7  # Azure's default when unset
    if days < minimum:
        report(
            f"Backups are kept {days} days, at least {minimum} required for point-in-time recovery. "
            f"Fix: set hastack:database.managed.backupRetentionDays to {minimum} or more."
        )


db_backup_retention = HastackResourcePolicy(
    "db-backup-retention",
    "Managed PostgreSQL keeps backups (point-in-time recovery) for at least the minimum number of days.",
    applies_to=[AZURE_PG_SERVER],
    check=_check_backup_retention,
    enforcement_level=EnforcementLevel.MANDATORY,
    settings={
        "minDays": {
            "type": "integer",
            "minimum": 7,
            "maximum": 35,
            "default": 7,
            "description": "Fewest days of backup retention (Azure allows 7..35).",
        }
    },
)


def _check_geo_backup(args, report, settings):
    if is_read_replica(args.props):
        args.not_applicable("backups are taken of the primary")
    geo = (args.props.get("backup") or {}).get("geoRedundantBackup") or "Disabled"
    if geo != "Enabled":
        report(
            "Backups stay in one region, so a regional outage can lose them. "
            "Fix: set hastack:database.managed.geoRedundantBackup to true (only possible when the server is created)."
        )


db_geo_redundant_backup = HastackResourcePolicy(
    "db-geo-redundant-backup",
    "Managed PostgreSQL backups are geo-redundant (copied to the paired region).",
    applies_to=[AZURE_PG_SERVER],
    check=_check_geo_backup,
    # Geo-redundant storage costs more: advisory unless a stack's config raises it (prod does).
    enforcement_level=EnforcementLevel.ADVISORY,
)


def _check_no_public_access(args, report, settings):
    if args.resource_type == DOCKER_CONTAINER:
        if not is_database_container(args.urn):
            args.not_applicable("not a PostgreSQL container")
        published = [p.get("external") or p.get("internal") for p in known_items(args.props.get("ports"))]
        if published:
            report(
                f"The PostgreSQL container publishes host port(s) {published}. "
                "Fix: drop `ports` from database containers; the app reaches them on the private network."
            )
        return
    if args.resource_type == DOCKER_SERVICE:
        if not is_swarm_data_member(args.urn):
            args.not_applicable("not a Patroni or etcd member")
        ports = (args.props.get("endpointSpec") or {}).get("ports")
        published = [p.get("publishedPort") or p.get("targetPort") for p in known_items(ports)]
        if published:
            report(
                f"The Swarm service '{args.name}' publishes port(s) {published} on the nodes (or the ingress mesh). "
                "Fix: drop endpointSpec.ports; the app reaches the members on the encrypted data overlay."
            )
        return
    access = (args.props.get("network") or {}).get("publicNetworkAccess")
    if access != "Disabled":
        report(
            f"Public network access is '{access or 'unset (Azure enables it)'}'. "
            "Fix: set network.publicNetworkAccess to Disabled with a delegated subnet and private DNS zone."
        )


db_no_public_access = HastackResourcePolicy(
    "db-no-public-access",
    "The database is reachable only from the private network (no public network access; no host port published by a container or a Swarm Patroni/etcd service).",
    applies_to=[AZURE_PG_SERVER, DOCKER_CONTAINER, DOCKER_SERVICE],
    check=_check_no_public_access,
    enforcement_level=EnforcementLevel.MANDATORY,
)

SECURE_TRANSPORT_PARAMETER = "require_secure_transport"


def _configuration_name(resource) -> str:
    """The server parameter a Configuration sets: the `configurationName` input, or the
    `name` the API reports in the state stack rules see after an update."""
    props = resource.props
    return str(props.get("configurationName") if "configurationName" in props else props.get("name"))


def _check_secure_transport(args, report, settings):
    primaries = [r for r in args.resources if r.resource_type == AZURE_PG_SERVER and not is_read_replica(r.props)]
    parameters = [
        r
        for r in args.resources
        if r.resource_type == AZURE_PG_CONFIGURATION and _configuration_name(r) == SECURE_TRANSPORT_PARAMETER
    ]
    if not primaries:
        args.not_applicable("no managed PostgreSQL server; self-hosted nodes stay on the private network")
    for parameter in parameters:
        value = str(parameter.props.get("value") or "")
        if value.lower() != "on":
            report(
                f"require_secure_transport is '{value}', so clients may connect without TLS. Fix: set it to 'on'.",
                parameter.urn,
            )
    if not parameters:
        report(
            "No server parameter sets require_secure_transport, so TLS depends on a default that can change. "
            "Fix: declare a dbforpostgresql Configuration require_secure_transport = on for the server."
        )


db_secure_transport = HastackStackPolicy(
    "db-secure-transport",
    "Managed PostgreSQL refuses clients without TLS (server parameter require_secure_transport = on). Self-hosted PostgreSQL is reached only on the private Docker network.",
    check=_check_secure_transport,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [
    db_zone_redundant_ha,
    db_streaming_replica,
    db_backup_retention,
    db_geo_redundant_backup,
    db_no_public_access,
    db_secure_transport,
]
