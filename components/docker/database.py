"""Self-hosted PostgreSQL: one primary and N streaming replicas, each on its own data volume.

The primary runs the official image's entrypoint (initdb, then our init script creates
the replication role, one physical slot per replica and the app database). Each
replica runs the rendered bootstrap script instead: `pg_basebackup -R -X stream -S
<slot>` into an empty data dir, then postgres as a hot standby. All nodes run the same
server flags, pg_hba and TLS certificate (its SANs name every node), so a promoted
replica is a complete primary (runbook: docs/docker.md). Every TCP connection, replication
included, is TLS.

Nothing here publishes a host port: the database is reachable on the private network only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.certificates import StackCertificateAuthority
from components.config import DatabaseConfig
from components.docker.backup_scheduler import BackupScheduler, BackupSchedulerArgs, ScheduledNode
from components.docker.backups import ClusterBackups, NodeBackup, cluster_node_backups
from components.docker.common import (
    POSTGRES_PORT,
    POSTGRES_TLS,
    PostgresCluster,
    built_image,
    data_layout,
    data_node,
    env_entry,
    postgres_tls_uploads,
    pulled_image,
)
from components.render.pgbackrest import RestoreSettings, restore_script, server_flags, stanza_create_script
from components.render.postgres import (
    APP_DB_PASSWORD_ENV,
    MONITOR_DB_PASSWORD_ENV,
    REPLICATION_PASSWORD_ENV,
    PrimarySettings,
    ReplicaSettings,
    primary_init_script,
    primary_server_flags,
    render_pg_hba,
    replica_bootstrap_script,
    replica_slot_name,
)

# Files uploaded into the containers. The hba file lives outside the data dir so the
# replicas (whose data dir is a copy of the primary's) get the same, current rules.
HBA_FILE = "/etc/postgresql/hastack/pg_hba.conf"
# The official entrypoint runs *.sh here once, on first init only.
INIT_SCRIPT = "/docker-entrypoint-initdb.d/10-hastack-replication.sh"
REPLICA_BOOTSTRAP = "/usr/local/bin/hastack-replica-bootstrap"
STANZA_CREATE_SCRIPT = "/docker-entrypoint-initdb.d/20-hastack-pgbackrest.sh"
RESTORE_SCRIPT = "/usr/local/bin/hastack-restore"
# The database images with pgBackRest (and Patroni), relative to the project directory.
IMAGE_CONTEXT = "./components/docker/images/postgres"
# initdb + init script, or a pg_basebackup of the whole primary, must finish in this.
HEALTHY_TIMEOUT_S = 600
# Time for a fast shutdown (SIGINT, checkpoint) before the container is killed.
STOP_GRACE_S = 60


@dataclass(frozen=True)
class DatabaseArgs:
    config: DatabaseConfig
    network_name: pulumi.Input[str]
    # The private network's CIDR: pg_hba admits replication and app logins from it only.
    replication_cidr: str
    superuser_password: pulumi.Input[str]
    replication_password: pulumi.Input[str]
    app_password: pulumi.Input[str]
    # Protect (and retain) the data volumes.
    protect: bool
    # Signs the nodes' server certificate; the app verifies it with the same CA.
    certificate_authority: StackCertificateAuthority
    # Set: the primary's init script creates postgres_exporter's pg_monitor role with it.
    monitor_password: pulumi.Input[str] | None = None
    # None: no WAL archiving and no backups (backups.enabled: false).
    backups: ClusterBackups | None = None


def database_image(name: str, config: DatabaseConfig, backups: ClusterBackups | None, target: str,
                   parent: pulumi.Resource) -> pulumi.Output[str]:
    """The image every node runs: the official one, or with backups the one built on it with
    the pgBackRest release that supports its major (images/postgres/Dockerfile)."""
    args = {"POSTGRES_IMAGE": config.image}
    if backups is not None:
        args["PGBACKREST_VERSION"] = backups.config.pgbackrest_version
    return built_image(f"{name}-image", f"{name}-{target}", IMAGE_CONTEXT, parent, args, target)


class Database(PostgresCluster):
    """A PostgreSQL primary plus `config.replicas` streaming replicas with one slot each."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:Database", name, None, opts)
        config = args.config
        self._name = name
        self._args = args
        self._layout = data_layout(config.version)
        backups = args.backups
        if backups is None:
            self._image = pulled_image(f"{name}-image", config.image, self).image_id
        else:
            self._image = database_image(name, config, backups, "postgres", self)
        roles = ["primary", *(f"replica-{index}" for index in range(config.replicas))]
        self._backups = dict(zip(roles, cluster_node_backups(
            name, [self._alias(role) for role in roles], backups, self._layout.pgdata, args.certificate_authority,
            self).values())) if backups else {}

        slots = tuple(replica_slot_name(index) for index in range(config.replicas))
        primary_settings = PrimarySettings(
            replica_slots=slots,
            max_slot_wal_keep_size_mb=config.max_slot_wal_keep_size_mb,
            replication_cidr=args.replication_cidr,
            app_db=config.name,
            app_user=config.user,
            port=POSTGRES_PORT,
            tls=POSTGRES_TLS,
            monitoring_role=args.monitor_password is not None,
        )
        certificate = args.certificate_authority.issue(
            f"{name}-server", dns_names=[self._alias(role) for role in roles], parent=self
        )
        # Every node runs the primary's flags: a standby needs settings at least as
        # high as the primary's, and a promoted standby must act as a full primary.
        archive_flags = server_flags(self._backups["primary"].archive_parameters) if backups else []
        self._server_flags = [*primary_server_flags(primary_settings), "-c", f"hba_file={HBA_FILE}", *archive_flags]
        self._every_node_uploads = [
            docker.ContainerUploadArgs(file=HBA_FILE, content=render_pg_hba(primary_settings), permissions="0644"),
            *postgres_tls_uploads(certificate, args.certificate_authority.certificate_pem),
        ]

        primary_alias = self._alias("primary")
        if config.restore is not None:
            # Bootstrapped from the repository instead of initdb: the restore script fills
            # the empty data dir, then execs postgres with these flags.
            restore = RestoreSettings(backup=self._backups["primary"].settings, target=config.restore.target,
                                      postgres_argv=tuple(self._server_flags))
            primary = self._node(
                "primary",
                entrypoint=[RESTORE_SCRIPT],
                envs=[],
                extra_uploads=[docker.ContainerUploadArgs(file=RESTORE_SCRIPT, content=restore_script(restore),
                                                          permissions="0755")],
                depends_on=[],
            )
        else:
            init_scripts = [docker.ContainerUploadArgs(file=INIT_SCRIPT, content=primary_init_script(primary_settings),
                                                       permissions="0755")]
            if backups:
                init_scripts.append(docker.ContainerUploadArgs(
                    file=STANZA_CREATE_SCRIPT, content=stanza_create_script(self._backups["primary"].settings),
                    permissions="0755"))
            primary = self._node(
                "primary",
                # The entrypoint initialises the empty data dir and runs the init scripts
                # once (on a temporary server that does not archive), then execs postgres
                # with these flags.
                command=["postgres", *self._server_flags],
                envs=[
                    env_entry("POSTGRES_PASSWORD", args.superuser_password),
                    env_entry(REPLICATION_PASSWORD_ENV, args.replication_password),
                    env_entry(APP_DB_PASSWORD_ENV, args.app_password),
                    *([env_entry(MONITOR_DB_PASSWORD_ENV, args.monitor_password)] if args.monitor_password is not None else []),
                    f"PGDATA={self._layout.pgdata}",
                ],
                extra_uploads=init_scripts,
                depends_on=[],
            )

        replica_aliases = []
        nodes = [primary]
        for index, slot in enumerate(slots):
            replica_settings = ReplicaSettings(
                primary_host=primary_alias,
                primary_port=POSTGRES_PORT,
                slot_name=slot,
                data_dir=self._layout.pgdata,
                port=POSTGRES_PORT,
                server_flags=tuple(self._server_flags),
                ca_file=POSTGRES_TLS.ca_file,
            )
            nodes.append(
                self._node(
                    f"replica-{index}",
                    # Bypass the official entrypoint: it would initdb the empty dir.
                    entrypoint=[REPLICA_BOOTSTRAP],
                    envs=[env_entry(REPLICATION_PASSWORD_ENV, args.replication_password)],
                    extra_uploads=[
                        docker.ContainerUploadArgs(
                            file=REPLICA_BOOTSTRAP, content=replica_bootstrap_script(replica_settings), permissions="0755"
                        )
                    ],
                    # pg_basebackup needs a running primary with its slots created.
                    depends_on=[primary],
                )
            )
            replica_aliases.append(self._alias(f"replica-{index}"))

        if backups:
            scheduled = [ScheduledNode(self._alias(role), node, self._backups[role]) for role, node in zip(self._backups, nodes)]
            BackupScheduler(f"{name}-backups", BackupSchedulerArgs(config=backups.config, nodes=scheduled, image=self._image,
                                                                   network_name=args.network_name),
                            pulumi.ResourceOptions(parent=self))

        writer_endpoint = f"{primary_alias}:{POSTGRES_PORT}"
        reader_endpoints = [f"{alias}:{POSTGRES_PORT}" for alias in replica_aliases]
        self._publish(
            writer_endpoint=writer_endpoint,
            reader_endpoints=reader_endpoints,
            every_node=[writer_endpoint, *reader_endpoints],
            user=config.user,
            password=args.app_password,
            database=config.name,
            nodes=nodes,
        )

    def _alias(self, role: str) -> str:
        """The node's DNS name on the private network, e.g. db-primary, db-replica-0."""
        return f"{self._name}-{role}"

    def _node(
        self,
        role: str,
        *,
        envs: list[pulumi.Input[str]],
        extra_uploads: list[docker.ContainerUploadArgs],
        depends_on: list[pulumi.Resource],
        command: list[str] | None = None,
        entrypoint: list[str] | None = None,
    ) -> docker.Container:
        """One postgres container (`role`: primary, replica-0, ...) on its own data volume."""
        backup: NodeBackup | None = self._backups.get(role)
        return data_node(
            self._alias(role),
            parent=self,
            protect=self._args.protect,
            network_name=self._args.network_name,
            volume_path=self._layout.volume_path,
            # Over the local socket as postgres: pg_hba's `local ... peer` line admits it
            # silently, where a TCP probe from 127.0.0.1 would log a rejection every time.
            health_test=["pg_isready", "-U", "postgres", "-p", str(POSTGRES_PORT)],
            healthy_timeout_s=HEALTHY_TIMEOUT_S,
            stop_grace_s=STOP_GRACE_S,
            depends_on=depends_on,
            image=self._image,
            command=command,
            entrypoints=entrypoint,
            # pgBackRest's async archive-push detaches a process, which postgres as PID 1
            # would reap as an unknown child; Docker's init reaps it instead.
            init=backup is not None,
            extra_volumes=backup.volumes if backup else (),
            # initdb, pg_basebackup and postgres refuse root. The official entrypoint
            # supports a non-root user when the data dir is theirs, which a fresh named
            # volume is (it copies the image's postgres-owned directory).
            user="postgres",
            envs=[*envs, *(backup.envs if backup else [])],
            uploads=[*self._every_node_uploads, *extra_uploads, *(backup.uploads if backup else [])],
        )
