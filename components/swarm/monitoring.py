"""Prometheus, Alertmanager and the exporters on the Swarm platform (`monitoring.enabled`):
the Docker platform's design (components/monitoring.py, the same renderers), as services.

- one postgres_exporter service per Patroni member, logging in over verified TLS as the
  pg_monitor role the member's post-bootstrap script created, its password a Swarm secret
  (`DATA_SOURCE_PASS_FILE`);
- one node_exporter per member, pinned to the member's node, mounting its node-local data
  volume read-only, for the volume-full alert;
- with backups, one more node_exporter per member on that node, whose textfile collector
  serves the backup report its scheduler writes into `<member>-backup-reports`
  (components/swarm/backup_scheduler.py), read-only, for the backup-age alert;
- Prometheus scraping every HAProxy task and every app task through Docker's DNS
  (`tasks.<service>`: each task, never a VIP that answers as a different one each time),
  every member's Patroni REST /metrics and the exporters; rules from render/alert_rules.py;
- Alertmanager with the receivers of `monitoring.receivers` (its config is a Swarm secret);
- with HTTPS at the edge, one blackbox_exporter probing the LB's TLS listener, for the
  certificate-expiry alert.

Swarm publishes a port on every node's every address (ingress) or on the task's node's
every address (host mode); neither can bind 127.0.0.1 only
(https://docs.docker.com/engine/swarm/services/#publish-ports), and the UIs have no login.
So nothing here is published: Prometheus and Alertmanager answer on their own attachable
overlay, `monitoring`, where an operator forwards a manager's loopback to them
(docs/monitoring.md "Swarm"). The stack outputs are those in-network URLs.

Prometheus and Alertmanager are not pinned: if their node is lost, Swarm starts them on
another one, where their node-local volume is new (the alerts go on; the history restarts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import (
    ALERTMANAGER_IMAGE,
    BLACKBOX_EXPORTER_IMAGE,
    NODE_EXPORTER_IMAGE,
    POSTGRES_EXPORTER_IMAGE,
    PROMETHEUS_IMAGE,
    BackupsConfig,
    DatabaseConfig,
    MonitoringConfig,
)
from components.monitoring import ScrapeTargets, alert_rule_settings, alertmanager_settings, prometheus_settings
from components.postgres_nodes import DATABASE_CA_FILE, POSTGRES_PORT
from components.render.alert_rules import VOLUME_MOUNT_ROOT, render_alert_rules
from components.render.alertmanager import render_alertmanager_yml
from components.render.blackbox import render_blackbox_yml
from components.render.postgres_exporter import MONITOR_ROLE, exporter_tls_query, render_exporter_queries
from components.render.prometheus import DnsTargets, render_prometheus_yml
from components.swarm.common import (
    attached,
    config_file,
    content_named_config,
    node_local_volume,
    on_node,
    output_config,
    pinned_by_digest,
    secret_file,
    secret_path,
    service_name,
    swarm_secret,
)

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
POSTGRES_EXPORTER_PORT = 9187
NODE_EXPORTER_PORT = 9100
BLACKBOX_PORT = 9115

PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
RULE_FILE = "/etc/prometheus/rules/hastack.yml"
EXPORTER_QUERIES = "/etc/postgres_exporter/queries.yaml"
ALERTMANAGER_SECRET = "alertmanager.yml"
MONITOR_PASSWORD_SECRET = "monitor-password"
BACKUP_REPORTS = "/backup-reports"
BLACKBOX_CONFIG = "/etc/blackbox_exporter/config.yml"


@dataclass(frozen=True)
class MonitoringArgs:
    config: MonitoringConfig
    database: DatabaseConfig
    # The app and LB overlay, and the database overlay.
    app_network: docker.Network
    data_network: docker.Network
    # Patroni members' service names and the nodes they are pinned to, in one order; each
    # keeps its data in the node-local volume `<member>-data` (components/swarm/patroni.py).
    db_members: Sequence[str]
    db_nodes: Sequence[str]
    patroni_port: int
    # The LB and app services, and the ports their tasks serve /metrics on.
    lb_service: str
    lb_metrics_port: int
    app_service: str
    app_port: int
    monitor_password: pulumi.Input[str]
    database_ca_pem: pulumi.Input[str]
    backups: BackupsConfig
    # The node-local volume of each member's backup report, in db_members' order (empty: no backups).
    backup_report_volumes: Sequence[str] = ()
    # The LB's HTTPS listener on the app overlay (`<service>:<port>`); None without TLS.
    lb_tls_endpoint: str | None = None
    # The database: its pg_monitor role exists before the exporters log in.
    depends_on: Sequence[pulumi.Resource] = ()


class Monitoring(pulumi.ComponentResource):
    """The services above; `prometheus_url` and `alertmanager_url` answer on the monitoring overlay."""

    prometheus_config: str
    alert_rules: str
    prometheus_url: str
    alertmanager_url: str

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        # Attachable, so an operator's forwarding container can join it (and only it).
        self.network = docker.Network(f"{name}-network", driver="overlay", attachable=True,
                                      opts=pulumi.ResourceOptions(parent=self))
        prometheus, alertmanager = service_name(f"{name}-prometheus"), service_name(f"{name}-alertmanager")
        exporters = self._postgres_exporters()
        volumes = self._volume_exporters()
        targets = ScrapeTargets(
            prometheus=f"localhost:{PROMETHEUS_PORT}",
            haproxy=[DnsTargets(f"tasks.{args.lb_service}", args.lb_metrics_port)],
            apps=[DnsTargets(f"tasks.{args.app_service}", args.app_port)],
            postgres_exporters={member: f"{exporter}:{POSTGRES_EXPORTER_PORT}" for member, exporter in exporters.items()},
            patroni={member: f"{member}:{args.patroni_port}" for member in args.db_members},
            volumes=[f"{volume}:{NODE_EXPORTER_PORT}" for volume in volumes],
            backups=[f"{exporter}:{NODE_EXPORTER_PORT}" for exporter in self._backup_report_exporters()],
            alertmanagers=[f"{alertmanager}:{ALERTMANAGER_PORT}"],
            tls_endpoints=[args.lb_tls_endpoint] if args.lb_tls_endpoint else [],
            tls_prober=f"{self._tls_prober()}:{BLACKBOX_PORT}" if args.lb_tls_endpoint else None,
        )
        self.prometheus_config = render_prometheus_yml(prometheus_settings(
            targets, scrape_interval_s=args.config.scrape_interval_s,
            evaluation_interval_s=args.config.evaluation_interval_s, rule_file=RULE_FILE, stack=pulumi.get_stack()))
        self.alert_rules = render_alert_rules(alert_rule_settings(args.config, args.database, args.backups))
        self._alertmanager(alertmanager)
        self._prometheus(prometheus)
        self.prometheus_url = f"http://{prometheus}:{PROMETHEUS_PORT}"
        self.alertmanager_url = f"http://{alertmanager}:{ALERTMANAGER_PORT}"
        self.register_outputs({"prometheusUrl": self.prometheus_url, "alertmanagerUrl": self.alertmanager_url,
                               "networkName": self.network.name})

    def _postgres_exporters(self) -> dict[str, str]:
        """One exporter per member, `<name>-postgres-<index>`; returns member -> service name."""
        args = self._args
        image = pinned_by_digest(f"{self._name}-postgres-exporter-image", POSTGRES_EXPORTER_IMAGE, self)
        queries = content_named_config(f"{self._name}-exporter-queries", f"{self._name}-exporter-queries",
                                       render_exporter_queries(), self)
        ca = output_config(f"{self._name}-database-ca", args.database_ca_pem, self)
        password = swarm_secret(f"{self._name}-monitor-password", args.monitor_password, self)
        exporters = {}
        for index, member in enumerate(args.db_members):
            exporter = service_name(f"{self._name}-postgres-{index}")
            self._service(
                f"{self._name}-postgres-{index}", exporter, image,
                env={
                    "DATA_SOURCE_URI": f"{member}:{POSTGRES_PORT}/postgres?{exporter_tls_query(DATABASE_CA_FILE)}",
                    "DATA_SOURCE_USER": MONITOR_ROLE,
                    "DATA_SOURCE_PASS_FILE": secret_path(MONITOR_PASSWORD_SECRET),
                    "PG_EXPORTER_EXTEND_QUERY_PATH": EXPORTER_QUERIES,
                },
                configs=[config_file(queries, EXPORTER_QUERIES), config_file(ca, DATABASE_CA_FILE)],
                secrets=[secret_file(password, MONITOR_PASSWORD_SECRET)],
                networks=[args.data_network],
                depends_on=args.depends_on,
            )
            exporters[member] = exporter
        return exporters

    def _volume_exporters(self) -> list[str]:
        """node_exporter's filesystem collector beside each member, on its node, over its
        node-local data volume (the same named volume), read-only."""
        return self._node_exporters("volumes", ["--collector.filesystem"], [
            node_local_volume(f"{member}-data", f"{VOLUME_MOUNT_ROOT}/{member}", read_only=True)
            for member in self._args.db_members])

    def _backup_report_exporters(self) -> list[str]:
        """node_exporter's textfile collector beside each member, on its node, over its
        scheduler's report volume, read-only. Every scheduler reports the same repository;
        the backup-age rule takes the newest over all of them, so a lost node costs nothing."""
        if not self._args.backup_report_volumes:
            return []
        return self._node_exporters("backups", ["--collector.textfile", f"--collector.textfile.directory={BACKUP_REPORTS}"], [
            node_local_volume(volume, BACKUP_REPORTS, read_only=True) for volume in self._args.backup_report_volumes])

    def _node_exporters(self, role: str, collectors: Sequence[str],
                        mounts: Sequence[docker.ServiceTaskSpecContainerSpecMountArgs]) -> list[str]:
        """`<name>-<role>-<i>`: node_exporter with only `collectors`, pinned to member i's
        node (a node-local volume is that node's), over `mounts[i]`."""
        args = self._args
        image = pinned_by_digest(f"{self._name}-{role}-image", NODE_EXPORTER_IMAGE, self)
        names = []
        for index, (mount, node) in enumerate(zip(mounts, args.db_nodes, strict=True)):
            exporter = service_name(f"{self._name}-{role}-{index}")
            self._service(
                f"{self._name}-{role}-{index}", exporter, image,
                args=["--collector.disable-defaults", *collectors],
                mounts=[mount],
                networks=[args.data_network],
                placement=on_node(node),
            )
            names.append(exporter)
        return names

    def _tls_prober(self) -> str:
        """blackbox_exporter with the TLS-expiry module, on the app overlay where the LB listens;
        Prometheus sends it the target."""
        name = service_name(f"{self._name}-tls-probe")
        config = content_named_config(f"{self._name}-blackbox-yml", f"{self._name}-blackbox", render_blackbox_yml(), self)
        self._service(
            f"{self._name}-tls-probe", name, pinned_by_digest(f"{self._name}-tls-probe-image", BLACKBOX_EXPORTER_IMAGE, self),
            args=[f"--config.file={BLACKBOX_CONFIG}"],
            configs=[config_file(config, BLACKBOX_CONFIG)],
            networks=[self._args.app_network],
        )
        return name

    def _alertmanager(self, name: str) -> None:
        # The receivers' URLs and passwords are in it.
        config = swarm_secret(f"{self._name}-alertmanager-config",
                              render_alertmanager_yml(alertmanager_settings(self._args.config.receivers)), self)
        self._service(
            f"{self._name}-alertmanager", name, pinned_by_digest(f"{self._name}-alertmanager-image", ALERTMANAGER_IMAGE, self),
            args=[f"--config.file={secret_path(ALERTMANAGER_SECRET)}", "--storage.path=/alertmanager",
                  # One Alertmanager: no gossip port for peers.
                  "--cluster.listen-address="],
            secrets=[secret_file(config, ALERTMANAGER_SECRET)],
            mounts=[node_local_volume(f"{name}-data", "/alertmanager")],
            networks=[self.network],
        )

    def _prometheus(self, name: str) -> None:
        args = self._args
        config = content_named_config(f"{self._name}-prometheus-yml", f"{self._name}-prometheus", self.prometheus_config, self)
        rules = content_named_config(f"{self._name}-rules", f"{self._name}-rules", self.alert_rules, self)
        self._service(
            f"{self._name}-prometheus", name, pinned_by_digest(f"{self._name}-prometheus-image", PROMETHEUS_IMAGE, self),
            args=[f"--config.file={PROMETHEUS_CONFIG}", "--storage.tsdb.path=/prometheus",
                  f"--storage.tsdb.retention.time={args.config.retention_days}d"],
            configs=[config_file(config, PROMETHEUS_CONFIG), config_file(rules, RULE_FILE)],
            mounts=[node_local_volume(f"{name}-data", "/prometheus")],
            # The LB and the app on `app`, the database on `data`, Alertmanager and operators on `monitoring`.
            networks=[args.app_network, args.data_network, self.network],
        )

    def _service(self, resource_name: str, name: str, image: pulumi.Input[str], *, networks: Sequence[docker.Network],
                 placement: docker.ServiceTaskSpecPlacementArgs | None = None,
                 depends_on: Sequence[pulumi.Resource] = (), **container: object) -> docker.Service:
        """One task, restarted by Swarm, reachable by its service name on `networks` only.
        Stop-first: a new task must not share the data dir (and its lock) with the old one."""
        return docker.Service(
            resource_name,
            name=name,
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(image=image, **container),
                networks_advanceds=attached(networks),
                placement=placement,
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s"),
            ),
            update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first", failure_action="rollback"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

