"""Diagnostics into Log Analytics, and metric alerts sent through two action groups.

The groups are the self-hosted Alertmanager's two severities (render/alertmanager.py):
`critical` takes the alerts of Azure severity 0-1, `warning` those of 2-4. Each gets
`azure.alertEmail`, and the `monitoring.receivers` email and webhook whose `severities`
name it: the same keys and the same routing as on Docker and Swarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.monitor as monitor

from components.config import ReceiversConfig

# Alertmanager's severities, and the Azure alert severities (0 critical ... 4 verbose) each takes.
SEVERITY_CLASSES = {"critical": range(0, 2), "warning": range(2, 5)}

POSTGRES_METRICS = "Microsoft.DBforPostgreSQL/flexibleServers"
GATEWAY_METRICS = "Microsoft.Network/applicationGateways"

# The brief's replication-lag alert: more than 1 MB of WAL not yet on a replica.
REPLICATION_LAG_BYTES = 1024 * 1024
# A replica more than a minute behind serves reads too stale for read-your-writes fallbacks.
REPLICA_LAG_SECONDS = 60
# Sustained above this, the next load spike (or a failover onto the standby) saturates.
CPU_PERCENT = 80
# Storage auto-grow is on; this catches growth that outpaces it.
STORAGE_PERCENT = 85
# Requests the gateway could not serve (backend unreachable, timeouts) per 5 minutes.
FAILED_REQUESTS = 10
# `is_db_alive` is 1 while the server answers, 0 when not, sampled every 20 s and kept as
# the minute's maximum: a minute at 0 is a minute with no primary. ZoneRedundant HA fails
# over within about two minutes, so this also reports each failover
# (https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-dbforpostgresql-flexibleservers-metrics,
# "Database Is Alive", Maximum, PT1M).
DB_ALIVE_WINDOW = "PT1M"


@dataclass(frozen=True)
class MetricAlert:
    """One static-threshold alert on one resource's platform metric."""

    name: str
    description: str
    scope: pulumi.Input[str]
    namespace: str
    metric: str
    aggregation: str
    threshold: float
    severity: int
    operator: str = "GreaterThan"
    window: str = "PT5M"


@dataclass(frozen=True)
class MonitoringArgs:
    resource_group_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    alert_email: str
    database_primary_id: pulumi.Input[str]
    database_replica_ids: list[pulumi.Input[str]]
    environment_id: pulumi.Input[str]
    gateway_id: pulumi.Input[str]
    # monitoring.receivers: its email and webhook join the action group (Azure has no Slack receiver).
    receivers: ReceiversConfig = ReceiversConfig()


class Monitoring(pulumi.ComponentResource):
    """Diagnostic settings for the DB, gateway and environment; the action groups; metric alerts."""

    action_group_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:azure:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        diagnosed = {
            "database": args.database_primary_id,
            "gateway": args.gateway_id,
            "environment": args.environment_id,
        }
        for purpose, resource_id in diagnosed.items():
            monitor.DiagnosticSetting(
                f"{name}-{purpose}-diagnostics",
                name="to-log-analytics",
                resource_uri=resource_id,
                workspace_id=args.workspace_id,
                # Resource-specific tables (e.g. AGWAccessLogs) instead of one AzureDiagnostics table.
                log_analytics_destination_type="Dedicated",
                logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)],
                metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)],
                opts=child,
            )

        self.action_group_ids = {
            severity: monitor.ActionGroup(
                f"{name}-{severity}-alerts",
                resource_group_name=args.resource_group_name,
                location="global",
                # At most 12 characters (the SMS and email sender name).
                group_short_name=f"hastack-{severity[:4]}",
                enabled=True,
                email_receivers=_email_receivers(args, severity),
                webhook_receivers=_webhook_receivers(args.receivers, severity),
                opts=child,
            ).id
            for severity in SEVERITY_CLASSES
        }

        for alert in _alerts(args):
            monitor.MetricAlert(
                f"{name}-{alert.name}",
                resource_group_name=args.resource_group_name,
                location="global",
                description=alert.description,
                severity=alert.severity,
                enabled=True,
                scopes=[alert.scope],
                evaluation_frequency="PT1M",
                window_size=alert.window,
                auto_mitigate=True,
                criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                    odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                    all_of=[
                        monitor.MetricCriteriaArgs(
                            criterion_type="StaticThresholdCriterion",
                            name=alert.metric,
                            metric_namespace=alert.namespace,
                            metric_name=alert.metric,
                            operator=alert.operator,
                            time_aggregation=alert.aggregation,
                            threshold=alert.threshold,
                        )
                    ],
                ),
                actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group_ids[severity_class(alert.severity)])],
                opts=child,
            )

        self.register_outputs({"actionGroupIds": self.action_group_ids})


