"""The rendered monitoring configs, checked by Debian's real promtool 2.42 and amtool 0.25,
and every alert rule unit-tested by `promtool test rules`: each alert fires on the failure
it names and stays quiet on the look-alike that is not one."""

from __future__ import annotations

import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from components.config import BackupsConfig, DatabaseConfig, MonitoringConfig, ReceiversConfig
from components.monitoring import ScrapeTargets, alert_rule_settings, alertmanager_settings, prometheus_settings
from components.render.alert_rules import DEFAULT_FOR_S, AlertRuleSettings, hastack_alerts, render_alert_rules
from components.render.alertmanager import render_alertmanager_yml
from components.render.backup_report import NEWEST_BACKUP_METRIC
from components.render.blackbox import TLS_EXPIRY_MODULE, render_blackbox_yml
from components.render.prometheus import DnsTargets, render_prometheus_yml
from loopback.binaries import find
from loopback.ports import free_port, wait_for_port
from tests.integration.conftest import require_binaries

pytestmark = pytest.mark.integration

RULES = AlertRuleSettings(runbook_base_url="docs/runbooks.md", expected_replicas=1, patroni=True)
ALERTS = {alert.name: alert for alert in hastack_alerts(RULES)}
PG = 'job="postgres",instance="x:9187",node="db-primary"'
STANDBY = 'job="postgres",instance="y:9187",node="db-replica-0"'
BACKUPS = 'job="backups",instance="monitoring-backups:9100"'
STALE_BACKUPS = 'job="backups",instance="other:9100"'


@pytest.fixture
def promtool() -> str:
    require_binaries("promtool")
    return find("promtool")


@pytest.fixture
def amtool() -> str:
    require_binaries("amtool")
    return find("amtool")


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def case(alert: str, series: dict[str, str], eval_time: str, labels: dict[str, str] | None,
         description: str = "", interval: str = "15s") -> dict:
    """One promtool test: `series` over time, then at `eval_time` `alert` is firing with
    `labels` (and `description`), or, when `labels` is None, not firing at all."""
    expected = []
    if labels is not None:
        rule = ALERTS[alert]
        expected = [{"exp_labels": {"severity": rule.severity, **labels},
                     "exp_annotations": {"summary": rule.summary, "description": description,
                                         "runbook_url": f"docs/runbooks.md#{alert.lower()}"}}]
    return {"interval": interval,
            "input_series": [{"series": name, "values": values} for name, values in series.items()],
            "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": expected}]}


