"""Patroni on 127.0.0.1: an etcd cluster and Patroni nodes started from the rendered etcd
flags and patroni.yml (the same renderers the Docker components use), and a leader
crash under steady writes.

    with loopback_patroni() as cluster:
        outcome = crash_leader_under_writes(cluster)
        outcome.writes_resume_s, outcome.lost

Used by tests/integration/test_render_patroni.py and bench/patroni_failover.py. Every
process runs on 127.0.0.1 (Patroni and postgres as the postgres OS user) and is stopped
on exit; everything lives under temp dirs that are removed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from components.render.etcd import EtcdClusterSettings, EtcdMember, etcd_member_flags
from components.render.patroni import (
    REPLICATION_PASSWORD_ENV,
    SUPERUSER_PASSWORD_ENV,
    PatroniSettings,
    patroni_post_bootstrap_script,
    render_patroni_yml,
)
from components.render.postgres import APP_DB_PASSWORD_ENV, PrimarySettings, replica_slot_name

from .binaries import POSTGRES_BIN_DIR, find
from .certificates import LoopbackCertificates, issue_loopback_certificates
from .ports import free_port, wait_until
from .postgres import chown_to_postgres, make_owned_dir, remove_tree
from .replication import APP_DB, APP_USER, LOOPBACK_CIDR, MAX_SLOT_WAL_KEEP_SIZE_MB, Passwords

# As on Docker (components/docker/etcd.py): three members, so one may be lost.
ETCD_MEMBERS = 3
# Binaries every function here needs; callers check them to skip or fail early.
REQUIRED_BINARIES = ("etcd", "patroni", "patronictl", "postgres", "psql", "openssl")
# Bounds on waiting for the cluster, so a broken setup fails instead of hanging.
ETCD_READY_S = 30
CLUSTER_READY_S = 90
WRITES_FLOWING_S = 30
FAILOVER_WAIT_S = 60
# A switchover or reinit with --wait; patronictl itself gives up on a switchover after 30 s.
PATRONICTL_TIMEOUT_S = 120
# What PatroniCluster.explain shows of each member's log: the last lines that are not the
# once-a-loop heartbeat or etcd client retries.
EXPLAIN_LOG_LINES = 25
_HEARTBEAT_LINE = re.compile(r"no action\. I am|Watchdog not supported|Lock owner: |Retrying on http|Reconnection allowed|Failed to get list of machines")
# Commits acknowledged before the crash, so the crash hits a cluster under load.
WRITES_BEFORE_CRASH = 50

# What a member adds to its rendered settings and environment, e.g. WAL archiving
# (loopback/backup_patroni.py): (node name, data dir, postgres port, socket dir) ->
# (PatroniSettings fields, env).
MemberExtras = Callable[[str, Path, int, Path], tuple[dict, dict[str, str]]]


def stop_process(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class EtcdCluster:
    settings: EtcdClusterSettings
    root: Path  # every member's data dir and log, removed on exit
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def client_endpoints(self) -> tuple[str, ...]:
        return self.settings.client_endpoints

    def crash(self, member_name: str) -> None:
        """SIGKILL one member, as when its container dies."""
        self.processes[member_name].kill()
        self.processes[member_name].wait(timeout=10)


@contextmanager
def loopback_etcd(members: int = ETCD_MEMBERS) -> Iterator[EtcdCluster]:
    """An etcd cluster on 127.0.0.1, started from the rendered member flags."""
    root = make_owned_dir("hastack-etcd-")
    cluster = EtcdCluster(EtcdClusterSettings(
        members=tuple(EtcdMember(f"etcd-{index}", "127.0.0.1", free_port(), free_port()) for index in range(members)),
        cluster_token="hastack-loopback",
        listen_host="127.0.0.1",
    ), root)
    try:
        for member in cluster.settings.members:
            with open(root / f"{member.name}.log", "ab") as log:
                cluster.processes[member.name] = subprocess.Popen(
                    [find("etcd"), *etcd_member_flags(cluster.settings, member.name, str(root / member.name))],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # /health answers true once the member serves requests through a quorum.
        for member in cluster.settings.members:
            wait_until(lambda: etcd_healthy(member), ETCD_READY_S, f"etcd member {member.name} healthy", 0.1)
        yield cluster
    finally:
        for process in cluster.processes.values():
            stop_process(process, grace_s=20)
        remove_tree(root)


def etcd_healthy(member: EtcdMember) -> bool:
    """The member serves requests through a quorum (its /health answers true)."""
    try:
        with urllib.request.urlopen(f"{member.client_url}/health", timeout=1) as response:
            return json.load(response).get("health") == "true"
    except OSError:
        return False


@dataclass
class PatroniNode:
    settings: PatroniSettings
    postgres_port: int
    api_port: int
    process: subprocess.Popen | None = None
    config_path: Path | None = None
    # Where the REST API answers: 127.0.0.1, or the node's namespace address in a drill.
    api_host: str = "127.0.0.1"

    @property
    def name(self) -> str:
        return self.settings.node_name

    def start(self, config_path: Path, env: dict[str, str], log_path: Path) -> None:
        self.config_path = config_path
        # Popen(user=...) rather than runuser: on SIGTERM runuser kills its child after
        # 2 s, before Patroni has stopped postgres, which would orphan the postmaster.
        as_postgres_user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([find("patroni"), str(config_path)], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True, **as_postgres_user)

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://{self.api_host}:{self.api_port}{path}", timeout=2) as response:
            return json.load(response)

    def crash(self) -> None:
        """SIGKILL the node: Patroni, and postgres with all its backends."""
        self._kill_postgres()
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Patroni stops its postgres on SIGTERM; whatever is left after that gets SIGKILL."""
        if self.process is not None:
            stop_process(self.process, grace_s=30)
        self._kill_postgres()

    def postmaster_pid(self) -> int | None:
        """The pid postgres last recorded in its data dir (it may have died since).
        Patroni starts postgres through a helper that exits, so the postmaster is not
        Patroni's child and cannot be found from Patroni's pid."""
        try:
            return int((Path(self.settings.data_dir) / "postmaster.pid").read_text().split()[0])
        except FileNotFoundError:
            return None

    def _kill_postgres(self) -> None:
        # Patroni runs postgres in a session (process group) of its own.
        pid = self.postmaster_pid()
        try:
            if pid is not None:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass  # postgres is not running


