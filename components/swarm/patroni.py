"""PostgreSQL with automatic failover on Swarm: 1 + N Patroni members, each a service
pinned to its own node with a node-local data volume.

Swarm does not fence a node it lost touch with: a partitioned member keeps running, and
its pinned replacement waits, Pending, until the node returns. What prevents two
primaries is Patroni's leader key in etcd (ttl): a leader that cannot renew it demotes
itself, and `synchronous_mode` means no commit was acknowledged that the new leader
lacks (docs/swarm.md, the partition drill).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.certificates import StackCertificateAuthority
from components.config import DatabaseConfig
from components.postgres_nodes import (
    DATABASE_CA_FILE,
    POSTGRES_PORT,
    POSTGRES_TLS,
    POSTGRES_UID,
    DataLayout,
    connection_urls,
    data_layout,
    server_settings,
)
from components.render.patroni import (
    REPLICATION_PASSWORD_ENV,
    SUPERUSER_PASSWORD_ENV,
    container_member,
    patroni_post_bootstrap_script,
    render_patroni_yml,
)
from components.render.postgres import APP_DB_PASSWORD_ENV, MONITOR_DB_PASSWORD_ENV, ServerTls
from components.swarm.backups import ClusterBackups
from components.swarm.common import (
    SECRETS_ENTRYPOINT,
    config_file,
    content_named_config,
    healthcheck,
    http_probe,
    node_local_volume,
    output_config,
    pinned_by_digest,
    pinned_member,
    secret_env_files,
    secret_file,
    secret_files_config,
    secret_path,
    service_name,
    swarm_secret,
)

CONFIG_FILE = "/etc/patroni/patroni.yml"
POST_BOOTSTRAP_SCRIPT = "/usr/local/bin/hastack-patroni-post-bootstrap"
RESTAPI_PORT = 8008
# The official image's TLS paths, but the key a Swarm secret (secrets live under /run/secrets).
SERVER_KEY_SECRET = "server.key"
SWARM_TLS = ServerTls(certificate_file=POSTGRES_TLS.certificate_file, key_file=secret_path(SERVER_KEY_SECRET),
                      ca_file=POSTGRES_TLS.ca_file)
DATA_SUBDIR = "patroni"
# initdb + post-bootstrap, or a base backup of the whole leader, must finish in this.
START_PERIOD_S = 600
# SIGINT: Patroni shuts down (patroni/daemon.py abstract_main catches KeyboardInterrupt,
# then stops postgres and releases the leader key); 60 s for postgres' checkpoint.
STOP_SIGNAL = "SIGINT"
STOP_GRACE_S = 60
# libpq parameters in the app's URLs. A lost machine answers nothing, not even a reset:
# without a bound, a connection attempt to its member waits out the connect timeout (at
# least 2 s a host) and a query on an open connection waits for TCP's own retries
# (minutes). tcp_user_timeout (libpq >= 12, Linux TCP_USER_TIMEOUT, which also bounds the
# SYN) fails both after about a second, so a client moves on to the next member of the URL.
# https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-TCP-USER-TIMEOUT
CLIENT_OPTIONS = {"tcp_user_timeout": "1000"}
# Patroni's DCS timing. A lost leader is replaced once its key expires (ttl after its last
# renewal, every loop_wait) plus Patroni's 2 s check of the lost member's API (failsafe_mode
# asks every member it knew, ha.py fetch_node_status), so each second of ttl is a second
# without writes. ttl 5 is the least Patroni's rule allows with loop_wait 1 and
# retry_timeout 2 (ttl >= loop_wait + 2 * retry_timeout, PatroniSettings). retry_timeout
# stays 2: Patroni gives each etcd request retry_timeout / 1 s members to try
# (dcs/etcd.py _calculate_timeouts), so with 1 it only ever asks one member, and in the
# partition drill the majority's Patroni kept asking the cut-off one and never promoted.
# Short timings cost no false failovers: a leader that loses etcd but reaches every member
# keeps its role (failsafe_mode), and a replica never promotes while the primary's API
# answers ("Primary is still alive", ha.py _is_healthiest_node). The DCS-blip drill holds it.
TTL_S = 5
LOOP_WAIT_S = 1
RETRY_TIMEOUT_S = 2


@dataclass(frozen=True)
class PatroniDatabaseArgs:
    config: DatabaseConfig
    # One member per node, in order (swarm.databaseNodes or the first 1 + replicas nodes).
    nodes: Sequence[str]
    image: str
    networks: Sequence[docker.Network]
    # The data overlay's subnet: pg_hba admits replication and app logins from it only.
    replication_cidr: str
    etcd_endpoints: Sequence[str]
    superuser_password: pulumi.Input[str]
    replication_password: pulumi.Input[str]
    app_password: pulumi.Input[str]
    # Signs the members' server certificate; the app verifies it with the same CA.
    certificate_authority: StackCertificateAuthority
    protect: bool
    depends_on: Sequence[pulumi.Resource] = ()
    # Set: the post-bootstrap script creates postgres_exporter's pg_monitor role with it.
    monitor_password: pulumi.Input[str] | None = None
    # None: no WAL archiving and no backups (backups.enabled: false).
    backups: ClusterBackups | None = None


class PatroniDatabase(pulumi.ComponentResource):
    """Members `<name>-0`...; every one listed in the app's URLs, as any may lead."""

    service_names: list[str]
    scope: str  # the cluster's name in etcd (Patroni's scope)
    # The members' image, pinned by digest, and where their data volume is mounted.
    image: pulumi.Output[str]
    layout: DataLayout
    members: list[str]
    writer_url: pulumi.Output[str]
    reader_url: pulumi.Output[str]

    def __init__(self, name: str, args: PatroniDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:PatroniDatabase", name, None, opts)
        config = args.config
        self.image = image = pinned_by_digest(f"{name}-image", args.image, self)
        self.layout = layout = data_layout(config.version)
        database = server_settings(config, args.replication_cidr, SWARM_TLS, monitoring_role=args.monitor_password is not None)
        self.service_names = member_service_names(name, len(args.nodes))
        self.scope = service_name(name)
        # One certificate naming every member (its service name, which clients and the
        # other members dial): any of them may lead. libpq checks it (verify-full).
        certificate = args.certificate_authority.issue(f"{name}-server", dns_names=self.service_names, parent=self)
        tls_files = [
            config_file(output_config(f"{name}-server-cert", certificate.certificate_pem, self), POSTGRES_TLS.certificate_file),
            config_file(output_config(f"{name}-ca-cert", args.certificate_authority.certificate_pem, self), POSTGRES_TLS.ca_file),
        ]
        # PostgreSQL refuses a key that is not 0600 and owned by its user.
        tls_key = secret_file(swarm_secret(f"{name}-server-key", certificate.private_key_pem, self), SERVER_KEY_SECRET, uid=POSTGRES_UID)
        passwords = {
            SUPERUSER_PASSWORD_ENV: args.superuser_password,
            REPLICATION_PASSWORD_ENV: args.replication_password,
            APP_DB_PASSWORD_ENV: args.app_password,
            **({MONITOR_DB_PASSWORD_ENV: args.monitor_password} if args.monitor_password is not None else {}),
        }
        password_env, secrets = secret_env_files(name, passwords, self, uid=POSTGRES_UID)
        # Every member's pgBackRest settings name the same files, so any member's command creates the stanza.
        stanza_create = args.backups.stanza_create if args.backups else None
        shared_configs = [
            config_file(content_named_config(f"{name}-post-bootstrap", f"{name}-post-bootstrap",
                                             patroni_post_bootstrap_script(database, stanza_create=stanza_create), self),
                        POST_BOOTSTRAP_SCRIPT, 0o555),
            secret_files_config(name, self),
        ]

        services: list[docker.Service] = []
        for index, (member, node) in enumerate(zip(self.service_names, args.nodes)):
            backup = args.backups.member(member) if args.backups else None
            # The member's own service name, which (dnsrr) resolves to its task on the data overlay.
            settings = container_member(
                name=member,
                restapi_port=RESTAPI_PORT,
                postgres_port=POSTGRES_PORT,
                scope=self.scope,
                etcd_hosts=tuple(args.etcd_endpoints),
                data_dir=f"{layout.volume_path}/{DATA_SUBDIR}",
                database=database,
                synchronous_mode=config.synchronous_mode,
                failsafe_mode=True,
                ttl_s=TTL_S,
                loop_wait_s=LOOP_WAIT_S,
                retry_timeout_s=RETRY_TIMEOUT_S,
                # A restored cluster already has the app role and database.
                post_bootstrap_path=None if backup and backup.restore_command else POST_BOOTSTRAP_SCRIPT,
                archive_parameters=backup.archive_parameters if backup else {},
                pgbackrest_replica_command=backup.replica_command if backup else None,
                restore_bootstrap_command=backup.restore_command if backup else None,
            )
            patroni_yml = content_named_config(f"{name}-{index}-patroni-yml", f"{name}-{index}-patroni", render_patroni_yml(settings), self)
            services.append(
                pinned_member(
                    f"{name}-{index}",
                    name=member,
                    node=node,
                    container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                        image=image,
                        commands=[SECRETS_ENTRYPOINT, "patroni", CONFIG_FILE],
                        env={**password_env, **(backup.env if backup else {})},
                        hostname=member,
                        secrets=[*secrets, tls_key, *(backup.secrets if backup else [])],
                        configs=[config_file(patroni_yml, CONFIG_FILE), *shared_configs, *tls_files, *(backup.configs if backup else [])],
                        mounts=[node_local_volume(f"{member}-data", layout.volume_path), *(backup.mounts if backup else [])],
                        # Liveness: Patroni itself answers. Never /primary or /health, which
                        # fail on a replica or while postgres restarts, and would make Swarm
                        # kill a member that is doing its job.
                        healthcheck=healthcheck(http_probe(RESTAPI_PORT, "/liveness", python="python3"),
                                                interval_s=5, timeout_s=3, retries=5, start_period_s=START_PERIOD_S),
                        stop_signal=STOP_SIGNAL,
                        stop_grace_period=f"{STOP_GRACE_S}s",
                        # Patroni does not reap orphans; Docker's init does.
                        init=True,
                    ),
                    networks=args.networks,
                    restart_delay_s=5,
                    parent=self,
                    protect=args.protect,
                    # A chain, as on Docker: members are updated one at a time, so a quorum
                    # of Postgres copies keeps serving (a leader that stops hands over).
                    depends_on=[*services[-1:], *args.depends_on],
                )
            )
        self.members = [f"{member}:{POSTGRES_PORT}" for member in self.service_names]
        self.writer_url, self.reader_url = connection_urls(config.user, args.app_password, self.members, config.name,
                                                           ca_file=DATABASE_CA_FILE, client_options=CLIENT_OPTIONS)
        self.register_outputs({"serviceNames": self.service_names, "members": self.members,
                               "writerUrl": self.writer_url, "readerUrl": self.reader_url})


def member_service_names(name: str, count: int) -> list[str]:
    """The service names of the `count` members of cluster `name`: each member's DNS name."""
    return [service_name(f"{name}-{index}") for index in range(count)]
