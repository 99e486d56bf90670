"""Monitoring under mocks: the containers, their rendered configs and the stack outputs of
the shipped dev stack and its variants, the exporter role's secret, the receivers as
secrets, and the Azure action group's receivers from the same keys."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from components.backups import BACKUP_JOB, BACKUP_REPORT, CRONTAB, REPORT_DIR
from components.config import (
    ALERTMANAGER_IMAGE,
    BLACKBOX_EXPORTER_IMAGE,
    NODE_EXPORTER_IMAGE,
    POSTGRES_EXPORTER_IMAGE,
    PROMETHEUS_IMAGE,
)
from components.docker.monitoring import (
    ALERTMANAGER_CONFIG,
    BACKUP_REPORTS,
    EXPORTER_QUERIES,
    PROMETHEUS_CONFIG,
    RULE_FILE,
)
from components.render.alert_rules import AlertRuleSettings, hastack_alerts, runbook_anchor
from components.render.backup_report import NEWEST_BACKUP_METRIC
from components.render.postgres import MONITOR_DB_PASSWORD_ENV
from components.render.postgres_exporter import MONITOR_ROLE
from plan.engine import PROJECT_DIR, ProgramError, ProgramRun, is_secret, run_program, run_stack_file, stack_file_config
from plan.fakes import FAKE_SECRET_PREFIX
from tests.unit.azure.helpers import ACTION_GROUP, METRIC_ALERT, PROD, config_with
from tests.unit.mock_run import REMOTE_IMAGE, containers, env_of, upload
from tests.unit.test_dev_stack import DEV_STACK, run_dev_with


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return run_stack_file(DEV_STACK)


# Receivers' credentials must be set with --secret.
MONITORING_SECRET = ["hastack:monitoring"]


def dev_with(**overrides: dict) -> ProgramRun:
    """The dev stack with some `hastack:<key>` objects replaced, receivers' credentials as secrets."""
    return run_dev_with(secret_keys=MONITORING_SECRET, **overrides)


def scrape_targets(run: ProgramRun) -> dict[str, list[tuple[str, dict]]]:
    config = yaml.safe_load(upload(run.by_name("monitoring-prometheus"), PROMETHEUS_CONFIG))
    return {job["job_name"]: [(c["targets"][0], c.get("labels", {})) for c in job["static_configs"]]
            for job in config["scrape_configs"]}


def alert_names(run: ProgramRun) -> list[str]:
    rules = yaml.safe_load(upload(run.by_name("monitoring-prometheus"), RULE_FILE))
    return [rule["alert"] for rule in rules["groups"][0]["rules"]]


def test_dev_runs_prometheus_alertmanager_and_an_exporter_per_db_node_from_pinned_images(dev):
    names = [c.name for c in containers(dev, "monitoring-")]
    assert names == ["monitoring-alertmanager", "monitoring-backups", "monitoring-postgres-db-primary",
                     "monitoring-postgres-db-replica-0", "monitoring-prometheus", "monitoring-tls-probe",
                     "monitoring-volumes"]
    pulled = {r.inputs["name"] for r in dev.of_type(REMOTE_IMAGE)}
    assert {PROMETHEUS_IMAGE, ALERTMANAGER_IMAGE, POSTGRES_EXPORTER_IMAGE, NODE_EXPORTER_IMAGE,
            BLACKBOX_EXPORTER_IMAGE} <= pulled
    assert dev.outputs["prometheusUrl"] == "http://127.0.0.1:9090"
    assert dev.outputs["alertmanagerUrl"] == "http://127.0.0.1:9093"
    for name in names:
        assert all(port.get("ip") == "127.0.0.1" for port in dev.by_name(name).inputs.get("ports", []))
        assert dev.by_name(name).inputs["networksAdvanced"][0]["aliases"] == [name]


