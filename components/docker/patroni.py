"""Self-hosted PostgreSQL with automatic failover: 1 + N Patroni members and etcd.

Every member is the same container: Patroni (image built from images/postgres/, target
patroni, on the pinned postgres image) with its rendered patroni.yml and its own data volume. The
first member to take the initialize key in etcd runs initdb and the post-bootstrap
script (app role and database); the others copy it with pg_basebackup. Patroni then
keeps one leader: when it dies, the leader key expires in etcd (ttl) and the sync
standby takes over, so writes resume within about 7 s (docs/docker.md).

Clients use the same multi-host URLs as with manual failover; `target_session_attrs`
finds whichever member leads. Nothing here publishes a host port.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.certificates import StackCertificateAuthority
from components.config import DatabaseConfig
from components.docker.backup_scheduler import BackupScheduler, BackupSchedulerArgs, ScheduledNode
from components.docker.backups import ClusterBackups, cluster_node_backups
from components.docker.common import (
    POSTGRES_PORT,
    POSTGRES_TLS,
    PostgresCluster,
    data_layout,
    data_node,
    env_entry,
    postgres_tls_uploads,
)
from components.docker.database import database_image
from components.render.pgbackrest import RestoreSettings, replica_restore_command, restore_script
from components.render.patroni import (
    REPLICATION_PASSWORD_ENV,
    SUPERUSER_PASSWORD_ENV,
    PatroniSettings,
    patroni_post_bootstrap_script,
    render_patroni_yml,
)
from components.render.postgres import (
    APP_DB_PASSWORD_ENV,
    MONITOR_DB_PASSWORD_ENV,
    PrimarySettings,
    replica_slot_name,
)

# Where the image's entrypoint reads its config (images/postgres/Dockerfile, target patroni, CMD).
CONFIG_FILE = "/etc/patroni/patroni.yml"
POST_BOOTSTRAP_SCRIPT = "/usr/local/bin/hastack-patroni-post-bootstrap"
RESTORE_SCRIPT = "/usr/local/bin/hastack-restore"
# The probe shipped in the image: GET /health on the REST API, 200 once postgres runs.
HEALTH_PROBE = "hastack-patroni-health"
# Patroni's REST API, which the other members, patronictl and the probe use (also in the image's probe).
RESTAPI_PORT = 8008
# PGDATA is a directory inside the volume rather than the volume root: initdb and
# pg_basebackup create it with mode 0700, which postgres insists on, whatever mode the
# image gave the mount point.
DATA_SUBDIR = "patroni"
# initdb + post-bootstrap, or a base backup of the whole leader, must finish in this.
HEALTHY_TIMEOUT_S = 600
# On SIGTERM Patroni stops postgres (fast shutdown) and releases the leader key, so a
# standby takes over at once instead of after the ttl.
STOP_GRACE_S = 60


@dataclass(frozen=True)
class PatroniDatabaseArgs:
    config: DatabaseConfig
    network_name: pulumi.Input[str]
    # The private network's CIDR: pg_hba admits replication and app logins from it only.
    replication_cidr: str
    # `host:port` of every etcd member (Etcd.client_endpoints).
    etcd_endpoints: list[str]
    superuser_password: pulumi.Input[str]
    replication_password: pulumi.Input[str]
    app_password: pulumi.Input[str]
    # Protect (and retain) the data volumes.
    protect: bool
    # The etcd cluster: running before the first member asks it for the leader lock.
    depends_on: list[pulumi.Resource]
    # Signs the members' server certificate; the app verifies it with the same CA.
    certificate_authority: StackCertificateAuthority
    # Set: the post-bootstrap script creates postgres_exporter's pg_monitor role with it.
    monitor_password: pulumi.Input[str] | None = None
    # None: no WAL archiving and no backups (backups.enabled: false).
    backups: ClusterBackups | None = None


class PatroniDatabase(PostgresCluster):
    """`1 + config.replicas` equal Patroni members `<name>-0` ...; Patroni elects the leader."""

    def __init__(self, name: str, args: PatroniDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:PatroniDatabase", name, None, opts)
        config = args.config
        image = database_image(name, config, args.backups, "patroni", self)
        layout = data_layout(config.version)
        data_dir = f"{layout.volume_path}/{DATA_SUBDIR}"
        database = PrimarySettings(
            # Patroni creates and drops the slots itself (use_slots); these only size
            # max_replication_slots and max_wal_senders for the standbys.
            replica_slots=tuple(replica_slot_name(index) for index in range(config.replicas)),
            max_slot_wal_keep_size_mb=config.max_slot_wal_keep_size_mb,
            replication_cidr=args.replication_cidr,
            app_db=config.name,
            app_user=config.user,
            port=POSTGRES_PORT,
            tls=POSTGRES_TLS,
            monitoring_role=args.monitor_password is not None,
        )
        aliases = [f"{name}-{index}" for index in range(1 + config.replicas)]
        # One certificate naming every member: any of them may lead.
        certificate = args.certificate_authority.issue(f"{name}-server", dns_names=aliases, parent=self)
        tls_uploads = postgres_tls_uploads(certificate, args.certificate_authority.certificate_pem)

        # Patroni reads the first two itself; the post-bootstrap script reads the others.
        envs = [
            env_entry(SUPERUSER_PASSWORD_ENV, args.superuser_password),
            env_entry(REPLICATION_PASSWORD_ENV, args.replication_password),
            env_entry(APP_DB_PASSWORD_ENV, args.app_password),
            *([env_entry(MONITOR_DB_PASSWORD_ENV, args.monitor_password)] if args.monitor_password is not None else []),
        ]

        members: list[docker.Container] = []
        scheduled: list[ScheduledNode] = []
        backups = cluster_node_backups(name, aliases, args.backups, data_dir, args.certificate_authority,
                                       self) if args.backups else {}
        # Every member's pgBackRest settings name the same files, so any member's command creates the stanza.
        stanza_create = backups[aliases[0]].settings.command("stanza-create") if backups else None
        post_bootstrap = docker.ContainerUploadArgs(
            file=POST_BOOTSTRAP_SCRIPT, content=patroni_post_bootstrap_script(database, stanza_create=stanza_create),
            permissions="0755"
        )
        for alias in aliases:
            backup = backups.get(alias)
            uploads = [post_bootstrap]
            if backup:
                uploads += backup.uploads
            restore = None
            if backup and config.restore is not None:
                restore = RestoreSettings(backup=backup.settings, target=config.restore.target)
                uploads.append(docker.ContainerUploadArgs(file=RESTORE_SCRIPT, content=restore_script(restore),
                                                          permissions="0755"))
            settings = PatroniSettings(
                scope=name,
                node_name=alias,
                etcd_hosts=tuple(args.etcd_endpoints),
                restapi_listen=f"0.0.0.0:{RESTAPI_PORT}",
                restapi_connect_address=f"{alias}:{RESTAPI_PORT}",
                postgres_listen=f"0.0.0.0:{POSTGRES_PORT}",
                postgres_connect_address=f"{alias}:{POSTGRES_PORT}",
                data_dir=data_dir,
                database=database,
                synchronous_mode=config.synchronous_mode,
                # A restored cluster already has the app role and database.
                post_bootstrap_path=None if restore else POST_BOOTSTRAP_SCRIPT,
                archive_parameters=backup.archive_parameters if backup else {},
                pgbackrest_replica_command=replica_restore_command(backup.settings) if backup else None,
                restore_bootstrap_command=RESTORE_SCRIPT if restore else None,
            )
            members.append(
                data_node(
                    alias,
                    parent=self,
                    protect=args.protect,
                    network_name=args.network_name,
                    volume_path=layout.volume_path,
                    health_test=[HEALTH_PROBE],
                    healthy_timeout_s=HEALTHY_TIMEOUT_S,
                    stop_grace_s=STOP_GRACE_S,
                    # A chain: on first create the first member bootstraps the cluster
                    # and each next one copies a running leader; on an update the
                    # members are replaced one at a time, so the others keep serving
                    # (a leader that stops hands over to its sync standby).
                    depends_on=[*members[-1:], *args.depends_on],
                    image=image,
                    envs=[*envs, *(backup.envs if backup else [])],
                    uploads=[
                        docker.ContainerUploadArgs(file=CONFIG_FILE, content=render_patroni_yml(settings), permissions="0644"),
                        *uploads,
                        *tls_uploads,
                    ],
                    extra_volumes=backup.volumes if backup else (),
                    # Patroni is PID 1 and does not reap orphans (a killed pg_basebackup's
                    # children, say); Docker's init does.
                    init=True,
                )
            )

            if backup:
                scheduled.append(ScheduledNode(alias, members[-1], backup))
        if args.backups:
            BackupScheduler(f"{name}-backups", BackupSchedulerArgs(config=args.backups.config, nodes=scheduled, image=image,
                                                                   network_name=args.network_name),
                            pulumi.ResourceOptions(parent=self))

        # Any member may lead, so every one is listed, and any may be a standby.
        every_member = [f"{alias}:{POSTGRES_PORT}" for alias in aliases]
        self._publish(
            writer_endpoint=",".join(every_member),
            reader_endpoints=every_member,
            every_node=every_member,
            user=config.user,
            password=args.app_password,
            database=config.name,
            nodes=members,
        )
