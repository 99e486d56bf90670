"""The swarm platform: a Docker Swarm of 3+ nodes, reached through one manager, that
survives the loss of a whole node (docs/swarm.md)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from components.certificates import StackCertificateAuthority, edge_certificate
from components.config import StackConfig
from components.postgres_nodes import data_layout
from components.secrets import StackSecrets, StackSecretsArgs
from components.swarm.app import App, AppArgs
from components.swarm.backup_scheduler import BackupScheduler, BackupSchedulerArgs
from components.swarm.backups import ClusterBackups, ClusterBackupsArgs, report_volume
from components.swarm.etcd import Etcd, EtcdArgs
from components.swarm.etcd_leader_placement import EtcdLeaderPlacement, EtcdLeaderPlacementArgs
from components.swarm.load_balancer import STATS_PORT, TLS_LISTEN_PORT, LoadBalancer, LoadBalancerArgs
from components.swarm.monitoring import Monitoring, MonitoringArgs
from components.swarm.network import Networks, NetworksArgs
from components.swarm.patroni import DATA_SUBDIR, RESTAPI_PORT, PatroniDatabase, PatroniDatabaseArgs, member_service_names
from components.swarm.storage import shared_mount


def manager_options(host: str) -> pulumi.ResourceOptions:
    """Every resource goes through an explicit provider on the manager's engine, which
    schedules the services over the whole swarm; never the operator's local engine."""
    return pulumi.ResourceOptions(providers=[docker.Provider("swarm-manager", host=host)])


def build_swarm_stack(config: StackConfig) -> dict[str, Any]:
    """Declare the whole Swarm stack and return its stack outputs."""
    swarm = config.swarm
    manager = manager_options(swarm.host)
    monitoring = config.monitoring.enabled
    secrets = StackSecrets(
        "secrets", StackSecretsArgs(app_secret_names=config.app.generated_secrets, database_monitoring=monitoring)
    )
    ca = StackCertificateAuthority("ca", manager)
    networks = Networks("network", NetworksArgs(app_subnet=swarm.app_subnet, data_subnet=swarm.data_subnet), manager)
    db_nodes = swarm.database_member_nodes(1 + config.database.replicas)
    backups = cluster_backups(config, ca, manager)
    etcd = Etcd("etcd", EtcdArgs(nodes=swarm.etcd_member_nodes(), networks=[networks.data], protect=config.protect), manager)
    database = PatroniDatabase(
        "db",
        PatroniDatabaseArgs(
            config=config.database,
            nodes=db_nodes,
            image=swarm.patroni_image,
            networks=[networks.data],
            replication_cidr=networks.data_subnet,
            etcd_endpoints=etcd.client_endpoints,
            superuser_password=secrets.db_superuser_password,
            replication_password=secrets.db_replication_password,
            app_password=secrets.db_app_password,
            certificate_authority=ca,
            protect=config.protect,
            depends_on=[etcd],
            monitor_password=secrets.db_monitor_password,
            backups=backups,
        ),
        manager,
    )
    etcd_leader_placement = EtcdLeaderPlacement(
        "etcd-leader-placement",
        EtcdLeaderPlacementArgs(etcd_members=etcd.service_names, etcd_nodes=swarm.etcd_member_nodes(),
                                etcd_client_urls=etcd.client_urls, patroni_members=database.service_names,
                                patroni_nodes=db_nodes, scope=database.scope, image=database.image,
                                networks=[networks.data], depends_on=[database]),
        manager,
    )
    if backups:
        BackupScheduler(
            "backups",
            BackupSchedulerArgs(backups=backups, database="db", members=database.service_names, nodes=db_nodes,
                                image=database.image, data_mount_path=database.layout.volume_path,
                                networks=[networks.data], depends_on=[database]),
            manager,
        )
    app = App(
        "app",
        AppArgs(
            config=config.app,
            max_replicas_per_node=swarm.max_replicas_per_node,
            networks=[networks.app, networks.data],
            shared_mount=shared_mount(config.storage),
            database_url=database.writer_url,
            database_read_url=database.reader_url,
            secrets=secrets.app_secrets,
            database_ca_pem=ca.certificate_pem,
            depends_on=[database],
        ),
        manager,
    )
    load_balancer = LoadBalancer(
        "lb",
        LoadBalancerArgs(
            config=config.load_balancer,
            networks=[networks.app],
            app_service=app.service_name,
            app_port=app.port,
            app_replicas=config.app.replicas,
            health_path=config.health_check_path,
            read_health_path=config.app.read_health_path,
            depends_on=[app],
            # Clients enter at any node, by its name (`urls`).
            certificate=edge_certificate(config.load_balancer.tls, swarm.nodes, ca, ca),
        ),
        manager,
    )
    outputs = {
        # A client may enter at any node: each runs an HAProxy on its own address. With TLS,
        # plain HTTP on `port` only redirects to these.
        "urls": [f"https://{node}:{load_balancer.tls_port}" if load_balancer.tls_port else f"http://{node}:{load_balancer.port}"
                 for node in swarm.nodes],
        "statsUrls": [f"http://{node}:{load_balancer.stats_port}/stats" for node in swarm.nodes],
        "services": {
            "app": app.service_name,
            "lb": load_balancer.service_name,
            "db": database.service_names,
            "etcd": etcd.service_names,
            "etcdLeaderPlacement": etcd_leader_placement.service_name,
        },
        "dbMembers": database.members,
        # What the database's (and, without a configured certificate, HAProxy's) certificate
        # is signed by: trust it to verify them. Public.
        "caCertificate": ca.certificate_pem,
        "databaseUrl": database.writer_url,
        "databaseReadUrl": database.reader_url,
        "storageVolume": shared_mount(config.storage).source,
        "backupRepository": backups.location if backups else None,
    }
    if monitoring:
        monitors = Monitoring(
            "monitoring",
            MonitoringArgs(
                config=config.monitoring,
                database=config.database,
                backups=config.backups,
                app_network=networks.app,
                data_network=networks.data,
                db_members=database.service_names,
                db_nodes=db_nodes,
                backup_report_volumes=[report_volume(member) for member in database.service_names] if backups else [],
                patroni_port=RESTAPI_PORT,
                lb_service=load_balancer.service_name,
                lb_metrics_port=STATS_PORT,
                # Any one task's listener (the probe dials the first address): every task serves the one certificate.
                lb_tls_endpoint=f"tasks.{load_balancer.service_name}:{TLS_LISTEN_PORT}" if load_balancer.tls_port else None,
                app_service=app.service_name,
                app_port=app.port,
                monitor_password=secrets.db_monitor_password,
                database_ca_pem=ca.certificate_pem,
                depends_on=[database],
            ),
            manager,
        )
        # On the attachable monitoring overlay, not published: docs/monitoring.md "Swarm".
        outputs |= {"prometheusUrl": monitors.prometheus_url, "alertmanagerUrl": monitors.alertmanager_url,
                    "monitoringNetwork": monitors.network.name}
    return outputs


def cluster_backups(config: StackConfig, ca: StackCertificateAuthority, manager: pulumi.ResourceOptions) -> ClusterBackups | None:
    """pgBackRest for the Patroni members, or None with backups.enabled: false."""
    if not config.backups.enabled:
        return None
    return ClusterBackups("backups", ClusterBackupsArgs(
        config=config.backups, members=member_service_names("db", 1 + config.database.replicas),
        pg_path=f"{data_layout(config.database.version).volume_path}/{DATA_SUBDIR}",
        certificate_authority=ca, protect=config.protect, restore=config.database.restore), manager)