def test_dev_prometheus_scrapes_haproxy_every_app_replica_and_every_db_exporter(dev):
    targets = scrape_targets(dev)
    assert targets["haproxy"] == [("lb:8404", {})]
    assert targets["app"] == [("app-0:8000", {}), ("app-1:8000", {})]
    assert targets["postgres"] == [("monitoring-postgres-db-primary:9187", {"node": "db-primary"}),
                                   ("monitoring-postgres-db-replica-0:9187", {"node": "db-replica-0"})]
    assert targets["volumes"] == [("monitoring-volumes:9100", {})]
    assert targets["backups"] == [("monitoring-backups:9100", {})]
    # HAProxy's HTTPS listener, probed by the blackbox exporter for its certificate's expiry.
    assert targets["tls"] == [("lb:8443", {})]
    assert "patroni" not in targets
    config = yaml.safe_load(upload(dev.by_name("monitoring-prometheus"), PROMETHEUS_CONFIG))
    assert config["global"]["scrape_interval"] == "15s" and config["rule_files"] == [RULE_FILE]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["monitoring-alertmanager:9093"]
    assert "PatroniNoLeader" not in alert_names(dev) and "PostgresReplicaNotStreaming" in alert_names(dev)


def test_the_tls_probe_goes_through_the_blackbox_exporter_and_only_with_https_on(dev):
    config = yaml.safe_load(upload(dev.by_name("monitoring-prometheus"), PROMETHEUS_CONFIG))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "tls")
    assert job["metrics_path"] == "/probe" and job["params"] == {"module": ["tls_expiry"]}
    assert job["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "monitoring-tls-probe:9115"}
    probe = yaml.safe_load(upload(dev.by_name("monitoring-tls-probe"), "/etc/blackbox_exporter/config.yml"))
    assert probe["modules"]["tls_expiry"]["tcp"]["tls"] is True
    plain = dev_with(loadBalancer={"tls": {"enabled": False}})
    assert containers(plain, "monitoring-tls-probe") == [] and "tls" not in scrape_targets(plain)


def test_exporters_log_in_as_the_monitor_role_with_the_generated_secret(dev):
    primary = dev.by_name("db-primary")
    assert "IN ROLE pg_monitor" in upload(primary, "/docker-entrypoint-initdb.d/10-")
    password = env_of(primary)[MONITOR_DB_PASSWORD_ENV]
    assert password.startswith(FAKE_SECRET_PREFIX)
    for node in ("db-primary", "db-replica-0"):
        exporter = dev.by_name(f"monitoring-postgres-{node}")
        env = env_of(exporter)
        assert env["DATA_SOURCE_URI"] == (
            f"{node}:5432/postgres?sslmode=verify-full&sslrootcert=/etc/hastack/database-ca.crt")
        assert upload(exporter, "/etc/hastack/database-ca.crt") == dev.outputs["caCertificate"]
        assert env["DATA_SOURCE_USER"] == MONITOR_ROLE and env["DATA_SOURCE_PASS"] == password
        assert any(is_secret(entry) for entry in exporter.wire_inputs["envs"])
        assert "hastack_pg" in upload(exporter, EXPORTER_QUERIES)
        # The role exists (init script done) before an exporter logs in.
        assert dev.by_name("db-primary").urn in exporter.dependencies


def test_the_volume_exporter_mounts_every_db_data_volume_read_only(dev):
    volumes = dev.by_name("monitoring-volumes").inputs["volumes"]
    assert volumes == [
        {"volumeName": "db-primary-data", "containerPath": "/volumes/db-primary", "readOnly": True},
        {"volumeName": "db-replica-0-data", "containerPath": "/volumes/db-replica-0", "readOnly": True},
    ]


def test_every_scheduler_reports_its_backups_into_the_volume_the_textfile_exporter_reads(dev):
    """The crontab runs the report, which runs the job; the exporter serves the report's dir."""
    volume = "backups-reports"
    exporter = dev.by_name("monitoring-backups").inputs
    assert exporter["volumes"] == [{"volumeName": volume, "containerPath": BACKUP_REPORTS, "readOnly": True}]
    assert exporter["command"] == ["--collector.disable-defaults", "--collector.textfile",
                                   f"--collector.textfile.directory={BACKUP_REPORTS}"]
    for node in ("db-primary", "db-replica-0"):
        scheduler = dev.by_name(f"backup-{node}")
        assert {"volumeName": volume, "containerPath": REPORT_DIR} in scheduler.inputs["volumes"]
        assert f"{BACKUP_REPORT} ensure" in upload(scheduler, CRONTAB)
        report = upload(scheduler, BACKUP_REPORT)
        assert f"{BACKUP_JOB} \"$@\"" in report and f"{REPORT_DIR}/pgbackrest-db.prom" in report
    assert "PostgresBackupTooOld" in alert_names(dev)
    rules = yaml.safe_load(upload(dev.by_name("monitoring-prometheus"), RULE_FILE))["groups"][0]["rules"]
    too_old = next(rule for rule in rules if rule["alert"] == "PostgresBackupTooOld")
    assert too_old["expr"] == f'time() - max by (stanza) ({NEWEST_BACKUP_METRIC}{{job="backups"}}) > 93600'


def test_without_backups_there_is_no_report_exporter_and_no_backup_age_rule():
    run = dev_with(backups={"enabled": False})
    assert containers(run, "monitoring-backups") == [] and "backups" not in scrape_targets(run)
    assert "PostgresBackupTooOld" not in alert_names(run)
    monitoring_off = dev_with(monitoring={"enabled": False})
    assert not [r for r in monitoring_off.resources if r.name == "backups-reports"]


def test_patroni_adds_every_members_rest_metrics_and_the_leader_rule():
    run = dev_with(database={"failover": "patroni", "replicas": 2})
    targets = scrape_targets(run)
    assert targets["patroni"] == [(f"db-{i}:8008", {"node": f"db-{i}"}) for i in range(3)]
    assert [t for t, _ in targets["postgres"]] == [f"monitoring-postgres-db-{i}:9187" for i in range(3)]
    assert "PatroniNoLeader" in alert_names(run)
    assert "IN ROLE pg_monitor" in upload(run.by_name("db-0"), "/usr/local/bin/hastack-patroni-post-bootstrap")


def test_monitoring_disabled_declares_nothing_and_generates_no_monitor_password():
    run = dev_with(monitoring={"enabled": False})
    assert containers(run, "monitoring-") == []
    assert "prometheusUrl" not in run.outputs
    assert MONITOR_DB_PASSWORD_ENV not in env_of(run.by_name("db-primary"))
    assert "pg_monitor" not in upload(run.by_name("db-primary"), "/docker-entrypoint-initdb.d/10-")
    assert not [r for r in run.resources if r.name == "secrets-db-monitor"]


def test_receivers_reach_alertmanager_only_inside_a_secret():
    slack = "https://hooks.slack.com/services/T0/B0/verysecret"
    run = dev_with(monitoring={"receivers": {"slack": {"apiUrl": slack, "severities": ["critical"]},
                                                 "webhook": {"url": "https://ops.example.com/hook?token=abc"}}})
    alertmanager = run.by_name("monitoring-alertmanager")
    assert is_secret(alertmanager.wire_inputs["uploads"][0]["content"])
    config = yaml.safe_load(upload(alertmanager, ALERTMANAGER_CONFIG))
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["critical"]["slack_configs"][0]["api_url"] == slack
    assert "slack_configs" not in receivers["warning"]
    assert receivers["warning"]["webhook_configs"][0]["url"] == "https://ops.example.com/hook?token=abc"
    assert [route["receiver"] for route in config["route"]["routes"]] == ["critical", "warning"]


def test_azure_action_groups_get_the_email_and_webhook_receivers_by_their_severities():
    """The same keys as Alertmanager's, routed the same way: the webhook asks for critical only."""
    run = run_program(config_with(PROD, monitoring={"receivers": {
        "email": {"to": "sre@example.com"},
        "webhook": {"url": "https://ops.example.com/hook?token=abc", "severities": ["critical"]}}}), "prod",
        secret_keys=MONITORING_SECRET)
    groups = {group.name: group.inputs for group in run.of_type(ACTION_GROUP)}
    critical, warning = groups["hastack-prod-critical-alerts"], groups["hastack-prod-warning-alerts"]
    for group in (critical, warning):
        assert [r["emailAddress"] for r in group["emailReceivers"]] == ["oncall@example.com", "sre@example.com"]
    assert critical["webhookReceivers"][0]["serviceUri"] == "https://ops.example.com/hook?token=abc"
    assert is_secret(next(g for g in run.of_type(ACTION_GROUP) if g.name.endswith("critical-alerts"))
                     .wire_inputs["webhookReceivers"][0]["serviceUri"])
    assert warning.get("webhookReceivers", []) == []


def test_azure_alerts_when_the_primary_is_not_alive_for_a_minute_like_postgres_no_primary():
    """Flexible Server's `is_db_alive` (1/0, the minute's maximum): below 1 means a whole
    minute without an answering primary; critical, as the self-hosted PostgresNoPrimary."""
    run = run_program(config_with(PROD), "prod")
    alert = next(a for a in run.of_type(METRIC_ALERT) if a.inputs["criteria"]["allOf"][0]["metricName"] == "is_db_alive")
    criterion = alert.inputs["criteria"]["allOf"][0]
    assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == ("LessThan", 1, "Maximum")
    assert criterion["metricNamespace"] == "Microsoft.DBforPostgreSQL/flexibleServers"
    assert alert.inputs["windowSize"] == "PT1M" and alert.inputs["evaluationFrequency"] == "PT1M"
    assert alert.inputs["severity"] == 0


def test_a_slack_receiver_on_azure_is_one_clear_line_and_registers_nothing():
    with pytest.raises(ProgramError) as refused:
        run_program(config_with(PROD, monitoring={"receivers": {"slack": {"apiUrl": "https://hooks.slack.com/services/T/B/X"}}}),
                    "prod", secret_keys=MONITORING_SECRET)
    problems = str(refused.value).splitlines()[1:]
    assert len(problems) == 1 and "monitoring.receivers.slack is not available on platform 'azure'" in problems[0]
    assert refused.value.run.resources == []


def test_every_alert_has_a_runbook_section():
    headings = set(re.findall(r"^### (\S+)$", (PROJECT_DIR / "docs" / "runbooks.md").read_text(), flags=re.M))
    every_alert = hastack_alerts(AlertRuleSettings(runbook_base_url="docs/runbooks.md", expected_replicas=1, patroni=True))
    assert {runbook_anchor(a.name) for a in every_alert} <= {h.lower() for h in headings}
    documented = (PROJECT_DIR / "docs" / "monitoring.md").read_text()
    assert all(f"| `{a.name}` |" in documented for a in every_alert)


MALFORMED_MONITORING = [
    ("unknown-key", {"scrapeInterval": 5}, "hastack:monitoring.scrapeInterval: unknown key; allowed here: enabled, "),
    ("scrape-zero", {"scrapeIntervalS": 0},
     "hastack:monitoring.scrapeIntervalS: Input should be greater than or equal to 1 (got 0)"),
    ("ports-clash", {"prometheusPort": 9000, "alertmanagerPort": 9000},
     "hastack:monitoring: prometheusPort and alertmanagerPort must differ (both 9000)"),
    ("port-taken-by-lb", {"alertmanagerPort": 8404},
     "hastack: monitoring.alertmanagerPort (8404) is already loadBalancer.statsPort; pick a free host port"),
    ("port-taken-by-https", {"prometheusPort": 8443},
     "hastack: monitoring.prometheusPort (8443) is already loadBalancer.tls.port; pick a free host port"),
    # A credential is never echoed, not even when it is wrong.
    ("webhook-not-http", {"receivers": {"webhook": {"url": "ops.example.com/hook"}}},
     "hastack:monitoring.receivers.webhook.url: url must be an http:// or https:// URL"),
    ("slack-plain-http", {"receivers": {"slack": {"apiUrl": "http://hooks.slack.com/x"}}},
     "hastack:monitoring.receivers.slack.apiUrl: apiUrl must be an https:// Slack incoming-webhook URL"),
    ("severity-unknown", {"receivers": {"webhook": {"url": "https://x.example.com", "severities": ["page"]}}},
     "hastack:monitoring.receivers.webhook.severities.0: Input should be 'critical' or 'warning' (got 'page')"),
    ("severities-empty", {"receivers": {"webhook": {"url": "https://x.example.com", "severities": []}}},
     "hastack:monitoring.receivers.webhook.severities: severities must be a non-empty list of distinct values"),
    ("email-without-relay", {"receivers": {"email": {"to": "sre@example.com"}}},
     "hastack: monitoring.receivers.email needs sender and smarthost on the self-hosted platforms"),
    ("email-login-half", {"receivers": {"email": {"to": "sre@example.com", "sender": "h@example.com",
                                                  "smarthost": "smtp.example.com:587", "authUsername": "h"}}},
     "hastack:monitoring.receivers.email: authUsername and authPassword go together"),
    ("smarthost-no-port", {"receivers": {"email": {"to": "sre@example.com", "sender": "h@example.com",
                                                   "smarthost": "smtp.example.com"}}},
     "hastack:monitoring.receivers.email.smarthost: smarthost must be host:port"),
]


@pytest.mark.parametrize("monitoring, expected", [c[1:] for c in MALFORMED_MONITORING],
                         ids=[c[0] for c in MALFORMED_MONITORING])
def test_malformed_monitoring_config_is_one_clear_line_and_registers_nothing(monitoring, expected):
    raw = {**stack_file_config(DEV_STACK), "hastack:monitoring": json.dumps(monitoring)}
    with pytest.raises(ProgramError) as caught:
        run_program(raw, "dev", secret_keys=MONITORING_SECRET)
    problems = str(caught.value).splitlines()[1:]
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert "ops.example.com" not in str(caught.value)
    assert caught.value.run.resources == []


@pytest.mark.parametrize("receivers, path", [
    ({"slack": {"apiUrl": "https://hooks.slack.com/services/T/B/X"}}, "monitoring.receivers.slack.apiUrl"),
    ({"webhook": {"url": "https://ops.example.com/hook"}}, "monitoring.receivers.webhook.url"),
    ({"email": {"to": "sre@example.com", "sender": "h@example.com", "smarthost": "smtp.example.com:587",
                "authUsername": "h", "authPassword": "pw"}}, "monitoring.receivers.email.authPassword"),
])
def test_a_receiver_credential_in_plaintext_is_refused(receivers, path):
    raw = {**stack_file_config(DEV_STACK), "hastack:monitoring": json.dumps({"receivers": receivers})}
    with pytest.raises(ProgramError) as caught:
        run_program(raw, "dev")
    assert str(caught.value).splitlines()[1:] == [
        f"hastack:{path}: must be a Pulumi secret, not plaintext in the stack file; "
        f"set it with: pulumi config set --secret --path 'hastack:{path}' < FILE"]
    assert caught.value.run.resources == []


def test_a_counter_window_shorter_than_the_archivers_retry_pause_is_refused():
    with pytest.raises(ValueError, match="must exceed the archiver's 60 s retry pause"):
        AlertRuleSettings(runbook_base_url="x", expected_replicas=1, patroni=False, counter_window_s=30)
