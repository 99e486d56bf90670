"""Azure Database for PostgreSQL Flexible Server: an HA primary plus read replicas.

A restore (`database.restore`) creates the primary from a backup instead
(createMode PointInTimeRestore or GeoRestore). Flexible Server applies no high
availability to a restored server whatever the request says
(https://github.com/hashicorp/terraform-provider-azurerm/issues/18253), so the restore
run declares exactly what Azure builds: one instance, the source's admin password, the
parameters chained after it, no replicas. The next run, without `database.restore`,
declares HA and the admin password (an update of the same server: the restore inputs are
create-only and ignored from then on) and the replicas after the last parameter.

Two ordering rules come from how the service behaves, not from data flow:
- A server takes one write at a time; parameter writes sent together fail with
  ServerIsBusy. So every `Configuration` waits for the one before it.
- A replica copies the primary as it is when the replica is created, and creating it
  is another write to the primary. So replicas come after the last parameter, one
  after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

import pulumi
import pulumi_azure_native.dbforpostgresql as dbforpostgresql

from components.config import ManagedDatabaseConfig, RestoreConfig, parse_restore_time

# Server parameters hastack sets, in the order they are written. Each says why.
SERVER_PARAMETERS: tuple[tuple[str, str], ...] = (
    # Refuse unencrypted connections; the app's URLs carry sslmode=require.
    ("require_secure_transport", "on"),
    # Same floor as the gateway and the storage account.
    ("ssl_min_protocol_version", "TLSv1.2"),
    # Checkpoint timing in the logs explains I/O spikes and slow failovers.
    ("log_checkpoints", "on"),
    # Statements slower than 1 s reach Log Analytics (diagnostic settings).
    ("log_min_duration_statement", "1000"),
    # The job queue claims rows with locks; waits longer than deadlock_timeout get logged.
    ("log_lock_waits", "on"),
)

# Attributes Azure changes by itself on failover (primary and standby swap zones).
# Without ignoring them the next `pulumi up` would try to move the server back.
FAILOVER_DRIFT = ["availabilityZone", "highAvailability.standbyAvailabilityZone"]
# How a restored server was born. Create-only: once it exists, dropping database.restore
# must update the server (HA, password), never replace it.
RESTORE_INPUTS = ["createMode", "sourceServerResourceId", "pointInTimeUTC"]

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class DatabaseArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    delegated_subnet_id: pulumi.Input[str]
    private_dns_zone_id: pulumi.Input[str]
    version: str
    settings: ManagedDatabaseConfig
    replica_count: int
    database_name: str
    # The server admin: only the app's role-setup init container logs in as it.
    admin_login: str
    admin_password: pulumi.Input[str]
    # The app's own role (made by that init container), which the connection URLs name.
    app_user: str
    app_password: pulumi.Input[str]
    protect: bool
    # Set: the primary is restored from this backup (already checked against the source).
    restore: RestoreConfig | None = None


class Database(pulumi.ComponentResource):
    """Primary (zone-redundant HA per config), chained server parameters, read replicas."""

    primary_id: pulumi.Output[str]
    replica_ids: list[pulumi.Output[str]]
    writer_fqdn: pulumi.Output[str]
    reader_fqdns: pulumi.Output[list[str]]
    # Secret: libpq URLs with the app role's password.
    database_url: pulumi.Output[str]
    database_read_url: pulumi.Output[str]
    # libpq environment for the role-setup init container: the admin, on the app database
    # once it exists. The password is in `admin_secret_env`, never in plain env.
    admin_env: dict[str, pulumi.Output[str]]
    admin_secret_env: dict[str, pulumi.Input[str]]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:azure:Database", name, None, opts)
        settings = args.settings
        private_network = dbforpostgresql.NetworkArgs(
            delegated_subnet_resource_id=args.delegated_subnet_id,
            private_dns_zone_arm_resource_id=args.private_dns_zone_id,
            public_network_access="Disabled",
        )
        sku = dbforpostgresql.SkuArgs(name=settings.sku_name, tier=settings.tier)
        storage = dbforpostgresql.StorageArgs(storage_size_gb=settings.storage_size_gb, auto_grow="Enabled")

        restore = args.restore
        primary = dbforpostgresql.Server(
            f"{name}-primary",
            resource_group_name=args.resource_group_name,
            location=args.location,
            version=args.version,
            sku=sku,
            storage=storage,
            availability_zone=settings.zone,
            high_availability=_high_availability(settings, restoring=restore is not None),
            backup=dbforpostgresql.BackupArgs(
                backup_retention_days=settings.backup_retention_days,
                # Fixed when the server is created: changing it later replaces the server.
                geo_redundant_backup="Enabled" if settings.geo_redundant_backup else "Disabled",
            ),
            network=private_network,
            auth_config=dbforpostgresql.AuthConfigArgs(password_auth="Enabled", active_directory_auth="Disabled"),
            **_creation(args),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                retain_on_delete=args.protect,
                ignore_changes=[*FAILOVER_DRIFT, *RESTORE_INPUTS],
            ),
        )

        previous_write: pulumi.Resource = primary
        for parameter, value in SERVER_PARAMETERS:
            previous_write = dbforpostgresql.Configuration(
                f"{name}-param-{parameter.replace('_', '-')}",
                resource_group_name=args.resource_group_name,
                server_name=primary.name,
                configuration_name=parameter,
                value=value,
                source="user-override",
                # The API cannot delete a server parameter, so a destroy (or dropping one
                # from SERVER_PARAMETERS) would fail with InternalServerError; Pulumi forgets
                # it instead and the server keeps its value
                # (https://github.com/pulumi/pulumi-azure-native/issues/3072, #3476).
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous_write], retain_on_delete=True),
            )
        last_parameter = previous_write

        app_database = dbforpostgresql.Database(
            f"{name}-db",
            resource_group_name=args.resource_group_name,
            server_name=primary.name,
            database_name=args.database_name,
            charset="UTF8",
            collation="en_US.utf8",
            # Charset and collation are fixed at creation: a change replaces the database, and
            # the replacement drops the app's data while the protected server survives
            # (terraform-provider-azurerm#22907 shows the forced replacement). So the database
            # is kept like the server it lives on.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[last_parameter], protect=args.protect, retain_on_delete=args.protect
            ),
        )

        replicas: list[dbforpostgresql.Server] = []
        # A restored server gets its replicas on the run after the restore, once HA is on.
        for index in range(0 if restore else args.replica_count):
            replicas.append(
                dbforpostgresql.Server(
                    f"{name}-replica-{index + 1}",
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    create_mode="Replica",
                    source_server_resource_id=primary.id,
                    sku=sku,
                    storage=storage,
                    availability_zone=_replica_zone(settings, index),
                    network=private_network,
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        depends_on=[last_parameter, app_database, *replicas[-1:]],
                        ignore_changes=["availabilityZone"],
                    ),
                )
            )

        self.primary_id = primary.id
        self.replica_ids = [replica.id for replica in replicas]
        self.writer_fqdn = primary.fully_qualified_domain_name
        self.reader_fqdns = pulumi.Output.all(*[replica.fully_qualified_domain_name for replica in replicas])
        # With no replica, reads go to the writer: the app still gets both URLs.
        reader_fqdn = replicas[0].fully_qualified_domain_name if replicas else self.writer_fqdn
        self.admin_env = {
            # Handed out once the app database exists: the init container connects to it.
            "PGHOST": pulumi.Output.all(self.writer_fqdn, app_database.id).apply(lambda parts: parts[0]),
            "PGPORT": pulumi.Output.from_input(str(POSTGRES_PORT)),
            "PGUSER": pulumi.Output.from_input(args.admin_login),
            "PGDATABASE": pulumi.Output.from_input(args.database_name),
            "PGSSLMODE": pulumi.Output.from_input("require"),
        }
        self.admin_secret_env = {"PGPASSWORD": args.admin_password}
        self.database_url = _connection_url(args, self.writer_fqdn)
        self.database_read_url = _connection_url(args, reader_fqdn)

        self.register_outputs(
            {
                "writerFqdn": self.writer_fqdn,
                "readerFqdns": self.reader_fqdns,
                "databaseUrl": self.database_url,
                "databaseReadUrl": self.database_read_url,
            }
        )


def _high_availability(settings: ManagedDatabaseConfig, restoring: bool) -> dbforpostgresql.HighAvailabilityArgs:
    if restoring:
        # What Azure builds on a restore, declared so the next run's diff turns HA on.
        return dbforpostgresql.HighAvailabilityArgs(mode="Disabled")
    return dbforpostgresql.HighAvailabilityArgs(
        mode=settings.high_availability,
        # SameZone puts the standby next to the primary; only ZoneRedundant picks a zone.
        standby_availability_zone=settings.standby_zone if settings.high_availability == "ZoneRedundant" else None,
    )


def _creation(args: DatabaseArgs) -> dict:
    """A new, empty server with hastack's admin; or a restore, which keeps the source's admin
    password until the next run sets hastack's. The login is declared on both runs (a hastack
    source has the same one), so the next run changes nothing the API fixes at creation."""
    if args.restore is None:
        return {
            "create_mode": "Create",
            "administrator_login": args.admin_login,
            "administrator_login_password": args.admin_password,
        }
    return {
        "create_mode": args.restore.mode,
        "administrator_login": args.admin_login,
        "source_server_resource_id": args.restore.source_server_id,
        "point_in_time_utc": f"{parse_restore_time(args.restore.target).astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}",
    }


def _replica_zone(settings: ManagedDatabaseConfig, index: int) -> str:
    """Replicas go to the zones after the primary's, so one zone outage leaves a reader."""
    return str((int(settings.zone) + index) % 3 + 1)


def _connection_url(args: DatabaseArgs, host: pulumi.Input[str]) -> pulumi.Output[str]:
    """A libpq URL for the app. It holds the password, so it is a secret end to end."""
    return pulumi.Output.secret(
        pulumi.Output.format(
            "postgresql://{0}:{1}@{2}:{3}/{4}?sslmode=require",
            args.app_user,
            args.app_password,
            host,
            POSTGRES_PORT,
            args.database_name,
        )
    )