def severity_class(severity: int) -> str:
    return next(name for name, severities in SEVERITY_CLASSES.items() if severity in severities)


def _email_receivers(args: MonitoringArgs, severity: str) -> list[monitor.MicrosoftCommonEmailReceiverArgs]:
    addresses = {"operators": args.alert_email}
    email = args.receivers.email
    if email is not None and email.to != args.alert_email and severity in email.severities:
        addresses["monitoring"] = email.to
    return [monitor.MicrosoftCommonEmailReceiverArgs(name=name, email_address=address, use_common_alert_schema=True)
            for name, address in addresses.items()]


def _webhook_receivers(receivers: ReceiversConfig, severity: str) -> list[monitor.WebhookReceiverArgs]:
    if receivers.webhook is None or severity not in receivers.webhook.severities:
        return []
    # The URL may carry a token.
    return [monitor.WebhookReceiverArgs(name="monitoring", service_uri=pulumi.Output.secret(receivers.webhook.url),
                                        use_common_alert_schema=True)]


def _alerts(args: MonitoringArgs) -> list[MetricAlert]:
    primary = args.database_primary_id
    alerts = [
        # The self-hosted PostgresNoPrimary.
        MetricAlert("pg-not-alive", "The PostgreSQL primary has not answered for a minute: no writes", primary,
                    POSTGRES_METRICS, "is_db_alive", "Maximum", 1, 0, operator="LessThan", window=DB_ALIVE_WINDOW),
        MetricAlert("pg-cpu", "PostgreSQL primary CPU above 80 %", primary, POSTGRES_METRICS,
                    "cpu_percent", "Average", CPU_PERCENT, 2),
        MetricAlert("pg-storage", "PostgreSQL primary storage above 85 %", primary, POSTGRES_METRICS,
                    "storage_percent", "Average", STORAGE_PERCENT, 1),
        MetricAlert("gateway-unhealthy-hosts", "The gateway's readiness probe fails on the app", args.gateway_id,
                    GATEWAY_METRICS, "UnhealthyHostCount", "Average", 0, 1),
        MetricAlert("gateway-failed-requests", "The gateway failed more than 10 requests in 5 minutes", args.gateway_id,
                    GATEWAY_METRICS, "FailedRequests", "Total", FAILED_REQUESTS, 2),
    ]  # fmt: skip
    if args.database_replica_ids:
        alerts.append(
            MetricAlert("pg-replication-lag-bytes", "A replica is more than 1 MB of WAL behind the primary", primary,
                        POSTGRES_METRICS, "physical_replication_delay_in_bytes", "Maximum", REPLICATION_LAG_BYTES, 2)
        )  # fmt: skip
    for index, replica in enumerate(args.database_replica_ids, start=1):
        alerts.append(
            MetricAlert(f"pg-replica-{index}-lag-seconds", f"Replica {index} is more than 60 s behind", replica,
                        POSTGRES_METRICS, "physical_replication_delay_in_seconds", "Maximum", REPLICA_LAG_SECONDS, 2)
        )  # fmt: skip
    return alerts
