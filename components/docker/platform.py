"""The Docker platform: wires secrets, network, storage, database, app and load balancer."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_docker as docker

from components.backups import Backups, BackupsArgs, repository_location
from components.certificates import StackCertificateAuthority, edge_certificate
from components.config import StackConfig
from components.docker.app import App, AppArgs
from components.docker.backups import BackupRepository, BackupRepositoryArgs, ClusterBackups
from components.docker.common import PostgresCluster, database_ca_upload
from components.docker.database import Database, DatabaseArgs
from components.docker.etcd import Etcd, EtcdArgs
from components.docker.load_balancer import STATS_PORT, TLS_LISTEN_PORT, LoadBalancer, LoadBalancerArgs
from components.docker.monitoring import Monitoring, MonitoringArgs
from components.docker.network import Network, NetworkArgs
from components.docker.patroni import PatroniDatabase, PatroniDatabaseArgs
from components.docker.storage import Storage, StorageArgs
from components.secrets import StackSecrets, StackSecretsArgs

# The load balancer's component name, which is also its alias on the private network.
LOAD_BALANCER = "lb"


def engine_options(host: str | None) -> pulumi.ResourceOptions | None:
    """Target a remote engine (ssh://user@host, tcp://host:port) through an explicit
    provider that the components hand down to every child; None: the local engine."""
    if host is None:
        return None
    return pulumi.ResourceOptions(providers=[docker.Provider("docker-engine", host=host)])


def published_host(host: str | None) -> str:
    """Where the load balancer's published ports are reachable from the operator's machine."""
    if host is None or host.startswith(("unix://", "npipe://")):
        return "localhost"
    return urlsplit(host).hostname or "localhost"


def self_hosted_database(
    config: StackConfig,
    network: Network,
    secrets: StackSecrets,
    ca: StackCertificateAuthority,
    engine: pulumi.ResourceOptions | None,
    backups: ClusterBackups | None,
) -> PostgresCluster:
    """PostgreSQL as `database.failover` asks: a primary and streaming replicas promoted by
    hand, or Patroni members over a three-member etcd cluster that fail over by themselves.
    Either way, with backups enabled every node archives into the pgBackRest repository."""
    if config.database.failover == "manual":
        return Database(
            "db",
            DatabaseArgs(
                config=config.database,
                network_name=network.name,
                replication_cidr=network.subnet,
                superuser_password=secrets.db_superuser_password,
                replication_password=secrets.db_replication_password,
                app_password=secrets.db_app_password,
                protect=config.protect,
                certificate_authority=ca,
                monitor_password=secrets.db_monitor_password,
                backups=backups,
            ),
            engine,
        )
    etcd = Etcd("etcd", EtcdArgs(network_name=network.name, protect=config.protect), engine)
    return PatroniDatabase(
        "db",
        PatroniDatabaseArgs(
            config=config.database,
            network_name=network.name,
            replication_cidr=network.subnet,
            etcd_endpoints=etcd.client_endpoints,
            superuser_password=secrets.db_superuser_password,
            replication_password=secrets.db_replication_password,
            app_password=secrets.db_app_password,
            protect=config.protect,
            depends_on=[etcd],
            certificate_authority=ca,
            monitor_password=secrets.db_monitor_password,
            backups=backups,
        ),
        engine,
    )


def cluster_backups(config: StackConfig, engine: pulumi.ResourceOptions | None) -> ClusterBackups | None:
    """The passphrase and settings (shared component) and the repository volume (Docker)."""
    if not config.backups.enabled:
        return None
    backups = Backups("backups", BackupsArgs(config=config.backups, stanza="db", protect=config.protect))
    repository = BackupRepository("backups", BackupRepositoryArgs(config=config.backups, protect=config.protect,
                                                                  reports=config.monitoring.enabled), engine)
    return ClusterBackups(config=config.backups, backups=backups, repository=repository, protect=config.protect)


def build_docker_stack(config: StackConfig) -> dict[str, Any]:
    """Declare the whole Docker stack and return its stack outputs."""
    engine = engine_options(config.docker.host)
    address = published_host(config.docker.host)
    monitoring = config.monitoring.enabled
    secrets = StackSecrets(
        "secrets", StackSecretsArgs(app_secret_names=config.app.generated_secrets, database_monitoring=monitoring)
    )
    ca = StackCertificateAuthority("ca")
    network = Network("network", NetworkArgs(subnet=config.docker.subnet), engine)
    storage = Storage("storage", StorageArgs(config=config.storage, protect=config.protect), engine)
    backups = cluster_backups(config, engine)
    database = self_hosted_database(config, network, secrets, ca, engine, backups)
    app = App(
        "app",
        AppArgs(
            config=config.app,
            network_name=network.name,
            shared_volume=storage.mount(),
            database_url=database.writer_url,
            database_read_url=database.reader_url,
            secrets=secrets.app_secrets,
            # Readiness needs the database, and `wait` needs readiness.
            depends_on=[database],
            files=[database_ca_upload(ca.certificate_pem)],
        ),
        engine,
    )
    load_balancer = LoadBalancer(
        LOAD_BALANCER,
        LoadBalancerArgs(
            config=config.load_balancer,
            network_name=network.name,
            backend_aliases=app.aliases,
            backend_port=app.port,
            health_path=config.health_check_path,
            read_health_path=config.app.read_health_path,
            depends_on=[app],
            # Where the stack is reached, and this machine's own names for a local engine.
            certificate=edge_certificate(config.load_balancer.tls, ["127.0.0.1", address, "localhost"], ca, ca),
        ),
        engine,
    )
    outputs = {
        "url": f"https://{address}:{load_balancer.tls_port}" if load_balancer.tls_port else f"http://{address}:{load_balancer.port}",
        # What the database's (and, without a configured certificate, HAProxy's)
        # certificate is signed by: trust it to verify them. Public.
        "caCertificate": ca.certificate_pem,
        # `stats uri` in the rendered haproxy.cfg; /metrics on the same port is Prometheus.
        "statsUrl": f"http://{address}:{load_balancer.stats_port}/stats",
        "appReplicas": app.container_names,
        "dbWriterEndpoint": database.writer_endpoint,
        "dbReaderEndpoints": database.reader_endpoints,
        "databaseUrl": database.writer_url,
        "databaseReadUrl": database.reader_url,
        "storageVolume": storage.volume_name,
        "backupRepository": backup_repository_output(config),
    }
    if monitoring:
        monitors = Monitoring(
            "monitoring",
            MonitoringArgs(
                config=config.monitoring,
                database=config.database,
                backups=config.backups,
                network_name=network.name,
                db_nodes=database.node_aliases,
                db_data_volumes=database.data_volume_names,
                haproxy_metrics=f"{LOAD_BALANCER}:{STATS_PORT}",
                app_targets=[f"{alias}:{app.port}" for alias in app.aliases],
                tls_endpoints=[f"{LOAD_BALANCER}:{TLS_LISTEN_PORT}"] if load_balancer.tls_port else [],
                monitor_password=secrets.db_monitor_password,
                database_ca_pem=ca.certificate_pem,
                protect=config.protect,
                backup_reports_volume=backups.repository.report_volume_name if backups else None,
                depends_on=[database],
            ),
            engine,
        )
        # Published on the engine host's loopback: from elsewhere, `ssh -L 9090:127.0.0.1:9090 <engine host>`.
        outputs |= {"prometheusUrl": monitors.prometheus_url, "alertmanagerUrl": monitors.alertmanager_url}
    return outputs


def backup_repository_output(config: StackConfig) -> str | None:
    """Where the backups are, for the runbooks: the volume, bucket or container."""
    return repository_location(config.backups, "volume backups-repository") if config.backups.enabled else None
