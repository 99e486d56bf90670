"""The self-hosted monitoring design, shared by every platform that runs its own
Prometheus (Docker now, Swarm next) and by the loopback drill: from the stack config and
the addresses of what to scrape to the settings of the renderers in components/render/.

Nothing here declares resources; a platform module decides where each address comes from
(Docker aliases, Swarm service names, 127.0.0.1 ports) and uploads the rendered text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from components.config import BackupsConfig, DatabaseConfig, MonitoringConfig, ReceiversConfig
from components.render.alert_rules import DEFAULT_FOR_S, AlertRuleSettings
from components.render.alertmanager import AlertmanagerSettings, Email, Slack, Webhook
from components.render.blackbox import TLS_EXPIRY_MODULE
from components.render.prometheus import (
    JOB_ALERTMANAGER,
    JOB_APP,
    JOB_BACKUPS,
    JOB_HAPROXY,
    JOB_PATRONI,
    JOB_POSTGRES,
    JOB_PROMETHEUS,
    JOB_TLS,
    JOB_VOLUMES,
    DnsTargets,
    PrometheusSettings,
    ScrapeJob,
    ScrapeTarget,
)

@dataclass(frozen=True)
class ScrapeTargets:
    """`host:port` of everything Prometheus scrapes, as the platform reaches it."""

    prometheus: str
    # HAProxy's stats listener (/metrics), one per load balancer, and every app replica:
    # `host:port`, or every task of a Swarm service (DnsTargets).
    haproxy: Sequence[str | DnsTargets]
    apps: Sequence[str | DnsTargets]
    # DB node name -> its postgres_exporter.
    postgres_exporters: Mapping[str, str]
    # DB node name -> its Patroni REST API (empty without Patroni).
    patroni: Mapping[str, str] = field(default_factory=dict)
    # node_exporters that see the data volumes.
    volumes: Sequence[str] = ()
    # node_exporters serving the backup job's reports (render/backup_report.py).
    backups: Sequence[str] = ()
    alertmanagers: Sequence[str] = ()
    # HTTPS endpoints whose certificates the blackbox exporter `tls_prober` checks.
    tls_endpoints: Sequence[str] = ()
    tls_prober: str | None = None


def scrape_jobs(targets: ScrapeTargets) -> tuple[ScrapeJob, ...]:
    def plain(addresses: Sequence[str | DnsTargets]) -> tuple[ScrapeTarget, ...]:
        return tuple(ScrapeTarget(address) for address in addresses if isinstance(address, str))

    def discovered(addresses: Sequence[str | DnsTargets]) -> tuple[DnsTargets, ...]:
        return tuple(address for address in addresses if isinstance(address, DnsTargets))

    def per_node(addresses: Mapping[str, str]) -> tuple[ScrapeTarget, ...]:
        return tuple(ScrapeTarget(address, {"node": node}) for node, address in addresses.items())

    return (
        ScrapeJob(JOB_PROMETHEUS, plain([targets.prometheus])),
        ScrapeJob(JOB_ALERTMANAGER, plain(targets.alertmanagers)),
        ScrapeJob(JOB_HAPROXY, plain(targets.haproxy), discovered=discovered(targets.haproxy)),
        ScrapeJob(JOB_APP, plain(targets.apps), discovered=discovered(targets.apps)),
        ScrapeJob(JOB_POSTGRES, per_node(targets.postgres_exporters)),
        ScrapeJob(JOB_PATRONI, per_node(targets.patroni)),
        ScrapeJob(JOB_VOLUMES, plain(targets.volumes)),
        ScrapeJob(JOB_BACKUPS, plain(targets.backups)),
        *([ScrapeJob(JOB_TLS, plain(targets.tls_endpoints), prober=targets.tls_prober, module=TLS_EXPIRY_MODULE)]
          if targets.tls_prober else []),
    )


def prometheus_settings(targets: ScrapeTargets, *, scrape_interval_s: float, evaluation_interval_s: float,
                        rule_file: str, stack: str) -> PrometheusSettings:
    return PrometheusSettings(
        jobs=scrape_jobs(targets),
        scrape_interval_s=scrape_interval_s,
        evaluation_interval_s=evaluation_interval_s,
        rule_files=(rule_file,),
        alertmanagers=tuple(targets.alertmanagers),
        external_labels={"stack": stack},
    )


def alert_rule_settings(config: MonitoringConfig, database: DatabaseConfig, backups: BackupsConfig) -> AlertRuleSettings:
    return AlertRuleSettings(
        runbook_base_url=config.runbook_base_url,
        expected_replicas=database.replicas,
        patroni=database.failover == "patroni",
        backups=backups.enabled,
        archive_timeout_s=backups.archive_timeout_s,
        backup_max_age_s=config.backup_max_age_hours * 3600,
        # At least four scrapes, so increase() always has two samples to compare.
        counter_window_s=max(300, 4 * config.scrape_interval_s),
        for_s=dict(DEFAULT_FOR_S),
    )


def alertmanager_settings(receivers: ReceiversConfig) -> AlertmanagerSettings:
    """The notifiers of `monitoring.receivers`. The values include credentials: callers
    build this inside an Output that is secret (components/docker/monitoring.py)."""
    webhook, email, slack = receivers.webhook, receivers.email, receivers.slack
    return AlertmanagerSettings(
        webhooks=(Webhook(webhook.url, tuple(webhook.severities)),) if webhook else (),
        emails=(Email(email.to, email.sender or "", email.smarthost or "", email.auth_username, email.auth_password,
                      email.require_tls, tuple(email.severities)),) if email else (),
        slacks=(Slack(slack.api_url, slack.channel, tuple(slack.severities)),) if slack else (),
    )
