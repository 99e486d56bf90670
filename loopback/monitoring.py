"""The detection drill: real Prometheus and postgres_exporter watch the stack on loopback,
and each fault must turn into its alert *firing* in Prometheus's API.

    with run_loopback_stack() as stack, watching(stack) as watch:
        result = detection_drill(stack, watch)

`watching` enables WAL archiving on the loopback primary (archive_mode needs a restart,
so this happens before anything is measured), creates the exporter's pg_monitor role
with the rendered SQL, starts one Debian postgres_exporter per DB node with the rendered
custom queries, and a Debian Prometheus with the rendered prometheus.yml and rule file:
the same renderers and the same `components.monitoring` settings the Docker platform
uses, with short intervals and `for` durations so the drill takes seconds.

The faults, one after the other, each timed from the fault to the alert's `firing`:
1. SIGKILL an app replica      -> BackendServerDown{server=<it>}
2. SIGKILL the DB replica      -> PostgresReplicaNotStreaming
3. make the archive unwritable -> PostgresWalArchiveFailing. The backups component
   (pgBackRest) is not on this branch yet, so the primary archives with a plain
   `cp` into a directory; the fault is `chmod 000` on it plus a WAL switch, so the
   next segment is due at once rather than after archive_timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from components.config import DatabaseConfig, MonitoringConfig
from components.monitoring import ScrapeTargets, alert_rule_settings, prometheus_settings
from components.render.alert_rules import DEFAULT_FOR_S, AlertRuleSettings, render_alert_rules
from components.render.postgres_exporter import MONITOR_ROLE, monitor_role_sql, render_exporter_queries
from components.render.prometheus import render_prometheus_yml

from .binaries import find
from .drills import Figure
from .ports import free_port, wait_for_port, wait_until
from .postgres import SUPERUSER, PgCluster, as_postgres, chown_to_postgres
from .stack import LoopbackStack

# Short enough for a drill of seconds; the targets are `for` + 2 scrape intervals.
SCRAPE_INTERVAL_S = 1.0
EVALUATION_INTERVAL_S = 0.2
DRILL_FOR_S = 5.0
# increase() over this many seconds: several scrapes, so one bump is seen at once.
COUNTER_WINDOW_S = 10.0
# How long a drill step may wait for its alert before the drill fails.
ALERT_DEADLINE_S = 60.0
MONITOR_PASSWORD = "loopback-monitor"


@dataclass
class Watch:
    """Prometheus's view of the stack: its API and what it was started with."""

    prometheus_url: str
    archive_dir: Path
    log_dir: Path

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


def _enable_archiving(stack: LoopbackStack, archive_dir: Path) -> None:
    """archive_mode=on with a plain copy into `archive_dir`; restarts the primary, then waits
    until the replica streams again and the LB sees every app ready."""
    archive_dir.mkdir()
    chown_to_postgres(archive_dir)
    db = stack.db
    _psql_on_primary(stack.primary, (
        "ALTER SYSTEM SET archive_mode = on;\n"
        f"ALTER SYSTEM SET archive_command = 'test ! -f {archive_dir}/%f && cp %p {archive_dir}/%f';\n"))
    stack.primary.stop()
    stack.primary.start(db.server_flags)
    with db.connect(stack.primary) as conn:
        wait_until(lambda: conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                   .fetchone()[0] == len(db.replicas), 60, "replicas streaming after the primary's restart", 0.1)
    stack.wait_all_up()


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


def _exporter(running: ExitStack, node: str, cluster: PgCluster, queries: Path, log_dir: Path) -> str:
    port = free_port()
    process = _start([find("prometheus-postgres-exporter"), f"--web.listen-address=127.0.0.1:{port}"],
                     log_dir / f"exporter-{node}.log",
                     {"DATA_SOURCE_URI": f"127.0.0.1:{cluster.port}/postgres?sslmode=disable",
                      "DATA_SOURCE_USER": MONITOR_ROLE, "DATA_SOURCE_PASS": MONITOR_PASSWORD,
                      "PG_EXPORTER_EXTEND_QUERY_PATH": str(queries)})
    running.callback(_stop, process)
    wait_for_port(port, 30)
    return f"127.0.0.1:{port}"


