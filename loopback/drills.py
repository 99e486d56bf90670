"""The HA drills of issue 6, each run against a stack on loopback (loopback/stack.py).

Each drill does what it says to a running stack under load, and returns a result with
what happened (for the tests' hard assertions, tests/integration/test_drill_*.py) and
its measured figures (printed as JSON lines by bench/drills.py). Readiness and recovery
are always polled with deadlines; the only waiting is for something observable.

1. `replica_crash`        SIGKILL an app replica under load, restart it.
2. `rolling_restart`      SIGTERM (graceful drain) and restart every replica in turn,
                          with jobs in flight.
3. `db_replica_loss`      kill the DB replica under load, restart it.
4. `manual_failover`      kill the DB primary, promote the replica (runbook command).
5. `replication_lag`      pgbench on the primary; lag and read-your-writes on the replica.
6. `automatic_failover`   kill the Patroni leader node; Patroni promotes the sync standby
                          (needs a stack with `database="patroni"`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from components.render.postgres import BOOTSTRAP_MARKER, EXISTING_CLUSTER_MARKER

from .binaries import find
from .haproxy import DOWN, UP
from .load import GETS, KINDS, LoadReport, MixedLoad, nearest_rank
from .patroni import PatroniCluster
from .ports import wait_until
from .postgres import SUPERUSER, PgCluster
from .stack import REBUILT_PRIMARY_SLOT, LoopbackStack

# Load shape shared by the drills: steady, a few thousand requests at most, and each
# drill's load stops by itself within LOAD_MAX_SECONDS even if a drill step hangs. The
# longest drill, the rolling restart, takes about 10 s here; the rest is headroom for a
# slower CI machine, where a drill that outlasts its load fails rather than passing
# without traffic.
LOAD_RATE_PER_S = 120.0
LOAD_MAX_SECONDS = 30.0
LOAD_MAX_REQUESTS = int(LOAD_RATE_PER_S * LOAD_MAX_SECONDS)
# Requests to let through before disturbing anything, and after each disturbance, so
# every phase of a drill is seen under traffic.
PHASE_REQUESTS = 150

# The replication-lag alert of the runbook (docs/runbooks.md).
LAG_ALERT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Figure:
    """One measured number, printed by bench/ as one JSON line."""

    drill: str
    figure: str
    value: float
    unit: str
    detail: dict = field(default_factory=dict)

    def json(self) -> str:
        value = round(self.value, 6) if isinstance(self.value, float) else self.value
        return json.dumps({"figure": self.figure, "value": value, "unit": self.unit, "drill": self.drill,
                           **self.detail})


def steady_load(stack: LoopbackStack) -> MixedLoad:
    return MixedLoad(stack.url, max_requests=LOAD_MAX_REQUESTS, max_seconds=LOAD_MAX_SECONDS,
                     rate_per_s=LOAD_RATE_PER_S, ca_file=str(stack.ca_file))


def failed_request_figures(drill: str, report: LoadReport, **window: float) -> list[Figure]:
    """`<drill>_failed_<kind>` for every request kind, with the failure reasons."""
    return [Figure(drill, f"{drill}_failed_{kind}", len(report.failed(kind, **window)), "requests",
                   {"of": len(report.of(kind, **window)), "reasons": report.failure_reasons(kind, **window)})
            for kind in KINDS]


def load_rps_figure(drill: str, report: LoadReport) -> Figure:
    latencies = {kind: round(report.latency_percentile_s(kind, 99) * 1000, 1) for kind in KINDS}
    return Figure(drill, f"{drill}_load_rps", report.requests_per_second, "requests/s",
                  {"requests": len(report.results), "p99_latency_ms": latencies})


# ----------------------------------------------------------------- 1. replica crash


@dataclass
class ReplicaCrashResult:
    victim: str
    load: LoadReport
    killed_at: float
    ejection_s: float
    readd_s: float
    readded_at: float

    def failed_gets(self) -> int:
        return sum(len(self.load.failed(kind)) for kind in GETS)

    def served_by_victim_after_readd(self) -> int:
        return sum(1 for r in self.load.results if r.started >= self.readded_at and r.served_by == self.victim)

    def figures(self) -> list[Figure]:
        drill = "replica_kill"
        return [
            Figure(drill, "replica_kill_ejection_seconds", self.ejection_s, "s",
                   {"target_s": 1.0, "view": "haproxy show stat"}),
            *failed_request_figures(drill, self.load),
            Figure(drill, "replica_restart_readd_seconds", self.readd_s, "s",
                   {"from": "process start", "to": "haproxy UP"}),
            load_rps_figure(drill, self.load),
        ]


def replica_crash(stack: LoopbackStack, victim_index: int = 1) -> ReplicaCrashResult:
    """SIGKILL one app replica under load; time until HAProxy has it DOWN; restart it on
    its port and time until HAProxy has it UP again."""
    victim = stack.apps[victim_index]
    with steady_load(stack) as traffic:
        traffic.wait_for_requests(PHASE_REQUESTS)
        killed_at = time.monotonic()
        victim.process.kill()
        stack.haproxy.wait_for_server(victim.node_id, DOWN, deadline_s=10)
        ejection_s = time.monotonic() - killed_at
        victim.kill()  # reap
        traffic.wait_for_requests(PHASE_REQUESTS)
        restarted_at = time.monotonic()
        stack.restart_app(victim_index)
        stack.haproxy.wait_for_server(victim.node_id, UP, deadline_s=30)
        readded_at = time.monotonic()
        traffic.wait_for_requests(PHASE_REQUESTS)
    return ReplicaCrashResult(victim.node_id, traffic.report, killed_at, ejection_s, readded_at - restarted_at,
                              readded_at)


# ----------------------------------------------------------------- 2. rolling restart

# Jobs submitted before each replica restarts, each long enough that every replica is
# likely to hold one when its SIGTERM arrives.
JOBS_PER_STEP = 30
JOB_WORK_S = 0.2


@dataclass
class RollingRestartResult:
    load: LoadReport
    # Per replica: seconds from SIGTERM until HAProxy had it DOWN (it was draining).
    drain_ejection_s: list[float]
    # Per replica: seconds from SIGTERM until HAProxy had the new process UP.
    step_s: list[float]
    jobs_submitted: int
    job_stats: dict

    @property
    def failed_requests(self) -> int:
        return sum(len(self.load.failed(kind)) for kind in KINDS)

    @property
    def jobs_done(self) -> int:
        return self.job_stats["by_status"]["done"]

    def figures(self) -> list[Figure]:
        drill = "rolling_restart"
        return [
            *failed_request_figures(drill, self.load),
            Figure(drill, "rolling_restart_seconds", sum(self.step_s), "s",
                   {"replicas": len(self.step_s), "per_replica_s": [round(s, 2) for s in self.step_s]}),
            Figure(drill, "rolling_restart_drain_ejection_seconds", max(self.drain_ejection_s), "s",
                   {"per_replica_s": [round(s, 3) for s in self.drain_ejection_s]}),
            Figure(drill, "rolling_restart_jobs_lost", self.jobs_submitted - self.jobs_done, "jobs",
                   {"submitted": self.jobs_submitted, "by_status": self.job_stats["by_status"],
                    "completed_more_than_once": self.job_stats["completed_more_than_once"]}),
            load_rps_figure(drill, self.load),
        ]


def submit_jobs(base_url: str, batch: str, count: int, work_s: float = JOB_WORK_S) -> int:
    response = httpx.post(f"{base_url}/jobs", json={"count": count, "batch": batch,
                                                    "payload": {"work_s": work_s}}, timeout=10)
    response.raise_for_status()
    return len(response.json()["ids"])


def job_stats(base_url: str, batch: str) -> dict:
    response = httpx.get(f"{base_url}/jobs/stats", params={"batch": batch}, timeout=10)
    response.raise_for_status()
    return response.json()


def rolling_restart(stack: LoopbackStack) -> RollingRestartResult:
    """Restart every app replica in turn, SIGTERM and graceful drain, each back UP in
    HAProxy before the next; jobs are submitted before each step. Then wait for every
    job to finish."""
    batch = f"rolling-{uuid.uuid4().hex[:8]}"
    submitted = 0
    drain_ejection_s, step_s = [], []
    with steady_load(stack) as traffic:
        traffic.wait_for_requests(PHASE_REQUESTS)
        for index, app in enumerate(list(stack.apps)):
            submitted += submit_jobs(stack.url, batch, JOBS_PER_STEP)
            terminated_at = time.monotonic()
            app.terminate()
            stack.haproxy.wait_for_server(app.node_id, DOWN, deadline_s=10)
            drain_ejection_s.append(time.monotonic() - terminated_at)
            app.wait_exit(timeout_s=30)
            stack.restart_app(index)
            stack.haproxy.wait_for_server(app.node_id, UP, deadline_s=30)
            step_s.append(time.monotonic() - terminated_at)
        traffic.wait_for_requests(PHASE_REQUESTS)
    wait_until(lambda: job_stats(stack.url, batch)["by_status"]["done"] >= submitted, 60,
               f"{submitted} jobs of batch {batch} done", interval_s=0.1)
    return RollingRestartResult(traffic.report, drain_ejection_s, step_s, submitted, job_stats(stack.url, batch))


# ----------------------------------------------------------------- 3. DB replica loss


@dataclass
class DbReplicaLossResult:
    load: LoadReport
    killed_at: float
    returned_at: float
    # /readyz answers (status codes) of every app, polled throughout the outage.
    readyz_statuses: list[int]
    # App sessions of the reader pools open on the primary during the outage.
    reader_sessions_on_primary: int
    wal_behind_bytes: int
    catchup_s: float
    restart_log: str
    data_dir_identity_before: tuple
    data_dir_identity_after: tuple

    @property
    def rebootstrapped(self) -> bool:
        return BOOTSTRAP_MARKER in self.restart_log

    @property
    def started_existing_cluster(self) -> bool:
        return EXISTING_CLUSTER_MARKER in self.restart_log

    def figures(self) -> list[Figure]:
        drill = "db_replica_loss"
        outage = {"since": self.killed_at, "until": self.returned_at}
        return [
            *failed_request_figures(drill, self.load, **outage),
            Figure(drill, "db_replica_loss_readyz_not_200", sum(s != 200 for s in self.readyz_statuses), "answers",
                   {"of": len(self.readyz_statuses)}),
            Figure(drill, "db_replica_restart_rebootstraps", int(self.rebootstrapped), "count",
                   {"started_existing_cluster": self.started_existing_cluster}),
            Figure(drill, "db_replica_return_wal_behind_bytes", self.wal_behind_bytes, "bytes"),
            Figure(drill, "db_replica_return_catchup_seconds", self.catchup_s, "s", {"to": "0 bytes of replay lag"}),
            load_rps_figure(drill, self.load),
        ]


def data_dir_identity(cluster: PgCluster) -> tuple:
    """What a fresh base backup would change: the inode of PG_VERSION (pg_basebackup into
    an emptied dir writes a new file) and the data dir's own inode."""
    return (os.stat(cluster.data_dir).st_ino, os.stat(cluster.data_dir / "PG_VERSION").st_ino)


