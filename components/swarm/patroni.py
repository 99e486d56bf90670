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
from components.render.secret_files import FILE_SUFFIX, secret_files_entrypoint
from components.swarm.common import (
    config_file,
    content_named_config,
    healthcheck,
    http_probe,
    node_local_volume,
    output_config,
    pinned_by_digest,
    pinned_member,
    secret_file,
    secret_path,
    service_name,
    swarm_secret,
)

CONFIG_FILE = "/etc/patroni/patroni.yml"
POST_BOOTSTRAP_SCRIPT = "/usr/local/bin/hastack-patroni-post-bootstrap"
SECRETS_ENTRYPOINT = "/usr/local/bin/hastack-secret-files"
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


class PatroniDatabase(pulumi.ComponentResource):
    """Members `<name>-0`...; every one listed in the app's URLs, as any may lead."""

    service_names: list[str]
    members: list[str]
    writer_url: pulumi.Output[str]
    reader_url: pulumi.Output[str]

    def __init__(self, name: str, args: PatroniDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:PatroniDatabase", name, None, opts)
        config = args.config
        image = pinned_by_digest(f"{name}-image", args.image, self)
        layout = data_layout(config.version)
        database = server_settings(config, args.replication_cidr, SWARM_TLS, monitoring_role=args.monitor_password is not None)
        self.service_names = [service_name(f"{name}-{index}") for index in range(len(args.nodes))]
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
        secrets = [
            secret_file(swarm_secret(f"{name}-{env_name.lower().replace('_', '-')}", value, self), env_name, uid=POSTGRES_UID)
            for env_name, value in passwords.items()
        ]
        shared_configs = [
            config_file(content_named_config(f"{name}-post-bootstrap", f"{name}-post-bootstrap", patroni_post_bootstrap_script(database), self),
                        POST_BOOTSTRAP_SCRIPT, 0o555),
            config_file(content_named_config(f"{name}-secret-files", f"{name}-secret-files", secret_files_entrypoint(), self),
                        SECRETS_ENTRYPOINT, 0o555),
        ]

        services: list[docker.Service] = []
        for index, (member, node) in enumerate(zip(self.service_names, args.nodes)):
            # The member's own service name, which (dnsrr) resolves to its task on the data overlay.
            settings = container_member(
                name=member,
                restapi_port=RESTAPI_PORT,
                postgres_port=POSTGRES_PORT,
                scope=service_name(name),
                etcd_hosts=tuple(args.etcd_endpoints),
                data_dir=f"{layout.volume_path}/{DATA_SUBDIR}",
                database=database,
                synchronous_mode=config.synchronous_mode,
                failsafe_mode=True,
                post_bootstrap_path=POST_BOOTSTRAP_SCRIPT,
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
                        env={f"{env_name}{FILE_SUFFIX}": secret_path(env_name) for env_name in passwords},
                        hostname=member,
                        secrets=[*secrets, tls_key],
                        configs=[config_file(patroni_yml, CONFIG_FILE), *shared_configs, *tls_files],
                        mounts=[node_local_volume(f"{member}-data", layout.volume_path)],
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
                                                           ca_file=DATABASE_CA_FILE)
        self.register_outputs({"serviceNames": self.service_names, "members": self.members,
                               "writerUrl": self.writer_url, "readerUrl": self.reader_url})