@dataclass
class PatroniCluster:
    nodes: list[PatroniNode]
    passwords: Passwords
    etcd: EtcdCluster
    root: Path  # every node's data dir, config and log, removed on exit
    certificates: LoopbackCertificates

    def node_addresses(self) -> list[tuple[str, int]]:
        """Every member's postgres as (host, port), in member order: any may lead, so
        the apps' URLs list them all, as components/docker/patroni.py does."""
        return [("127.0.0.1", node.postgres_port) for node in self.nodes]

    def server_pids(self) -> set[int]:
        """Patroni, postgres and etcd pids, for a check that none outlives the cluster."""
        pids = {process.pid for process in self.etcd.processes.values()}
        for node in self.nodes:
            pids |= {pid for pid in (node.process.pid if node.process else None, node.postmaster_pid())
                     if pid is not None}
        return pids

    def leader(self) -> PatroniNode:
        """The member holding the leader key now."""
        roles = self.roles()
        return next(node for node in self.nodes if roles.get(node.name) == "leader")

    def roles(self) -> dict[str, str]:
        """{node name: role} as the cluster reports it: leader, sync_standby, replica."""
        for node in self.nodes:
            if node.process.poll() is None:
                try:
                    return {member["name"]: member["role"] for member in node.api("/cluster")["members"]}
                except OSError:
                    continue
        return {}

    def writer(self) -> psycopg.Connection:
        """The app's writer connection: every node listed, read-write wanted (as DATABASE_URL)."""
        return psycopg.connect(host=",".join("127.0.0.1" for _ in self.nodes),
                               port=",".join(str(n.postgres_port) for n in self.nodes),
                               user=APP_USER, password=self.passwords.app, dbname=APP_DB,
                               target_session_attrs="read-write", connect_timeout=1, autocommit=True)

    def patronictl(self, *args: str) -> str:
        """Run `patronictl -c <patroni.yml> ARGS` (as the runbook does in a member) and return its output."""
        result = subprocess.run([find("patronictl"), "-c", str(self.nodes[0].config_path), *args],
                                capture_output=True, text=True, timeout=PATRONICTL_TIMEOUT_S)
        if result.returncode != 0:
            raise RuntimeError(f"patronictl {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def switchover(self, leader: str, candidate: str) -> None:
        """The runbook's `patronictl switchover --force`, until `candidate` leads. patronictl
        exits 0 even when the API refused ("Switchover failed, details: 412, candidate name
        does not match with sync_standby" while a member that just came back is not yet the
        sync standby again; 503 when it failed), so, as the runbook says, its last line is
        read and the switchover asked again until it succeeded."""
        answers: list[str] = []

        def done() -> bool:
            if self.roles().get(candidate) == "leader":
                return True
            output = self.patronictl("switchover", "--leader", leader, "--candidate", candidate, "--force")
            answers.append(output.strip().splitlines()[-1] if output.strip() else "")
            return "Successfully switched over" in output

        wait_until(done, PATRONICTL_TIMEOUT_S, f"{candidate} leads after a switchover", 1.0,
                   explain=lambda: "patronictl said:\n" + "\n".join(answers) + "\n" + self.explain())

    def wait_for_leader_and_sync_standby(self) -> None:
        def ready() -> bool:
            exited = [node.name for node in self.nodes if node.process.poll() is not None]
            if exited:
                raise RuntimeError(f"patroni exited on {exited}")
            roles = sorted(self.roles().values())
            return roles.count("leader") == 1 and "sync_standby" in roles

        wait_until(ready, CLUSTER_READY_S, "a leader and a sync standby", interval_s=0.2, explain=self.explain)

    def explain(self) -> str:
        """Each member's own view (GET /patroni) and the last lines of its log that are not
        the steady-state heartbeat: what a failed drill prints."""
        reports = []
        for node in self.nodes:
            try:
                view = node.api("/patroni")
                state = json.dumps({key: view.get(key) for key in ("role", "state", "timeline", "xlog")})
            except OSError as problem:
                state = f"API unreachable: {problem}"
            log = self.root / f"{node.name}.log"
            lines = [line for line in log.read_text(errors="replace").splitlines() if not _HEARTBEAT_LINE.search(line)] \
                if log.exists() else []
            reports.append(f"{node.name}: {state}\n" + "\n".join(f"  {line}" for line in lines[-EXPLAIN_LOG_LINES:]))
        return "\n".join(reports)


@contextmanager
def loopback_patroni(members: int = 2, *, member_extras: MemberExtras | None = None,
                     stanza_create: str | None = None) -> Iterator[PatroniCluster]:
    """`members` Patroni nodes over a loopback etcd cluster, with a leader and a sync standby;
    `stanza_create`: the post_bootstrap hook creates the pgBackRest stanza too."""
    with ExitStack() as stack:
        etcd = stack.enter_context(loopback_etcd())
        root = make_owned_dir("hastack-patroni-")
        stack.callback(remove_tree, root)
        passwords = Passwords.generate()
        certificates = issue_loopback_certificates(root)
        database = PrimarySettings(replica_slots=tuple(replica_slot_name(i) for i in range(members - 1)),
                                   max_slot_wal_keep_size_mb=MAX_SLOT_WAL_KEEP_SIZE_MB,
                                   replication_cidr=LOOPBACK_CIDR, app_db=APP_DB, app_user=APP_USER,
                                   listen_addresses="127.0.0.1", tls=certificates.server_tls())
        post_bootstrap = root / "post-bootstrap.sh"
        post_bootstrap.write_text(patroni_post_bootstrap_script(database, bin_dir=str(POSTGRES_BIN_DIR),
                                                               stanza_create=stanza_create))
        post_bootstrap.chmod(0o755)
        # HOME: Patroni writes its pgpass file there, and /root is not the postgres user's.
        env = {**os.environ, "HOME": str(root), SUPERUSER_PASSWORD_ENV: passwords.superuser,
               REPLICATION_PASSWORD_ENV: passwords.replication, APP_DB_PASSWORD_ENV: passwords.app}
        nodes, node_env = [], {}
        for index in range(members):
            postgres_port, api_port = free_port(), free_port()
            name, data_dir = f"db-{index}", root / f"db-{index}"
            extra_settings, node_env[name] = member_extras(name, data_dir, postgres_port, root) if member_extras else ({}, {})
            settings = PatroniSettings(
                scope="hastack-loopback", node_name=name, etcd_hosts=etcd.client_endpoints,
                restapi_listen=f"127.0.0.1:{api_port}", restapi_connect_address=f"127.0.0.1:{api_port}",
                postgres_listen=f"127.0.0.1:{postgres_port}", postgres_connect_address=f"127.0.0.1:{postgres_port}",
                data_dir=str(data_dir), database=database, bin_dir=str(POSTGRES_BIN_DIR),
                unix_socket_dir=str(root), post_bootstrap_path=str(post_bootstrap), **extra_settings)
            nodes.append(PatroniNode(settings, postgres_port, api_port))
        for node in nodes:
            stack.callback(node.stop)
            config = root / f"{node.name}.yml"
            config.write_text(render_patroni_yml(node.settings))
            chown_to_postgres(config)
            node.start(config, {**env, **node_env[node.name]}, root / f"{node.name}.log")
        cluster = PatroniCluster(nodes, passwords, etcd, root, certificates)
        cluster.wait_for_leader_and_sync_standby()
        yield cluster


class SteadyWriter(threading.Thread):
    """Inserts ids 1, 2, 3, ... one commit at a time, reconnecting after errors the way
    an app would, and records when each commit was acknowledged."""

    def __init__(self, cluster: PatroniCluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.acknowledged_at: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        next_id = 1
        while not self.stopping.is_set():
            try:
                with self.cluster.writer() as conn:
                    while not self.stopping.is_set():
                        conn.execute("INSERT INTO notes VALUES (%s)", (next_id,))
                        self.acknowledged_at[next_id] = time.monotonic()
                        next_id += 1
            except psycopg.OperationalError:
                # The commit of next_id may or may not have happened; it was not
                # acknowledged, so it is not counted either way. Retry under a new id.
                next_id += 1
                self.stopping.wait(0.05)  # back off between reconnects instead of spinning

    def first_ack_after(self, moment: float) -> float | None:
        return min((at for at in list(self.acknowledged_at.values()) if at > moment), default=None)


@dataclass(frozen=True)
class FailoverOutcome:
    crashed: str  # the leader that was SIGKILLed
    writes_resume_s: float  # from the SIGKILL to the first commit acknowledged after it
    acknowledged: int  # commits acknowledged to the writer over the whole run
    lost: frozenset[int] = field(default_factory=frozenset)  # acknowledged ids missing afterwards


def crash_leader_under_writes(cluster: PatroniCluster) -> FailoverOutcome:
    """SIGKILL the leader node while one writer commits steadily; measure how long until a
    write is accepted again, and which acknowledged commits the new leader lacks."""
    with cluster.writer() as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")
    load = SteadyWriter(cluster)
    load.start()
    try:
        wait_until(lambda: len(load.acknowledged_at) >= WRITES_BEFORE_CRASH, WRITES_FLOWING_S, "writes flowing")
        leader = cluster.leader()
        leader.crash()
        crashed_at = time.monotonic()
        wait_until(lambda: load.first_ack_after(crashed_at) is not None, FAILOVER_WAIT_S,
                   "a write accepted after the leader crashed", interval_s=0.05)
        writes_resume_s = load.first_ack_after(crashed_at) - crashed_at
    finally:
        load.stopping.set()
        load.join(timeout=10)
    stored = _stored_ids(cluster)
    return FailoverOutcome(crashed=leader.name, writes_resume_s=writes_resume_s,
                           acknowledged=len(load.acknowledged_at), lost=frozenset(set(load.acknowledged_at) - stored))


def _stored_ids(cluster: PatroniCluster) -> set[int]:
    """Every id the leader holds, read through the writer URL. One CI run's read, just after
    the failover, met "session is read-only" on the new leader; so the read is retried until
    the leader takes it (bounded, and the members' state is printed if it never does)."""
    stored: set[int] = set()

    def read() -> bool:
        try:
            with cluster.writer() as conn:
                stored.update(row[0] for row in conn.execute("SELECT id FROM notes"))
            return True
        except psycopg.OperationalError:
            return False

    wait_until(read, FAILOVER_WAIT_S, "the new leader readable through the writer URL", 0.2, explain=cluster.explain)
    return stored