def replica_lag_bytes(stack: LoopbackStack, slot: str = "replica_0", of: PgCluster | None = None) -> int | None:
    """Bytes of WAL the replica streaming through `slot` has not replayed, from the view
    of its primary (`of`, the stack's primary by default); None while it is not streaming."""
    with stack.db.connect(of or stack.primary) as conn:
        row = conn.execute("""SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
                              FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'""",
                           (slot,)).fetchone()
    return None if row is None or row[0] is None else row[0]


def reader_sessions(stack: LoopbackStack, cluster: PgCluster) -> int:
    with stack.db.connect(cluster) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                            ("hastack:reader:%",)).fetchone()[0]


def db_replica_loss(stack: LoopbackStack) -> DbReplicaLossResult:
    """SIGKILL the DB replica under load; poll every app's /readyz through the outage;
    restart it with the same bootstrap script and time its catch-up."""
    replica = stack.replica
    identity_before = data_dir_identity(replica)
    with steady_load(stack) as traffic:
        traffic.wait_for_requests(PHASE_REQUESTS)
        killed_at = time.monotonic()
        replica.kill()
        readyz_statuses = []
        outage_ends = len(traffic.results) + PHASE_REQUESTS
        while len(traffic.results) < outage_ends and not traffic.done:
            readyz_statuses += [httpx.get(f"{app.url}/readyz", timeout=5).status_code for app in stack.apps]
        on_primary = reader_sessions(stack, stack.primary)
        with stack.db.connect(stack.primary) as conn:
            (wal_behind,) = conn.execute("""SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
                                            FROM pg_replication_slots WHERE slot_name = 'replica_0'""").fetchone()
        log_offset = replica.log_path.stat().st_size
        returned_at = time.monotonic()
        stack.db.start_replica(0)
        catchup_s = wait_until(lambda: replica_lag_bytes(stack) == 0, 30, "replica replayed all WAL", 0.01)
        traffic.wait_for_requests(PHASE_REQUESTS)
    return DbReplicaLossResult(traffic.report, killed_at, returned_at, readyz_statuses, on_primary, wal_behind,
                               catchup_s, read_log_from(replica, log_offset), identity_before,
                               data_dir_identity(replica))


