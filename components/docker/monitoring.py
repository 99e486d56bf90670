"""Prometheus, Alertmanager and the exporters on the Docker platform (`monitoring.enabled`).

- one postgres_exporter per DB node, logging in over verified TLS as the pg_monitor role
  the database created, with hastack's custom queries (render/postgres_exporter.py);
- one node_exporter that mounts every DB data volume read-only, for the volume-full alert;
- with backups, one node_exporter whose textfile collector serves the backup schedulers'
  reports (render/backup_report.py) from their volume, read-only, for the backup-age alert;
- with HTTPS at the edge, one blackbox_exporter probing HAProxy's TLS listener, for the
  certificate-expiry alert;
- Prometheus scraping them, HAProxy's /metrics, every app replica's /metrics and, with
  Patroni, every member's REST /metrics; rules from render/alert_rules.py;
- Alertmanager with the receivers of `monitoring.receivers` (its config is a secret).

What to scrape and the rule settings come from components/monitoring.py, which the Swarm
platform shares. Prometheus and Alertmanager publish their ports on 127.0.0.1 of the
engine host only; the exporters publish nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import (
    ALERTMANAGER_IMAGE,
    BackupsConfig,
    BLACKBOX_EXPORTER_IMAGE,
    NODE_EXPORTER_IMAGE,
    POSTGRES_EXPORTER_IMAGE,
    PROMETHEUS_IMAGE,
    DatabaseConfig,
    MonitoringConfig,
)
from components.docker.common import (
    DATABASE_CA_FILE,
    POSTGRES_PORT,
    data_options,
    database_ca_upload,
    env_entry,
    network_attachment,
    pulled_image,
)
from components.docker.patroni import RESTAPI_PORT
from components.monitoring import ScrapeTargets, alert_rule_settings, alertmanager_settings, prometheus_settings
from components.render.alert_rules import VOLUME_MOUNT_ROOT, render_alert_rules
from components.render.alertmanager import render_alertmanager_yml
from components.render.blackbox import render_blackbox_yml
from components.render.postgres_exporter import MONITOR_ROLE, exporter_tls_query, render_exporter_queries
from components.render.prometheus import render_prometheus_yml

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
POSTGRES_EXPORTER_PORT = 9187
NODE_EXPORTER_PORT = 9100
BLACKBOX_PORT = 9115

PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
RULE_FILE = "/etc/prometheus/rules/hastack.yml"
ALERTMANAGER_CONFIG = "/etc/alertmanager/alertmanager.yml"
EXPORTER_QUERIES = "/etc/postgres_exporter/queries.yaml"
BLACKBOX_CONFIG = "/etc/blackbox_exporter/config.yml"
BACKUP_REPORTS = "/backup-reports"
# Only loopback on the engine host: the UIs have no authentication.
PUBLISH_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class MonitoringArgs:
    config: MonitoringConfig
    database: DatabaseConfig
    backups: BackupsConfig
    network_name: pulumi.Input[str]
    # The database's node aliases and their data volumes (PostgresCluster), in one order.
    db_nodes: Sequence[str]
    db_data_volumes: Sequence[pulumi.Input[str]]
    # `alias:port` of HAProxy's stats listener and of every app replica.
    haproxy_metrics: str
    app_targets: Sequence[str]
    # `alias:port` of every HTTPS listener whose certificate expiry is watched.
    tls_endpoints: Sequence[str]
    monitor_password: pulumi.Input[str]
    # The stack CA, which the DB nodes' certificates are signed by.
    database_ca_pem: pulumi.Input[str]
    protect: bool
    # The volume the backup schedulers write their reports into (None: no backups).
    backup_reports_volume: pulumi.Input[str] | None = None
    # The database: its pg_monitor role exists before the exporters log in.
    depends_on: Sequence[pulumi.Resource] = ()


class Monitoring(pulumi.ComponentResource):
    """The containers above; `prometheus_url` and `alertmanager_url` are on the engine host's loopback."""

    prometheus_config: str
    alert_rules: str
    prometheus_url: str
    alertmanager_url: str

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        exporters = self._postgres_exporters(args.db_nodes)
        volumes = self._volume_exporter()
        alertmanager = f"{name}-alertmanager"
        targets = ScrapeTargets(
            prometheus=f"localhost:{PROMETHEUS_PORT}",
            haproxy=[args.haproxy_metrics],
            apps=list(args.app_targets),
            postgres_exporters={node: f"{exporter}:{POSTGRES_EXPORTER_PORT}" for node, exporter in exporters.items()},
            # Patroni's REST API serves /metrics too.
            patroni={node: f"{node}:{RESTAPI_PORT}" for node in args.db_nodes}
            if args.database.failover == "patroni" else {},
            volumes=[f"{volumes}:{NODE_EXPORTER_PORT}"],
            backups=[f"{self._backup_report_exporter()}:{NODE_EXPORTER_PORT}"] if args.backup_reports_volume else [],
            alertmanagers=[f"{alertmanager}:{ALERTMANAGER_PORT}"],
            tls_endpoints=list(args.tls_endpoints),
            tls_prober=f"{self._tls_prober()}:{BLACKBOX_PORT}" if args.tls_endpoints else None,
        )
        self.prometheus_config = render_prometheus_yml(prometheus_settings(
            targets, scrape_interval_s=args.config.scrape_interval_s,
            evaluation_interval_s=args.config.evaluation_interval_s, rule_file=RULE_FILE, stack=pulumi.get_stack()))
        self.alert_rules = render_alert_rules(alert_rule_settings(args.config, args.database, args.backups))
        self._alertmanager(alertmanager)
        self._prometheus()
        self.prometheus_url = f"http://{PUBLISH_ADDRESS}:{args.config.prometheus_port}"
        self.alertmanager_url = f"http://{PUBLISH_ADDRESS}:{args.config.alertmanager_port}"
        self.register_outputs({"prometheusUrl": self.prometheus_url, "alertmanagerUrl": self.alertmanager_url})

    def _child(self, **extra) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **extra)

    def _postgres_exporters(self, nodes: Sequence[str]) -> dict[str, str]:
        """One exporter per DB node, named `<name>-postgres-<node>`; returns node -> alias."""
        image = pulled_image(f"{self._name}-postgres-exporter-image", POSTGRES_EXPORTER_IMAGE, self)
        queries = docker.ContainerUploadArgs(file=EXPORTER_QUERIES, content=render_exporter_queries(), permissions="0644")
        aliases = {}
        for node in nodes:
            alias = f"{self._name}-postgres-{node}"
            self._exporter(
                alias, image,
                envs=[
                    f"DATA_SOURCE_URI={node}:{POSTGRES_PORT}/postgres?{exporter_tls_query(DATABASE_CA_FILE)}",
                    f"DATA_SOURCE_USER={MONITOR_ROLE}",
                    env_entry("DATA_SOURCE_PASS", self._args.monitor_password),
                    f"PG_EXPORTER_EXTEND_QUERY_PATH={EXPORTER_QUERIES}",
                ],
                uploads=[queries, database_ca_upload(self._args.database_ca_pem)],
                depends_on=self._args.depends_on,
            )
            aliases[node] = alias
        return aliases

    def _volume_exporter(self) -> str:
        """node_exporter's filesystem collector over every DB data volume, mounted read-only."""
        alias = f"{self._name}-volumes"
        self._exporter(
            alias, pulled_image(f"{alias}-image", NODE_EXPORTER_IMAGE, self),
            command=["--collector.disable-defaults", "--collector.filesystem"],
            volumes=[
                docker.ContainerVolumeArgs(volume_name=volume, container_path=f"{VOLUME_MOUNT_ROOT}/{node}", read_only=True)
                for node, volume in zip(self._args.db_nodes, self._args.db_data_volumes, strict=True)
            ],
        )
        return alias

    def _backup_report_exporter(self) -> str:
        """node_exporter's textfile collector over the schedulers' backup reports, mounted read-only."""
        alias = f"{self._name}-backups"
        self._exporter(
            alias, pulled_image(f"{alias}-image", NODE_EXPORTER_IMAGE, self),
            command=["--collector.disable-defaults", "--collector.textfile",
                     f"--collector.textfile.directory={BACKUP_REPORTS}"],
            volumes=[docker.ContainerVolumeArgs(volume_name=self._args.backup_reports_volume,
                                                container_path=BACKUP_REPORTS, read_only=True)],
        )
        return alias

    def _tls_prober(self) -> str:
        """blackbox_exporter with the TLS-expiry module; Prometheus sends it the targets."""
        alias = f"{self._name}-tls-probe"
        self._exporter(
            alias, pulled_image(f"{alias}-image", BLACKBOX_EXPORTER_IMAGE, self),
            command=[f"--config.file={BLACKBOX_CONFIG}"],
            uploads=[docker.ContainerUploadArgs(file=BLACKBOX_CONFIG, content=render_blackbox_yml(), permissions="0644")],
        )
        return alias

    def _exporter(self, alias: str, image: docker.RemoteImage, *, depends_on: Sequence[pulumi.Resource] = (),
                  **container_args) -> docker.Container:
        """An exporter: reachable as `alias` on the private network only, restarted by Docker."""
        return docker.Container(
            alias,
            image=image.image_id,
            networks_advanced=[network_attachment(self._args.network_name, alias)],
            restart="unless-stopped",
            opts=self._child(depends_on=list(depends_on)),
            **container_args,
        )

    def _alertmanager(self, alias: str) -> None:
        # The receivers' URLs and passwords are in it.
        config = pulumi.Output.secret(render_alertmanager_yml(alertmanager_settings(self._args.config.receivers)))
        self._published_server(
            alias, ALERTMANAGER_IMAGE,
            command=[
                f"--config.file={ALERTMANAGER_CONFIG}",
                "--storage.path=/alertmanager",
                # One Alertmanager: no gossip port for peers.
                "--cluster.listen-address=",
            ],
            files={ALERTMANAGER_CONFIG: config},
            data_path="/alertmanager",
            port=ALERTMANAGER_PORT, host_port=self._args.config.alertmanager_port,
        )

    def _prometheus(self) -> None:
        self._published_server(
            f"{self._name}-prometheus", PROMETHEUS_IMAGE,
            command=[
                f"--config.file={PROMETHEUS_CONFIG}",
                "--storage.tsdb.path=/prometheus",
                f"--storage.tsdb.retention.time={self._args.config.retention_days}d",
            ],
            files={PROMETHEUS_CONFIG: self.prometheus_config, RULE_FILE: self.alert_rules},
            data_path="/prometheus",
            port=PROMETHEUS_PORT, host_port=self._args.config.prometheus_port,
        )

    def _published_server(self, alias: str, image_reference: str, *, command: list[str],
                          files: dict[str, pulumi.Input[str]], data_path: str, port: int, host_port: int) -> None:
        """Prometheus or Alertmanager: config files, its own data volume, and its port on the
        engine host's loopback."""
        image = pulled_image(f"{alias}-image", image_reference, self)
        data = docker.Volume(f"{alias}-data", driver="local", opts=data_options(self, self._args.protect))
        docker.Container(
            alias,
            image=image.image_id,
            command=command,
            uploads=[docker.ContainerUploadArgs(file=path, content=content, permissions="0644")
                     for path, content in files.items()],
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path=data_path)],
            ports=[docker.ContainerPortArgs(internal=port, external=host_port, ip=PUBLISH_ADDRESS)],
            networks_advanced=[network_attachment(self._args.network_name, alias)],
            restart="unless-stopped",
            # The same host port, and the data dir's lock: the old container must be gone first.
            opts=self._child(delete_before_replace=True),
        )