# (alert, firing?) -> the cases that show it; every alert has both.
CASES = {
    ("PostgresReplicationLagHigh", True): [
        case("PostgresReplicationLagHigh",
             {f'pg_stat_replication_pg_wal_lsn_diff{{{PG},application_name="replica_0",state="streaming"}}': "2000000x12"},
             "2m", {"node": "db-primary", "application_name": "replica_0"}, "db-primary: replica_0 is 1.907MiB behind."),
        # A standby that is gone: no pg_stat_replication row, but its slot holds the WAL.
        case("PostgresReplicationLagHigh", {f'pg_replication_slots_pg_wal_lsn_diff{{{PG},slot_name="replica_0"}}': "3145728x12"},
             "2m", {"node": "db-primary", "slot_name": "replica_0"}, "db-primary: replica_0 is 3MiB behind."),
    ],
    ("PostgresReplicationLagHigh", False): [
        case("PostgresReplicationLagHigh",
             {f'pg_stat_replication_pg_wal_lsn_diff{{{PG},application_name="replica_0",state="streaming"}}': "900000x12"},
             "2m", None),
        # Over 1 MB for less than the minute the rule waits.
        case("PostgresReplicationLagHigh",
             {f'pg_stat_replication_pg_wal_lsn_diff{{{PG},application_name="replica_0",state="streaming"}}': "0x4 2000000x2"},
             "90s", None),
    ],
    ("PostgresReplayLagging", True): [
        case("PostgresReplayLagging", {f"hastack_pg_replay_age_seconds{{{STANDBY}}}": "120+15x12",
                                       f"hastack_pg_replay_pending_bytes{{{STANDBY}}}": "50000x12"},
             "2m", {"job": "postgres", "instance": "y:9187", "node": "db-replica-0"},
             "db-replica-0 last replayed a commit 4m 0s ago with WAL still pending."),
    ],
    # An idle, caught-up standby: the last commit is old, but nothing waits to be replayed.
    ("PostgresReplayLagging", False): [
        case("PostgresReplayLagging", {f"hastack_pg_replay_age_seconds{{{STANDBY}}}": "3600+15x12",
                                       f"hastack_pg_replay_pending_bytes{{{STANDBY}}}": "0x12"}, "2m", None),
    ],
    ("PostgresReplicaNotStreaming", True): [
        # The replica is gone, and with it every pg_stat_replication series.
        case("PostgresReplicaNotStreaming", {f"pg_up{{{PG}}}": "1x12"}, "2m", {}, "0 of 1 replicas are streaming."),
        case("PostgresReplicaNotStreaming",
             {f'pg_stat_replication_pg_current_wal_lsn_bytes{{{PG},application_name="replica_0",state="catchup"}}': "1x12"},
             "2m", {}, "0 of 1 replicas are streaming."),
    ],
    ("PostgresReplicaNotStreaming", False): [
        case("PostgresReplicaNotStreaming",
             {f'pg_stat_replication_pg_current_wal_lsn_bytes{{{PG},application_name="replica_0",state="streaming"}}': "1x12"},
             "2m", None),
    ],
    ("PostgresReplicationSlotInactive", True): [
        case("PostgresReplicationSlotInactive", {f'pg_replication_slots_active{{{PG},slot_name="replica_0"}}': "0x12"},
             "2m", {"job": "postgres", "instance": "x:9187", "node": "db-primary", "slot_name": "replica_0"},
             "Slot replica_0 on db-primary is inactive: its standby is down or disconnected, and the slot retains WAL for it."),
    ],
    ("PostgresReplicationSlotInactive", False): [
        case("PostgresReplicationSlotInactive", {f'pg_replication_slots_active{{{PG},slot_name="replica_0"}}': "1x12"},
             "2m", None),
    ],
    ("PostgresNoPrimary", True): [
        case("PostgresNoPrimary", {f"hastack_pg_in_recovery{{{STANDBY}}}": "1x12"}, "1m", {},
             "No reachable node is out of recovery: the app cannot write."),
        # Every exporter down: no series at all.
        case("PostgresNoPrimary", {f"pg_up{{{PG}}}": "0x12"}, "1m", {},
             "No reachable node is out of recovery: the app cannot write."),
    ],
    ("PostgresNoPrimary", False): [
        case("PostgresNoPrimary", {f"hastack_pg_in_recovery{{{PG}}}": "0x12", f"hastack_pg_in_recovery{{{STANDBY}}}": "1x12"},
             "1m", None),
    ],
    ("PostgresSeveralPrimaries", True): [
        case("PostgresSeveralPrimaries", {f"hastack_pg_in_recovery{{{PG}}}": "0x12", f"hastack_pg_in_recovery{{{STANDBY}}}": "0x12"},
             "1m", {}, "2 nodes are out of recovery: a split brain, writes may diverge."),
    ],
    ("PostgresSeveralPrimaries", False): [
        case("PostgresSeveralPrimaries", {f"hastack_pg_in_recovery{{{PG}}}": "0x12", f"hastack_pg_in_recovery{{{STANDBY}}}": "1x12"},
             "1m", None),
    ],
    ("PatroniNoLeader", True): [
        case("PatroniNoLeader", {'patroni_primary{job="patroni",node="db-0"}': "0x12",
                                 'patroni_primary{job="patroni",node="db-1"}': "0x12"}, "1m", {},
             "No Patroni member reports itself as the leader."),
        case("PatroniNoLeader", {'up{job="patroni",node="db-0"}': "0x12"}, "1m", {},
             "No Patroni member reports itself as the leader."),
    ],
    ("PatroniNoLeader", False): [
        case("PatroniNoLeader", {'patroni_primary{job="patroni",node="db-0"}': "1x12",
                                 'patroni_primary{job="patroni",node="db-1"}': "0x12"}, "1m", None),
    ],
    ("BackendServerDown", True): [
        case("BackendServerDown", {'haproxy_server_status{job="haproxy",proxy="app",server="app-1",state="DOWN"}': "1x12"},
             "1m", {"job": "haproxy", "proxy": "app", "server": "app-1", "state": "DOWN"},
             "HAProxy has taken app-1 out of app."),
    ],
    ("BackendServerDown", False): [
        case("BackendServerDown", {'haproxy_server_status{job="haproxy",proxy="app",server="app-1",state="DOWN"}': "0x12",
                                   'haproxy_server_status{job="haproxy",proxy="app",server="app-1",state="UP"}': "1x12"},
             "1m", None),
    ],
    ("NoHealthyBackend", True): [
        case("NoHealthyBackend", {'haproxy_backend_active_servers{job="haproxy",proxy="app"}': "0x12"}, "1m",
             {"job": "haproxy", "proxy": "app"}, "Backend app has no healthy replica: every request it takes fails."),
        # Reads have their own backend; it empties when storage fails everywhere.
        case("NoHealthyBackend", {'haproxy_backend_active_servers{job="haproxy",proxy="app_read"}': "0x12",
                                  'haproxy_backend_active_servers{job="haproxy",proxy="app"}': "2x12"}, "1m",
             {"job": "haproxy", "proxy": "app_read"},
             "Backend app_read has no healthy replica: every request it takes fails."),
        case("NoHealthyBackend", {'up{job="haproxy",instance="lb:8404"}': "0x12"}, "1m",
             {"job": "haproxy", "instance": "lb:8404"}, "HAProxy does not answer: no request is served."),
    ],
    ("NoHealthyBackend", False): [
        # The stats frontend and other proxies are not the app.
        case("NoHealthyBackend", {'haproxy_backend_active_servers{job="haproxy",proxy="stats"}': "0x12"}, "1m", None),
        case("NoHealthyBackend", {'haproxy_backend_active_servers{job="haproxy",proxy="app"}': "1x12",
                                  'up{job="haproxy",instance="lb:8404"}': "1x12"}, "1m", None),
    ],
    ("PostgresWalArchiveFailing", True): [
        case("PostgresWalArchiveFailing", {f"pg_stat_archiver_failed_count{{{PG}}}": "0 0 0 1 2 3 4 5 6 7 8 9 10"},
             "3m", {"job": "postgres", "instance": "x:9187", "node": "db-primary"},
             "db-primary: archive_command fails or has not archived for over twice archive_timeout; "
             "point-in-time recovery falls behind."),
        # A hanging archive_command: nothing fails, nothing is archived, WAL waits.
        case("PostgresWalArchiveFailing", {f"pg_stat_archiver_last_archive_age{{{PG}}}": "200+15x12",
                                           f"hastack_pg_wal_unarchived_bytes{{{PG}}}": "40000x12"},
             "3m", {"job": "postgres", "instance": "x:9187", "node": "db-primary"},
             "db-primary: archive_command fails or has not archived for over twice archive_timeout; "
             "point-in-time recovery falls behind."),
    ],
    ("PostgresWalArchiveFailing", False): [
        # Failures long ago: the counter is high, but it no longer rises.
        case("PostgresWalArchiveFailing", {f"pg_stat_archiver_failed_count{{{PG}}}": "17x40"}, "9m", None),
        # An idle database archives nothing, and nothing waits.
        case("PostgresWalArchiveFailing", {f"pg_stat_archiver_last_archive_age{{{PG}}}": "5000+15x12",
                                           f"hastack_pg_wal_unarchived_bytes{{{PG}}}": "0x12"}, "3m", None),
    ],
    # promtool's clock starts at the Unix epoch: a backup that finished "100000 s before it" is old.
    ("PostgresBackupTooOld", True): [
        case("PostgresBackupTooOld", {f"{NEWEST_BACKUP_METRIC}{{{BACKUPS},stanza=\"db\"}}": "-100000x80"}, "15m",
             {"stanza": "db"}, "Stanza db: the newest backup finished 1d 4h 1m 40s ago."),
        # A stanza with no backup at all reports 0, and fires once the allowed age has passed.
        case("PostgresBackupTooOld", {f"{NEWEST_BACKUP_METRIC}{{{BACKUPS},stanza=\"db\"}}": "0x1600"}, "26h20m",
             {"stanza": "db"}, "Stanza db: the newest backup finished 1d 2h 20m 0s ago.", interval="1m"),
    ],
    ("PostgresBackupTooOld", False): [
        case("PostgresBackupTooOld", {f"{NEWEST_BACKUP_METRIC}{{{BACKUPS},stanza=\"db\"}}": "-3600x80"}, "15m", None),
        # A node whose report is stale (its scheduler stopped) beside one with the newest backup: the newest counts.
        case("PostgresBackupTooOld", {f"{NEWEST_BACKUP_METRIC}{{{BACKUPS},stanza=\"db\"}}": "-3600x80",
                                      f"{NEWEST_BACKUP_METRIC}{{{STALE_BACKUPS},stanza=\"db\"}}": "-500000x80"},
             "15m", None),
    ],
    ("DataVolumeAlmostFull", True): [
        case("DataVolumeAlmostFull", {'node_filesystem_avail_bytes{job="volumes",mountpoint="/volumes/db-primary"}': "10x30",
                                      'node_filesystem_size_bytes{job="volumes",mountpoint="/volumes/db-primary"}': "100x30"},
             "6m", {"job": "volumes", "mountpoint": "/volumes/db-primary"}, "/volumes/db-primary is 90% full."),
    ],
    ("DataVolumeAlmostFull", False): [
        # The exporter's own root filesystem is not a data volume; a half-full volume is fine.
        case("DataVolumeAlmostFull", {'node_filesystem_avail_bytes{job="volumes",mountpoint="/"}': "1x30",
                                      'node_filesystem_size_bytes{job="volumes",mountpoint="/"}': "100x30",
                                      'node_filesystem_avail_bytes{job="volumes",mountpoint="/volumes/db-0"}': "50x30",
                                      'node_filesystem_size_bytes{job="volumes",mountpoint="/volumes/db-0"}': "100x30"},
             "6m", None),
    ],
    ("TlsCertificateExpiring", True): [
        case("TlsCertificateExpiring", {'probe_ssl_earliest_cert_expiry{job="tls",instance="lb:443"}': "604800x80"},
             "15m", {"job": "tls", "instance": "lb:443"}, "lb:443: the certificate expires in 6d 23h 45m 0s."),
    ],
    ("TlsCertificateExpiring", False): [
        case("TlsCertificateExpiring", {'probe_ssl_earliest_cert_expiry{job="tls",instance="lb:443"}': "2592000x80"},
             "15m", None),
    ],
}