# ----------------------------------------------------------------- 4. manual failover


@dataclass
class ManualFailoverResult:
    load: LoadReport
    killed_at: float
    promote_s: float
    first_write_s: float
    committed_note_ids: set[str]
    lost_note_ids: set[str]
    app_pids_before: list[int]
    app_pids_after: list[int]
    new_primary_in_recovery: bool
    # The runbook's last step: the old primary rebuilt as a replica of the new one.
    rebuild_s: float
    rebuild_log: str
    rebuilt_streaming: bool
    # Acknowledged notes the rebuilt node shows once it has replayed everything.
    notes_on_rebuilt_node: int
    write_after_rebuild_ok: bool

    @property
    def rebuilt_by_base_backup(self) -> bool:
        return BOOTSTRAP_MARKER in self.rebuild_log

    def figures(self) -> list[Figure]:
        drill = "failover"
        return [
            Figure(drill, "failover_promote_seconds", self.promote_s, "s", {"command": "SELECT pg_promote()"}),
            Figure(drill, "failover_write_resume_seconds", self.first_write_s, "s",
                   {"from": "primary SIGKILL", "to": "first POST /notes acknowledged through the LB",
                    "includes": "promote + app reconnect + haproxy rise"}),
            Figure(drill, "failover_rows_lost", len(self.lost_note_ids), "rows",
                   {"acknowledged": len(self.committed_note_ids), "replication": "async"}),
            *failed_request_figures(drill, self.load, since=self.killed_at),
            load_rps_figure(drill, self.load),
            Figure(drill, "failover_rebuild_old_primary_seconds", self.rebuild_s, "s",
                   {"from": "rendered bootstrap script started", "to": "streaming, 0 bytes behind"}),
        ]


