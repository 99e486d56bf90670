"""The detection drill: real Prometheus and postgres_exporter watch the stack on loopback,
and each fault must turn into its alert *firing* in Prometheus's API.

    with run_loopback_stack(backups=True) as stack, watching(stack) as watch:
        result = detection_drill(stack, watch)

The stack's nodes archive WAL through the rendered pgBackRest archive_command into a
repository (loopback/backups.py). `watching` creates the exporter's pg_monitor role with
the rendered SQL, starts one Debian postgres_exporter per DB node with the rendered custom
queries, a Debian node_exporter whose textfile collector serves the backup report
(render/backup_report.py), a Debian Alertmanager with the rendered alertmanager.yml whose
webhook receiver is a local sink, and a Debian Prometheus with the rendered prometheus.yml
and rule file: the same renderers and the same `components.monitoring` settings the
Docker platform uses, with short intervals and `for` durations so the drill takes seconds.

The faults, one after the other, each timed to the alert's `firing`:
1. SIGKILL an app replica -> BackendServerDown{server=<it>}
2. SIGKILL the DB replica -> PostgresReplicaNotStreaming
3. a backup through the rendered job and report, then none for longer than the drill's
   allowed age -> PostgresBackupTooOld, timed from the moment the reported backup became
   too old
4. the pgBackRest repository made unwritable (`chmod 000`) plus a WAL switch, so a
   segment is due at once rather than after archive_timeout -> PostgresWalArchiveFailing.
   Also timed: until Alertmanager's webhook POST of it arrives.

`patroni_leader_drill` does the same for `PatroniNoLeader` over real Patroni members.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from components.config import BackupsConfig, DatabaseConfig, MonitoringConfig, ReceiversConfig, WebhookReceiverConfig
from components.monitoring import ScrapeTargets, alert_rule_settings, alertmanager_settings, prometheus_settings
from components.render.alert_rules import DEFAULT_FOR_S, AlertRuleSettings, render_alert_rules
from components.render.alertmanager import GROUP_WAIT_S, render_alertmanager_yml
from components.render.backup_report import NEWEST_BACKUP_METRIC
from components.render.postgres_exporter import (
    IN_RECOVERY,
    exporter_tls_query,
    MONITOR_ROLE,
    REPLAY_AGE_SECONDS,
    REPLAY_PENDING_BYTES,
    WAL_UNARCHIVED_BYTES,
    monitor_role_sql,
    render_exporter_queries,
)
from components.render.prometheus import render_prometheus_yml

from .binaries import find
from .drills import Figure
from .patroni import loopback_patroni
from .ports import free_port, wait_for_port, wait_until
from .postgres import SUPERUSER, PgCluster, as_postgres, chown_to_postgres
from .stack import LoopbackStack

# Short enough for a drill of seconds; the targets are `for` + 2 scrape intervals.
SCRAPE_INTERVAL_S = 1.0
EVALUATION_INTERVAL_S = 0.2
DRILL_FOR_S = 5.0
# increase() over this many seconds: longer than the archiver's 60 s pause between failing
# bursts (render/alert_rules.py ARCHIVER_RETRY_PAUSE_S), so the alert stays firing.
COUNTER_WINDOW_S = 90.0
# The drill's allowed backup age: longer than the job takes from the backup's end through
# `pgbackrest check` to the report, plus a scrape.
DRILL_BACKUP_MAX_AGE_S = 10.0
# How long a drill step may wait for its alert before the drill fails.
ALERT_DEADLINE_S = 60.0
MONITOR_PASSWORD = "loopback-monitor"


@dataclass
class Watch:
    """Prometheus's view of the stack: its API, and where its notifications land."""

    prometheus_url: str
    log_dir: Path
    sink: WebhookSink | None = None
    # Where the backup job writes its report (the stack drill only).
    report_dir: Path | None = None

    def firing(self, alert: str, **labels: str) -> bool:
        """Whether `alert` with `labels` is in state `firing` in /api/v1/alerts."""
        answer = httpx.get(f"{self.prometheus_url}/api/v1/alerts", timeout=2.0).json()
        return any(a["labels"].get("alertname") == alert and a["state"] == "firing"
                   and all(a["labels"].get(k) == v for k, v in labels.items())
                   for a in answer["data"]["alerts"])

    def seconds_until_firing(self, alert: str, since: float, **labels: str) -> float:
        """Poll until `alert` fires; the seconds from `since` (time.monotonic()) to then."""
        wait_until(lambda: self.firing(alert, **labels), ALERT_DEADLINE_S, f"alert {alert} {labels} firing", 0.05)
        return time.monotonic() - since

    def series(self, expr: str) -> list[dict]:
        """The instant vector `expr` evaluates to now."""
        answer = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=2.0).json()
        return answer["data"]["result"]

    def all_targets_up(self) -> bool:
        answer = httpx.get(f"{self.prometheus_url}/api/v1/targets", timeout=2.0).json()
        active = answer["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


def _psql_on_primary(cluster: PgCluster, sql: str) -> None:
    """`sql` through psql as the postgres OS user on the primary's socket (PgCluster puts it in the data dir)."""
    argv = as_postgres([find("psql"), "-h", str(cluster.data_dir), "-p", str(cluster.port), "-U", SUPERUSER,
                        "-d", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"])
    result = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed ({result.returncode}): {result.stdout}{result.stderr}")


def _start(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _exporter(running: ExitStack, node: str, cluster: PgCluster, queries: Path, ca_file: Path, log_dir: Path) -> str:
    port = free_port()
    process = _start([find("prometheus-postgres-exporter"), f"--web.listen-address=127.0.0.1:{port}"],
                     log_dir / f"exporter-{node}.log",
                     # TLS verified against the stack CA, as components/docker/monitoring.py connects.
                     {"DATA_SOURCE_URI": f"127.0.0.1:{cluster.port}/postgres?{exporter_tls_query(ca_file)}",
                      "DATA_SOURCE_USER": MONITOR_ROLE, "DATA_SOURCE_PASS": MONITOR_PASSWORD,
                      "PG_EXPORTER_EXTEND_QUERY_PATH": str(queries)})
    running.callback(_stop, process)
    wait_for_port(port, 30)
    return f"127.0.0.1:{port}"


def textfile_exporter(running: ExitStack, directory: Path, log_dir: Path) -> str:
    """Debian's node_exporter with only the textfile collector, over `directory`, as the
    Docker platform runs it over the backup reports' volume."""
    port = free_port()
    process = _start([find("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{port}",
                      "--collector.disable-defaults", "--collector.textfile",
                      f"--collector.textfile.directory={directory}"], log_dir / "backup-reports-exporter.log")
    running.callback(_stop, process)
    wait_for_port(port, 30)
    return f"127.0.0.1:{port}"


class WebhookSink:
    """An HTTP server on 127.0.0.1 that keeps every Alertmanager webhook POST, with when it arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.received.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def first_firing(self, alert: str) -> float | None:
        """When the first notification with `alert` firing arrived (time.monotonic()), if one did."""
        return next((at for at, payload in list(self.received) for a in payload["alerts"]
                     if a["labels"].get("alertname") == alert and a["status"] == "firing"), None)


def _alertmanager(running: ExitStack, log_dir: Path) -> tuple[str, WebhookSink]:
    """Debian's Alertmanager with the rendered alertmanager.yml, its one receiver a local webhook sink."""
    sink = WebhookSink()
    running.callback(sink.stop)
    config = log_dir / "alertmanager.yml"
    receivers = ReceiversConfig(webhook=WebhookReceiverConfig(url=sink.url))
    config.write_text(render_alertmanager_yml(alertmanager_settings(receivers)))
    port = free_port()
    process = _start([find("prometheus-alertmanager"), f"--config.file={config}",
                      f"--storage.path={log_dir / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{port}",
                      "--cluster.listen-address="], log_dir / "alertmanager.log")
    running.callback(_stop, process)
    wait_for_port(port, 30)
    return f"127.0.0.1:{port}", sink


@contextmanager
def prometheus_watching(targets: ScrapeTargets, database: DatabaseConfig, log_dir: Path,
                        sink: WebhookSink | None = None, backups: BackupsConfig | None = None) -> Iterator[Watch]:
    """Debian's Prometheus with the rendered prometheus.yml and rule file for `database`, the
    drill's short timings, scraping `targets` (`prometheus` is filled in); yields once every
    target is up, stops it on exit. `backups`: the stack's backups (None: off, no backup rule)."""
    port = free_port()
    targets = replace(targets, prometheus=f"127.0.0.1:{port}")
    rules_file = log_dir / "hastack.yml"
    rules = alert_rule_settings(MonitoringConfig(), database, backups or BackupsConfig(enabled=False))
    rules_file.write_text(render_alert_rules(_drill_timings(rules)))
    config = log_dir / "prometheus.yml"
    config.write_text(render_prometheus_yml(prometheus_settings(
        targets, scrape_interval_s=SCRAPE_INTERVAL_S, evaluation_interval_s=EVALUATION_INTERVAL_S,
        rule_file=str(rules_file), stack="loopback")))
    process = _start([find("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={log_dir / 'tsdb'}",
                      f"--web.listen-address=127.0.0.1:{port}"], log_dir / "prometheus.log")
    try:
        watch = Watch(prometheus_url=f"http://127.0.0.1:{port}", log_dir=log_dir, sink=sink)
        wait_until(lambda: _ready(watch), 60, "prometheus ready", 0.1)
        wait_until(watch.all_targets_up, 60, "every scrape target up", 0.2)
        yield watch
    finally:
        _stop(process)


@contextmanager
def watching(stack: LoopbackStack) -> Iterator[Watch]:
    """Exporters, Alertmanager and Prometheus up and every target scraped over a stack whose
    nodes archive into pgBackRest (`run_loopback_stack(backups=True)`); all stopped on exit."""
    if stack.backups is None:
        raise ValueError("the detection drill needs a stack that archives into pgBackRest: run_loopback_stack(backups=True)")
    log_dir = stack.root / "monitoring"
    log_dir.mkdir()
    report_dir = stack.backups.root / "backup-reports"
    report_dir.mkdir()
    chown_to_postgres(report_dir)
    _psql_on_primary(stack.primary,
                     f"\\set monitor_password '{MONITOR_PASSWORD}'\n{monitor_role_sql('monitor_password')}")
    queries = log_dir / "queries.yaml"
    queries.write_text(render_exporter_queries())
    with ExitStack() as running:
        nodes = {"primary": stack.primary, **{f"replica-{i}": r for i, r in stack.db.replicas.items()}}
        exporters = {node: _exporter(running, node, cluster, queries, stack.ca_file, log_dir)
                     for node, cluster in nodes.items()}
        alertmanager, sink = _alertmanager(running, log_dir)
        targets = ScrapeTargets(
            prometheus="",
            haproxy=[f"127.0.0.1:{stack.haproxy.settings.stats_port}"],
            apps=[f"127.0.0.1:{app.port}" for app in stack.apps],
            postgres_exporters=exporters,
            backups=[textfile_exporter(running, report_dir, log_dir)],
            alertmanagers=[alertmanager],
        )
        backups = BackupsConfig(archive_timeout_s=stack.backups.archive_timeout_s)
        watch = running.enter_context(
            prometheus_watching(targets, DatabaseConfig(replicas=len(stack.db.replicas)), log_dir, sink, backups))
        watch.report_dir = report_dir
        yield watch


def _drill_timings(rules: AlertRuleSettings) -> AlertRuleSettings:
    """The production rule settings with the drill's short `for`, counter window and backup age."""
    return replace(rules, for_s={name: DRILL_FOR_S for name in DEFAULT_FOR_S}, counter_window_s=COUNTER_WINDOW_S,
                   backup_max_age_s=DRILL_BACKUP_MAX_AGE_S)


def _ready(watch: Watch) -> bool:
    try:
        return httpx.get(f"{watch.prometheus_url}/-/ready", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


# hastack's custom exporter metrics, each expected once per DB node: the queries run as pg_monitor.
CUSTOM_METRICS = (IN_RECOVERY, REPLAY_AGE_SECONDS, REPLAY_PENDING_BYTES, WAL_UNARCHIVED_BYTES)


@dataclass
class DetectionResult:
    backend_alert_s: float
    replica_alert_s: float
    # From the moment the reported backup became older than the allowed age.
    backup_alert_s: float
    archive_alert_s: float
    # From the archive fault to Alertmanager's webhook POST with the alert firing.
    archive_notified_s: float
    # Whether each alert was quiet right before its fault.
    quiet_before: dict[str, bool]
    # Custom metric -> how many DB nodes exported it before the faults.
    custom_metric_nodes: dict[str, int]
    # The newest backup's end in `pgbackrest info`, and what Prometheus read from the report.
    backup_stop: int = 0
    reported_backup_stop: float = 0.0

    def figures(self) -> list[Figure]:
        notify_target = ALERT_TARGET_S + GROUP_WAIT_S["critical"]
        return [
            _alert_figure("monitoring_backend_down_alert_seconds", self.backend_alert_s, "BackendServerDown",
                          "SIGKILL app-1"),
            _alert_figure("monitoring_replica_not_streaming_alert_seconds", self.replica_alert_s,
                          "PostgresReplicaNotStreaming", "SIGKILL the DB replica"),
            _alert_figure("monitoring_backup_too_old_alert_seconds", self.backup_alert_s, "PostgresBackupTooOld",
                          f"no backup for {DRILL_BACKUP_MAX_AGE_S:g} s after one through the rendered job and report"),
            _alert_figure("monitoring_wal_archive_failing_alert_seconds", self.archive_alert_s,
                          "PostgresWalArchiveFailing", "pgBackRest repository made unwritable, then pg_switch_wal()"),
            Figure(DRILL, "monitoring_wal_archive_failing_notified_seconds", self.archive_notified_s, "s",
                   {"target_s": notify_target, "met": self.archive_notified_s <= notify_target,
                    "view": "Alertmanager webhook POST received", "group_wait_s": GROUP_WAIT_S["critical"]}),
        ]


DRILL = "monitoring_detection"
# Each alert fires within its `for` plus two scrape intervals of its fault.
ALERT_TARGET_S = DRILL_FOR_S + 2 * SCRAPE_INTERVAL_S


def _alert_figure(figure: str, seconds: float, alert: str, fault: str) -> Figure:
    return Figure(DRILL, figure, seconds, "s",
                  {"target_s": ALERT_TARGET_S, "met": seconds <= ALERT_TARGET_S, "alert": alert, "fault": fault,
                   "for_s": DRILL_FOR_S, "scrape_interval_s": SCRAPE_INTERVAL_S,
                   "evaluation_interval_s": EVALUATION_INTERVAL_S, "view": "prometheus /api/v1/alerts firing"})


def detection_drill(stack: LoopbackStack, watch: Watch) -> DetectionResult:
    custom = {metric: len(watch.series(metric)) for metric in CUSTOM_METRICS}
    quiet = {}
    victim = stack.apps[1]
    quiet["BackendServerDown"] = not watch.firing("BackendServerDown", server=victim.node_id)
    started = time.monotonic()
    victim.kill()
    backend_s = watch.seconds_until_firing("BackendServerDown", started, server=victim.node_id)

    quiet["PostgresReplicaNotStreaming"] = not watch.firing("PostgresReplicaNotStreaming")
    started = time.monotonic()
    stack.replica.kill()
    replica_s = watch.seconds_until_firing("PostgresReplicaNotStreaming", started)

    backup_s, quiet["PostgresBackupTooOld"], stop, reported = _backup_ages_out(stack, watch)

    quiet["PostgresWalArchiveFailing"] = not watch.firing("PostgresWalArchiveFailing")
    repository = Path(stack.backups.repository.path)
    mode = repository.stat().st_mode & 0o7777
    started = time.monotonic()
    repository.chmod(0)
    try:
        with stack.db.connect(stack.primary) as conn:
            # A segment with something in it, so the switch really hands one to the archiver.
            conn.execute("CREATE TABLE IF NOT EXISTS monitoring_drill (at timestamptz); INSERT INTO monitoring_drill VALUES (now())")
            conn.execute("SELECT pg_switch_wal()")
        archive_s = watch.seconds_until_firing("PostgresWalArchiveFailing", started, node="primary")
        wait_until(lambda: watch.sink.first_firing("PostgresWalArchiveFailing") is not None, ALERT_DEADLINE_S,
                   "the archive alert's webhook notification", 0.05)
    finally:
        repository.chmod(mode)
    notified_s = watch.sink.first_firing("PostgresWalArchiveFailing") - started
    return DetectionResult(backend_alert_s=backend_s, replica_alert_s=replica_s, backup_alert_s=backup_s,
                           archive_alert_s=archive_s, archive_notified_s=notified_s, quiet_before=quiet,
                           custom_metric_nodes=custom, backup_stop=stop, reported_backup_stop=reported)


def _backup_ages_out(stack: LoopbackStack, watch: Watch) -> tuple[float, bool, int, float]:
    """A full backup through the rendered job and report; Prometheus reads its end from the
    report, then the alert fires once that backup is older than the allowed age. Returns
    (seconds from "too old" to firing, quiet on the fresh report, info's stop, reported stop)."""
    stack.backups.run_backup_job("full", report_dir=watch.report_dir)
    info = stack.backups.info()
    stop = max(backup["timestamp"]["stop"] for backup in info["backup"])
    newest = f'{NEWEST_BACKUP_METRIC}{{stanza="{info["name"]}"}}'
    wait_until(lambda: [float(s["value"][1]) for s in watch.series(newest)] == [stop], ALERT_DEADLINE_S,
               "the backup report scraped", 0.05)
    too_old_at = stop + DRILL_BACKUP_MAX_AGE_S
    if time.time() >= too_old_at:
        raise RuntimeError(f"the backup was older than {DRILL_BACKUP_MAX_AGE_S} s before Prometheus read its report: "
                           "the drill's allowed age is too short to time the alert")
    quiet = not watch.firing("PostgresBackupTooOld")
    wait_until(lambda: watch.firing("PostgresBackupTooOld", stanza=info["name"]), ALERT_DEADLINE_S,
               "alert PostgresBackupTooOld firing", 0.05)
    return time.time() - too_old_at, quiet, stop, float(watch.series(newest)[0]["value"][1])


@dataclass
class PatroniLeaderResult:
    # `patroni_primary` series equal to 1 while the cluster was healthy.
    leaders_before: int
    quiet_before: bool
    no_leader_alert_s: float

    def figures(self) -> list[Figure]:
        return [_alert_figure("monitoring_patroni_no_leader_alert_seconds", self.no_leader_alert_s, "PatroniNoLeader",
                              "maintenance mode, then SIGKILL the leader node")]


def patroni_leader_drill(log_dir: Path) -> PatroniLeaderResult:
    """Real Patroni members' REST /metrics scraped by real Prometheus: `PatroniNoLeader` is
    quiet with a leader, and fires once the leader is gone and nothing is promoted (paused
    cluster: the runbook's "the leader is gone and nothing was promoted")."""
    with loopback_patroni(members=2) as cluster:
        targets = ScrapeTargets(prometheus="", haproxy=[], apps=[], postgres_exporters={},
                                patroni={node.name: f"127.0.0.1:{node.api_port}" for node in cluster.nodes})
        with prometheus_watching(targets, DatabaseConfig(failover="patroni", replicas=1), log_dir) as watch:
            leaders = len(watch.series("patroni_primary == 1"))
            quiet = not watch.firing("PatroniNoLeader")
            cluster.patronictl("pause", "--wait")
            leader = cluster.leader()
            started = time.monotonic()
            leader.crash()
            seconds = watch.seconds_until_firing("PatroniNoLeader", started)
    return PatroniLeaderResult(leaders_before=leaders, quiet_before=quiet, no_leader_alert_s=seconds)