@contextmanager
def watching(stack: LoopbackStack) -> Iterator[Watch]:
    """Archiving on, exporters and Prometheus up and every target scraped; all stopped on exit."""
    log_dir = stack.root / "monitoring"
    log_dir.mkdir()
    archive_dir = stack.db.root / "archive"
    _enable_archiving(stack, archive_dir)
    _psql_on_primary(stack.primary,
                     f"\\set monitor_password '{MONITOR_PASSWORD}'\n{monitor_role_sql('monitor_password')}")
    queries = log_dir / "queries.yaml"
    queries.write_text(render_exporter_queries())
    with ExitStack() as running:
        nodes = {"primary": stack.primary, **{f"replica-{i}": r for i, r in stack.db.replicas.items()}}
        exporters = {node: _exporter(running, node, cluster, queries, log_dir) for node, cluster in nodes.items()}
        prometheus_port = free_port()
        targets = ScrapeTargets(
            prometheus=f"127.0.0.1:{prometheus_port}",
            haproxy=[f"127.0.0.1:{stack.haproxy.settings.stats_port}"],
            apps=[f"127.0.0.1:{app.port}" for app in stack.apps],
            postgres_exporters=exporters,
        )
        rules = alert_rule_settings(MonitoringConfig(), DatabaseConfig(replicas=len(stack.db.replicas)))
        rules_file = log_dir / "hastack.yml"
        rules_file.write_text(render_alert_rules(_drill_timings(rules)))
        config = log_dir / "prometheus.yml"
        config.write_text(render_prometheus_yml(prometheus_settings(
            targets, scrape_interval_s=SCRAPE_INTERVAL_S, evaluation_interval_s=EVALUATION_INTERVAL_S,
            rule_file=str(rules_file), stack="loopback")))
        process = _start([find("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={log_dir / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{prometheus_port}"], log_dir / "prometheus.log")
        running.callback(_stop, process)
        watch = Watch(prometheus_url=f"http://127.0.0.1:{prometheus_port}", archive_dir=archive_dir, log_dir=log_dir)
        wait_until(lambda: _ready(watch), 60, "prometheus ready", 0.1)
        wait_until(watch.all_targets_up, 60, "every scrape target up", 0.2)
        try:
            yield watch
        finally:
            # Let the postgres user tidy up its own tree on the stack's exit.
            archive_dir.chmod(0o700)


def _drill_timings(rules: AlertRuleSettings) -> AlertRuleSettings:
    """The production rule settings with the drill's short `for` and counter window."""
    return replace(rules, for_s={name: DRILL_FOR_S for name in DEFAULT_FOR_S}, counter_window_s=COUNTER_WINDOW_S)


def _ready(watch: Watch) -> bool:
    try:
        return httpx.get(f"{watch.prometheus_url}/-/ready", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class DetectionResult:
    backend_alert_s: float
    replica_alert_s: float
    archive_alert_s: float
    # Whether each alert was quiet right before its fault.
    quiet_before: dict[str, bool]

    @property
    def target_s(self) -> float:
        return DRILL_FOR_S + 2 * SCRAPE_INTERVAL_S

    def figures(self) -> list[Figure]:
        drill = "monitoring_detection"
        detail = {"target_s": self.target_s, "for_s": DRILL_FOR_S, "scrape_interval_s": SCRAPE_INTERVAL_S,
                  "evaluation_interval_s": EVALUATION_INTERVAL_S, "view": "prometheus /api/v1/alerts firing"}
        return [
            Figure(drill, "monitoring_backend_down_alert_seconds", self.backend_alert_s, "s",
                   {**detail, "alert": "BackendServerDown", "fault": "SIGKILL app-1",
                    "met": self.backend_alert_s <= self.target_s}),
            Figure(drill, "monitoring_replica_not_streaming_alert_seconds", self.replica_alert_s, "s",
                   {**detail, "alert": "PostgresReplicaNotStreaming", "fault": "SIGKILL the DB replica",
                    "met": self.replica_alert_s <= self.target_s}),
            Figure(drill, "monitoring_wal_archive_failing_alert_seconds", self.archive_alert_s, "s",
                   {**detail, "alert": "PostgresWalArchiveFailing",
                    "fault": "archive dir made unwritable, then pg_switch_wal()",
                    "met": self.archive_alert_s <= self.target_s}),
        ]


def detection_drill(stack: LoopbackStack, watch: Watch) -> DetectionResult:
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

    quiet["PostgresWalArchiveFailing"] = not watch.firing("PostgresWalArchiveFailing")
    started = time.monotonic()
    watch.archive_dir.chmod(0)
    with stack.db.connect(stack.primary) as conn:
        # A segment with something in it, so the switch really hands one to the archiver.
        conn.execute("CREATE TABLE IF NOT EXISTS monitoring_drill (at timestamptz); INSERT INTO monitoring_drill VALUES (now())")
        conn.execute("SELECT pg_switch_wal()")
    archive_s = watch.seconds_until_firing("PostgresWalArchiveFailing", started, node="primary")
    return DetectionResult(backend_alert_s=backend_s, replica_alert_s=replica_s, archive_alert_s=archive_s,
                           quiet_before=quiet)