def first_write_after(traffic: MixedLoad, moment: float) -> float | None:
    """When the first POST started after `moment` was acknowledged, or None yet."""
    ends = [r.ended for r in list(traffic.results) if r.kind == "post_note" and r.ok and r.started >= moment]
    return min(ends) if ends else None


def manual_failover(stack: LoopbackStack) -> ManualFailoverResult:
    """SIGKILL the DB primary under load and promote the replica at once with the
    runbook's command; the apps keep their DATABASE_URL. Count the acknowledged notes
    the new primary does not have. Then rebuild the old primary as a replica of the new
    one, as the runbook says, and check it streams and the app still writes."""
    app_pids_before = [app.process.pid for app in stack.apps]
    with steady_load(stack) as traffic:
        traffic.wait_for_requests(PHASE_REQUESTS)
        killed_at = time.monotonic()
        stack.primary.kill()
        stack.promote(0)
        promote_s = time.monotonic() - killed_at
        wait_until(lambda: first_write_after(traffic, killed_at) is not None, 60, "a write after failover", 0.01)
        first_write_s = first_write_after(traffic, killed_at) - killed_at
        traffic.wait_for_requests(PHASE_REQUESTS)
    committed = traffic.report.committed_note_ids()
    new_primary, old_primary = stack.replica, stack.primary
    with stack.db.connect_app(new_primary) as conn:
        (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    present = notes_present(stack, new_primary, committed)

    rebuild_started = time.monotonic()
    log_offset = stack.rebuild_old_primary_as_replica()
    wait_until(lambda: replica_lag_bytes(stack, REBUILT_PRIMARY_SLOT, of=new_primary) == 0, 30,
               "rebuilt old primary streaming and caught up", 0.01)
    rebuild_s = time.monotonic() - rebuild_started
    write_after_rebuild = httpx.post(f"{stack.url}/notes", json={"body": "after the rebuild"}, timeout=10)
    return ManualFailoverResult(
        traffic.report, killed_at, promote_s, first_write_s, committed, committed - present,
        app_pids_before, [app.process.pid for app in stack.apps], in_recovery,
        rebuild_s, read_log_from(old_primary, log_offset),
        rebuilt_streaming=replica_lag_bytes(stack, REBUILT_PRIMARY_SLOT, of=new_primary) is not None,
        notes_on_rebuilt_node=len(notes_present(stack, old_primary, committed)),
        write_after_rebuild_ok=write_after_rebuild.status_code == 201)


def notes_present(stack: LoopbackStack, cluster: PgCluster, note_ids: set[str]) -> set[str]:
    with stack.db.connect_app(cluster) as conn:
        return notes_stored(conn, note_ids)


def notes_stored(conn: psycopg.Connection, note_ids: set[str]) -> set[str]:
    """Which of `note_ids` the database behind `conn` holds."""
    return {row[0] for row in conn.execute("SELECT id::text FROM notes WHERE id = ANY(%s::uuid[])",
                                           (list(note_ids),))}


def read_log_from(cluster: PgCluster, offset: int) -> str:
    with open(cluster.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


# ----------------------------------------------------------------- 5. replication lag

PGBENCH_SCALE = 4
PGBENCH_CLIENTS = 4
PGBENCH_SECONDS = 10
PGBENCH_DB = "pgbench"


@dataclass
class ReplicationLagResult:
    lag_bytes: list[int]
    lag_seconds: list[float]
    read_your_writes_s: list[float]
    pgbench_tps: float
    pgbench_transactions: int

    def figures(self) -> list[Figure]:
        drill = "replication_lag"
        workload = {"load": f"pgbench -c {PGBENCH_CLIENTS} -T {PGBENCH_SECONDS} scale {PGBENCH_SCALE}"}
        figures = []
        for percentile in (50, 99):
            figures += [
                Figure(drill, f"replication_lag_bytes_p{percentile}", nearest_rank(percentile, self.lag_bytes),
                       "bytes", {"samples": len(self.lag_bytes), **workload}),
                Figure(drill, f"replication_lag_seconds_p{percentile}", nearest_rank(percentile, self.lag_seconds),
                       "s", {"samples": len(self.lag_seconds), "source": "pg_stat_replication.replay_lag", **workload}),
                Figure(drill, f"read_your_writes_replica_seconds_p{percentile}",
                       nearest_rank(percentile, self.read_your_writes_s), "s",
                       {"samples": len(self.read_your_writes_s), **workload}),
            ]
        figures.append(Figure(drill, "replication_lag_pgbench_tps", self.pgbench_tps, "transactions/s",
                              {"transactions": self.pgbench_transactions, **workload}))
        return figures


def pgbench(stack: LoopbackStack, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PGPASSWORD": stack.db.passwords.superuser}
    return subprocess.Popen([find("pgbench"), "-h", "127.0.0.1", "-p", str(stack.primary.port), "-U", SUPERUSER,
                             *args, PGBENCH_DB], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_your_writes_s(writer: psycopg.Connection, reader: psycopg.Connection, deadline_s: float = 10.0) -> float:
    """Write a row on the primary; seconds from its commit until the replica shows it."""
    (row_id,) = writer.execute("INSERT INTO read_your_writes_probe DEFAULT VALUES RETURNING id").fetchone()
    return wait_until(
        lambda: reader.execute("SELECT 1 FROM read_your_writes_probe WHERE id = %s", (row_id,)).fetchone() is not None,
        deadline_s, f"probe row {row_id} on the replica", interval_s=0.0005)


def replication_lag(stack: LoopbackStack) -> ReplicationLagResult:
    """pgbench's TPC-B-like writes on the primary for PGBENCH_SECONDS; meanwhile sample
    the replica's lag from pg_stat_replication and time read-your-writes on the replica."""
    with stack.db.connect(stack.primary) as conn:
        conn.execute(f"CREATE DATABASE {PGBENCH_DB}")
    with stack.db.connect(stack.primary, PGBENCH_DB) as conn:
        conn.execute("CREATE TABLE read_your_writes_probe (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)")
    init = pgbench(stack, "-i", "-q", "-s", str(PGBENCH_SCALE))
    if init.wait(timeout=120) != 0:
        raise RuntimeError(f"pgbench -i failed:\n{init.stdout.read()}")
    wait_until(lambda: replica_lag_bytes(stack) == 0, 60, "replica caught up with pgbench -i", 0.05)

    lag_bytes, lag_seconds, ryw = [], [], []
    with (stack.db.connect(stack.primary, PGBENCH_DB) as writer,
          stack.db.connect(stack.replica, PGBENCH_DB) as reader,
          stack.db.connect(stack.primary) as monitor):
        bench = pgbench(stack, "-n", "-c", str(PGBENCH_CLIENTS), "-j", "2", "-T", str(PGBENCH_SECONDS))
        try:
            while bench.poll() is None:
                row = monitor.execute("""SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
                                                COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8
                                         FROM pg_stat_replication WHERE application_name = 'replica_0'""").fetchone()
                if row is not None:
                    lag_bytes.append(row[0])
                    lag_seconds.append(row[1])
                ryw.append(read_your_writes_s(writer, reader))
        finally:
            if bench.poll() is None:
                bench.kill()
            output = bench.communicate(timeout=30)[0]
    if bench.returncode != 0:
        raise RuntimeError(f"pgbench failed ({bench.returncode}):\n{output}")
    tps = next(float(line.split("=")[1].split()[0]) for line in output.splitlines() if line.startswith("tps"))
    transactions = next(int(line.split(":")[1].split()[0]) for line in output.splitlines()
                        if line.startswith("number of transactions actually processed"))
    return ReplicationLagResult(lag_bytes, lag_seconds, ryw, tps, transactions)


# ----------------------------------------------------------------- 6. automatic failover (Patroni)

# The HA target for a Patroni node crash: writes accepted again within this (docs/runbooks.md).
AUTOMATIC_FAILOVER_TARGET_S = 10.0
# The app's database settings, read from each running process to show none was reconfigured.
APP_DATABASE_ENV = ("DATABASE_URL", "DATABASE_READ_URL")


@dataclass
class AutomaticFailoverResult:
    load: LoadReport
    crashed: str  # the Patroni member that led and was SIGKILLed
    new_leader: str
    killed_at: float
    # From the kill until another member holds the leader key (Patroni's part), and
    # until the first POST acknowledged through the LB (the whole outage for writes).
    leader_elected_s: float
    first_write_s: float
    committed_note_ids: set[str]
    lost_note_ids: set[str]
    # {pid: its DATABASE_URL and DATABASE_READ_URL} of every app process, before and after.
    apps_before: dict[int, dict[str, str]]
    apps_after: dict[int, dict[str, str]]

    def failing_window_s(self, kind: str) -> tuple[float, float] | None:
        """From the start of the first failed request of `kind` to the end of the last,
        in seconds after the kill; None when none failed."""
        failed = self.load.failed(kind, since=self.killed_at)
        if not failed:
            return None
        return (min(r.started for r in failed) - self.killed_at, max(r.ended for r in failed) - self.killed_at)

    def figures(self) -> list[Figure]:
        drill = "automatic_failover"
        figures = [
            Figure(drill, "automatic_failover_write_resume_seconds", self.first_write_s, "s",
                   {"target_s": AUTOMATIC_FAILOVER_TARGET_S, "from": "leader node SIGKILL (patroni + postgres)",
                    "to": "first POST /notes acknowledged through the LB",
                    "includes": "leader key ttl + promotion + app reconnect + haproxy rise",
                    "crashed": self.crashed, "new_leader": self.new_leader}),
            Figure(drill, "automatic_failover_leader_elected_seconds", self.leader_elected_s, "s",
                   {"from": "leader node SIGKILL", "to": "another member reports itself leader (REST /cluster)"}),
            Figure(drill, "automatic_failover_rows_lost", len(self.lost_note_ids), "rows",
                   {"acknowledged": len(self.committed_note_ids), "replication": "synchronous_mode"}),
            *failed_request_figures(drill, self.load, since=self.killed_at),
        ]
        for kind in KINDS:
            window = self.failing_window_s(kind)
            figures.append(Figure(drill, f"automatic_failover_{kind}_failing_seconds",
                                  window[1] - window[0] if window else 0.0, "s",
                                  {"from_s_after_kill": window[0] if window else None,
                                   "to_s_after_kill": window[1] if window else None}))
        figures.append(load_rps_figure(drill, self.load))
        return figures


def app_database_env(stack: LoopbackStack) -> dict[int, dict[str, str]]:
    """{pid: DATABASE_URL and DATABASE_READ_URL} of each running app, read from
    /proc/<pid>/environ: what the process runs with, not what the harness meant to give it."""
    apps = {}
    for app in stack.apps:
        entries = Path(f"/proc/{app.process.pid}/environ").read_bytes().decode().split("\0")
        env = dict(entry.split("=", 1) for entry in entries if "=" in entry)
        apps[app.process.pid] = {name: env[name] for name in APP_DATABASE_ENV}
    return apps


def automatic_failover(stack: LoopbackStack) -> AutomaticFailoverResult:
    """SIGKILL the Patroni leader node (Patroni and its postgres) under load; nobody
    promotes anything: Patroni's sync standby takes the leader key once it expires, the
    apps' pools find it through the unchanged multi-host DATABASE_URL, and HAProxy
    brings the apps back as their /readyz turns 200. Count the acknowledged notes the
    new leader does not have (synchronous mode: there must be none)."""
    cluster = stack.db
    if not isinstance(cluster, PatroniCluster):
        raise TypeError("automatic_failover needs a stack with database='patroni'")
    apps_before = app_database_env(stack)
    with steady_load(stack) as traffic:
        traffic.wait_for_requests(PHASE_REQUESTS)
        leader = cluster.leader()
        killed_at = time.monotonic()
        leader.crash()
        wait_until(lambda: any(role == "leader" and name != leader.name for name, role in cluster.roles().items()),
                   LOAD_MAX_SECONDS, "another member leading", 0.02)
        leader_elected_s = time.monotonic() - killed_at
        # Bounded by the load itself, which stops LOAD_MAX_SECONDS after it started.
        wait_until(lambda: first_write_after(traffic, killed_at) is not None or traffic.done, LOAD_MAX_SECONDS,
                   "a write after the leader crash", 0.01)
        first_write = first_write_after(traffic, killed_at)
        if first_write is None:
            raise TimeoutError(f"no POST /notes acknowledged in the {LOAD_MAX_SECONDS}s load after the leader crash")
        traffic.wait_for_requests(PHASE_REQUESTS)
    committed = traffic.report.committed_note_ids()
    with stack.connect_app_writer() as conn:
        present = notes_stored(conn, committed)
    return AutomaticFailoverResult(
        traffic.report, crashed=leader.name, new_leader=cluster.leader().name, killed_at=killed_at,
        leader_elected_s=leader_elected_s, first_write_s=first_write - killed_at,
        committed_note_ids=committed, lost_note_ids=committed - present,
        apps_before=apps_before, apps_after=app_database_env(stack))