def test_every_alert_has_a_firing_and_a_quiet_case():
    assert {name for name, _ in CASES} == set(ALERTS) == set(DEFAULT_FOR_S)
    assert all((name, firing) in CASES for name in ALERTS for firing in (True, False))


def test_promtool_unit_tests_every_alert_firing_and_quiet(promtool, tmp_path: Path):
    (tmp_path / "rules.yml").write_text(render_alert_rules(RULES))
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "15s",
             "tests": [test for cases in CASES.values() for test in cases]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=1000))
    result = run([promtool, "test", "rules", str(tmp_path / "tests.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("database", [DatabaseConfig(), DatabaseConfig(failover="patroni", replicas=2),
                                      DatabaseConfig(replicas=0)], ids=["manual", "patroni", "no-replica"])
def test_rendered_prometheus_config_and_rules_pass_promtool_check(promtool, tmp_path: Path, database):
    rules = tmp_path / "hastack.yml"
    rules.write_text(render_alert_rules(alert_rule_settings(MonitoringConfig(), database, BackupsConfig())))
    targets = ScrapeTargets(prometheus="localhost:9090", haproxy=["lb:8404"], apps=["app-0:8000", "app-1:8000"],
                            postgres_exporters={"db-primary": "monitoring-postgres-db-primary:9187"},
                            patroni={"db-0": "db-0:8008"}, volumes=["monitoring-volumes:9100"],
                            backups=["monitoring-backups:9100"],
                            alertmanagers=["monitoring-alertmanager:9093"], tls_endpoints=["lb:8443"],
                            tls_prober="monitoring-tls-probe:9115")
    config = tmp_path / "prometheus.yml"
    config.write_text(render_prometheus_yml(prometheus_settings(targets, scrape_interval_s=15, evaluation_interval_s=15,
                                                                rule_file=str(rules), stack="dev")))
    result = run([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_the_swarm_prometheus_config_with_dns_discovered_tasks_passes_promtool_check(promtool, tmp_path: Path):
    """Swarm's targets: every LB and app task through `tasks.<service>` (dns_sd_configs), and the TLS probe."""
    rules = tmp_path / "hastack.yml"
    rules.write_text(render_alert_rules(alert_rule_settings(
        MonitoringConfig(), DatabaseConfig(failover="patroni", replicas=2), BackupsConfig(enabled=False))))
    targets = ScrapeTargets(prometheus="localhost:9090", haproxy=[DnsTargets("tasks.hastack-onprem-lb", 8404)],
                            apps=[DnsTargets("tasks.hastack-onprem-app", 8000)],
                            postgres_exporters={"db-0": "monitoring-postgres-0:9187"}, patroni={"db-0": "db-0:8008"},
                            alertmanagers=["monitoring-alertmanager:9093"],
                            # HTTPS at the edge: one LB task's listener, through the blackbox exporter.
                            tls_endpoints=["tasks.hastack-onprem-lb:8443"], tls_prober="hastack-onprem-monitoring-tls-probe:9115")
    config = tmp_path / "prometheus.yml"
    config.write_text(render_prometheus_yml(prometheus_settings(targets, scrape_interval_s=15, evaluation_interval_s=15,
                                                                rule_file=str(rules), stack="onprem")))
    result = run([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dns_sd_configs" in config.read_text()


@pytest.fixture
def blackbox() -> str:
    require_binaries("prometheus-blackbox-exporter", "openssl")
    return find("prometheus-blackbox-exporter")


def test_the_tls_probe_reads_a_served_certificates_expiry_with_the_real_blackbox_exporter(blackbox, tmp_path: Path):
    """Debian's blackbox_exporter 0.23 with the rendered module, against `openssl s_server`
    serving a self-signed certificate that expires in 10 days: the metric the alert reads is
    there, and says 10 days."""
    config = tmp_path / "blackbox.yml"
    config.write_text(render_blackbox_yml())
    assert run([blackbox, f"--config.file={config}", "--config.check"]).returncode == 0
    key, cert = tmp_path / "server.key", tmp_path / "server.crt"
    made = run([find("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "10", "-subj", "/CN=localhost"])
    assert made.returncode == 0, made.stderr
    tls_port, probe_port = free_port(), free_port()
    with ExitStack() as running:
        for argv in ([find("openssl"), "s_server", "-accept", f"127.0.0.1:{tls_port}", "-cert", str(cert),
                      "-key", str(key), "-quiet", "-naccept", "100"],
                     [blackbox, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{probe_port}"]):
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            running.callback(process.wait, 10)
            running.callback(process.kill)
        wait_for_port(tls_port)
        wait_for_port(probe_port)
        answer = httpx.get(f"http://127.0.0.1:{probe_port}/probe",
                           params={"module": TLS_EXPIRY_MODULE, "target": f"127.0.0.1:{tls_port}"}, timeout=10).text
    values = {s.name: s.value for family in text_string_to_metric_families(answer) for s in family.samples}
    assert values["probe_success"] == 1
    days_left = (values["probe_ssl_earliest_cert_expiry"] - time.time()) / 86400
    assert 9.9 < days_left <= 10


RECEIVERS = {
    "none": {},
    "every kind": {"webhook": {"url": "https://hooks.example.com/alerts?token=t"},
                   "email": {"to": "ops@example.com", "sender": "hastack@example.com", "smarthost": "smtp.example.com:587",
                             "authUsername": "hastack", "authPassword": "pw"},
                   "slack": {"apiUrl": "https://hooks.slack.com/services/T/B/X", "channel": "#ops",
                             "severities": ["critical"]}},
}


@pytest.mark.parametrize("receivers", RECEIVERS.values(), ids=RECEIVERS.keys())
def test_rendered_alertmanager_config_passes_amtool_and_routes_by_severity(amtool, tmp_path: Path, receivers):
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_alertmanager_yml(alertmanager_settings(ReceiversConfig.model_validate(receivers))))
    result = run([amtool, "check-config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    for severity in ("critical", "warning"):
        routed = run([amtool, "config", "routes", "test", "--config.file", str(config), f"severity={severity}",
                      "alertname=PostgresNoPrimary"])
        assert routed.returncode == 0 and routed.stdout.strip() == severity, routed.stdout + routed.stderr
