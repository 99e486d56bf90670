"""The swarm stack on three "machines": network namespaces on one bridge (loopback/netns.py),
each running what Swarm places on a node, from the same renderers as components/swarm/:

- every node: the Swarm HAProxy config (server-template over tasks.<app>, resolved through
  a DNS server standing in for Docker's, loopback/dns.py), an app replica and an etcd member;
- n1 and n2: a Patroni member each (synchronous_mode, failsafe_mode, ttl 5 / retry 2), etcd
  and the app's URLs with components/swarm/'s timings;
- the etcd-leader-placement job (components/swarm/etcd_leader_job.py) every 5 s, as the
  service's supercronic runs it, from the client namespace (Swarm keeps that one task
  running on some node).

    with nodes_stack() as stack:
        stack.leader_node()           # "n1"
        stack.lose_machine("n1")      # every process SIGKILLed, the node off the bridge
        stack.restore_machine("n1")

The calling thread works from the "client" namespace (10.213.0.100) for the whole block:
it reaches every node's LB, Patroni API and postgres over the bridge. Every process runs
in its node's namespace and is stopped, and every namespace deleted, on exit.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from components.config import HealthCheckConfig, LoadBalancerConfig, LoadBalancerTlsConfig
from components.render.etcd import EtcdClusterSettings, EtcdMember, etcd_member_flags
from components.render.patroni import (
    REPLICATION_PASSWORD_ENV,
    SUPERUSER_PASSWORD_ENV,
    PatroniSettings,
    patroni_post_bootstrap_script,
    render_patroni_yml,
)
from components.render.postgres import APP_DB_PASSWORD_ENV, PrimarySettings, replica_slot_name
from components.swarm.load_balancer import LoadBalancerArgs, haproxy_settings
from components.swarm import etcd_leader_job
from components.swarm.etcd import ELECTION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS
from components.swarm.etcd_leader_placement import EVERY_S, job_env
from components.swarm.patroni import CLIENT_OPTIONS, LOOP_WAIT_S, RETRY_TIMEOUT_S, TTL_S

from .app import AppProcess, database_url, start_app
from .binaries import POSTGRES_BIN_DIR, find
from .certificates import LoopbackCertificates, issue_loopback_certificates
from .dns import TaskDns
from .haproxy import UP, LoopbackHaproxy
from .netns import DRILL_NETWORK, DrillNetwork, drill_network
from .patroni import CLUSTER_READY_S, EtcdCluster, PatroniCluster, PatroniNode, etcd_healthy, stop_process
from .ports import wait_until
from .postgres import chown_to_postgres, make_owned_dir, remove_tree
from .replication import APP_DB, APP_USER, MAX_SLOT_WAL_KEEP_SIZE_MB, Passwords
from .stack import SHUTDOWN_DRAIN_S

NODES = ("n1", "n2", "n3")
PATRONI_NODES = ("n1", "n2")
# Fixed ports: each node is a machine of its own, so they never collide.
APP_PORT, LB_PORT, STATS_PORT, POSTGRES_PORT, RESTAPI_PORT = 8000, 8080, 8404, 5432, 8008
APP_SERVICE = "hastack-drill-app"
# Bounds on a machine coming back: etcd rejoining, Patroni rewinding, the app migrating.
MACHINE_READY_S = 90
# The app's wait for a primary, as Pulumi.onprem.yaml sets it (app.env).
WRITER_WAIT_S = "3"
# The direct writers' table lives in its own schema, apart from the app's tables.
WRITER_SCHEMA = "drill"
PATRONI_SCOPE = "hastack-drill"
# A job run's own bound (a run takes well under a second).
JOB_TIMEOUT_S = 30


class ScheduledJob(threading.Thread):
    """Runs `argv` every `every_s`, never two runs at once, as supercronic runs a crontab
    line; each run's output is appended to `log`."""

    def __init__(self, argv: list[str], env: dict[str, str], every_s: float, log: Path):
        super().__init__(daemon=True)
        self.argv, self.env, self.every_s, self.log = argv, env, every_s, log
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every_s):
            with open(self.log, "ab") as out:
                try:
                    subprocess.run(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=JOB_TIMEOUT_S, check=False)
                except subprocess.TimeoutExpired:
                    # A hung run is killed and the schedule goes on, as supercronic's does.
                    out.write(f"job killed after {JOB_TIMEOUT_S}s\n".encode())

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=JOB_TIMEOUT_S)


@dataclass
class Machine:
    """What runs on one node now (None: not running)."""

    name: str
    address: str
    etcd: subprocess.Popen | None = None
    patroni: PatroniNode | None = None
    app: AppProcess | None = None
    lb: LoopbackHaproxy | None = None


@dataclass
class DirectWriter:
    """A libpq writer straight to the given members (read-write wanted), for
    loopback.patroni.SteadyWriter: the drills' own record of acknowledged commits."""

    addresses: list[str]
    password: str
    ca_file: Path

    def writer(self) -> psycopg.Connection:
        return psycopg.connect(host=",".join(self.addresses), port=",".join(str(POSTGRES_PORT) for _ in self.addresses),
                               user=APP_USER, password=self.password, dbname=APP_DB, target_session_attrs="read-write",
                               connect_timeout=2, autocommit=True, options=f"-c search_path={WRITER_SCHEMA}",
                               sslmode="verify-full", sslrootcert=str(self.ca_file))


@dataclass
class NodesStack:
    network: DrillNetwork
    root: Path
    passwords: Passwords
    etcd: EtcdCluster
    patroni: PatroniCluster
    dns: TaskDns
    certificates: LoopbackCertificates
    machines: dict[str, Machine] = field(default_factory=dict)

    # ---------------------------------------------------------------- addresses

    def lb_url(self, node: str) -> str:
        return self.machines[node].lb.url

    def app_address(self, node: str) -> str:
        return f"{self.machines[node].address}:{APP_PORT}"

    def patroni_node(self, node: str) -> PatroniNode:
        return next(member for member in self.patroni.nodes if member.name == f"db-{node}")

    def leader_node(self) -> str:
        return self.patroni.leader().name.removeprefix("db-")

    def placement_env(self) -> dict[str, str]:
        """The etcd-leader-placement job's environment, as components/swarm/ sets it."""
        return job_env([m.name for m in self.etcd.settings.members], list(NODES), [m.client_url for m in self.etcd.settings.members],
                       [self.patroni_node(node).name for node in PATRONI_NODES], list(PATRONI_NODES), PATRONI_SCOPE)

    def etcd_leader_node(self) -> str:
        """The node whose etcd member leads now."""
        topology = etcd_leader_job.Topology.from_env(self.placement_env())
        view = etcd_leader_job.read_etcd(topology)
        return topology.etcd_nodes[view.name_of(view.leader_id)]

    def connect(self, node: str, **kwargs) -> psycopg.Connection:
        """The app role's connection to one member (any role)."""
        return psycopg.connect(host=self.machines[node].address, port=POSTGRES_PORT, user=APP_USER, password=self.passwords.app,
                               dbname=APP_DB, connect_timeout=2, autocommit=True, sslmode="verify-full",
                               sslrootcert=str(self.certificates.ca_file), **kwargs)

    def empty_writer_table(self) -> None:
        """Before a drill's SteadyWriter (which counts from id 1): no rows of an earlier drill."""
        with self.direct_writer().writer() as conn:
            conn.execute(f"TRUNCATE {WRITER_SCHEMA}.notes")

    def direct_writer(self, nodes: tuple[str, ...] = PATRONI_NODES) -> DirectWriter:
        return DirectWriter([self.machines[node].address for node in nodes], self.passwords.app, self.certificates.ca_file)

    # ---------------------------------------------------------------- starting

    def start_etcd(self, node: str) -> None:
        member = f"etcd-{node}"
        with self.network.inside(node), open(self.root / f"{member}.log", "ab") as log:
            process = subprocess.Popen([find("etcd"), *etcd_member_flags(self.etcd.settings, member, str(self.root / member))],
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.etcd.processes[member] = process
        self.machines[node].etcd = process

    def start_patroni(self, node: str) -> None:
        member = self.patroni_node(node)
        env = {**os.environ, "HOME": str(self.root), SUPERUSER_PASSWORD_ENV: self.passwords.superuser,
               REPLICATION_PASSWORD_ENV: self.passwords.replication, APP_DB_PASSWORD_ENV: self.passwords.app}
        config = self.root / f"{member.name}.yml"
        config.write_text(render_patroni_yml(member.settings))
        chown_to_postgres(config)
        with self.network.inside(node):
            member.start(config, env, self.root / f"{member.name}.log")
        self.machines[node].patroni = member

    def start_app(self, node: str) -> None:
        members = [(self.machines[n].address, POSTGRES_PORT) for n in PATRONI_NODES]
        with self.network.inside(node):
            app = start_app(
                f"app-{node}", port=APP_PORT, storage_path=self.root / "uploads", log_dir=self.root,
                # The URLs components/swarm/patroni.py gives the app, timeouts included.
                database_url=database_url(members, APP_DB, user=APP_USER, ca_file=self.certificates.ca_file,
                                          client_options=CLIENT_OPTIONS),
                read_url=database_url(members, APP_DB, user=APP_USER, target_session_attrs="prefer-standby",
                                      ca_file=self.certificates.ca_file, client_options=CLIENT_OPTIONS),
                # All addresses of the node: its LB and the other nodes' LBs reach it.
                extra_env={"HOST": "0.0.0.0", "PGPASSWORD": self.passwords.app, "SHUTDOWN_DRAIN_S": str(SHUTDOWN_DRAIN_S),
                           "WRITER_WAIT_S": WRITER_WAIT_S},
            )
            self.machines[node].app = app
            app.wait_ready(MACHINE_READY_S)

    def start_lb(self, node: str) -> None:
        # Plain HTTP: the drills measure failover through the LBs; HTTPS on the Swarm config
        # is proven by tests/integration/test_render_swarm_haproxy.py.
        config = LoadBalancerConfig(health_check=HealthCheckConfig(), tls=LoadBalancerTlsConfig(enabled=False))
        args = LoadBalancerArgs(config=config, networks=(), app_service=APP_SERVICE,
                                app_port=APP_PORT, app_replicas=len(NODES), health_path="/readyz",
                                read_health_path="/readyz/read")
        settings = dataclasses.replace(haproxy_settings(args), resolver=self.dns.nameserver, bind_address=self.machines[node].address,
                                       frontend_port=LB_PORT, stats_port=STATS_PORT)
        workdir = self.root / f"lb-{node}"
        workdir.mkdir(exist_ok=True)
        lb = LoopbackHaproxy(settings, workdir)
        with self.network.inside(node):
            lb.start()
        self.machines[node].lb = lb

    def restore_machine(self, node: str) -> None:
        """Plug the node back in and start what Swarm would restart on it, in order."""
        self.network.heal(node)
        self.start_etcd(node)
        if node in PATRONI_NODES:
            self.start_patroni(node)
        self.start_app(node)
        self.start_lb(node)
        self.wait_healthy()

    # ---------------------------------------------------------------- stopping

    def lose_machine(self, node: str) -> None:
        """The machine is gone: off the bridge (no answer, not even a reset) and every
        process on it SIGKILLed at once."""
        self.network.cut(node)
        self.network.kill_every_process(node)
        self._reap(node)

    def stop_machine(self, node: str) -> None:
        """A clean shutdown, as `docker node update --availability drain` + reboot would
        give: the app drains (readiness 503 first), then HAProxy, Patroni and etcd stop."""
        machine = self.machines[node]
        if machine.app:
            machine.app.stop(grace_s=30)
        if machine.lb:
            machine.lb.stop()
        if machine.patroni:
            machine.patroni.stop()
        if machine.etcd:
            # etcd hands its leadership over on SIGTERM; a member that cannot, is killed.
            stop_process(machine.etcd, grace_s=10)
        self._reap(node)

    def _reap(self, node: str) -> None:
        machine = self.machines[node]
        for process in (machine.etcd, machine.patroni and machine.patroni.process, machine.app and machine.app.process,
                        machine.lb and machine.lb.process):
            if process is not None:
                process.wait(timeout=30)
        machine.etcd = machine.patroni = machine.app = machine.lb = None

    # ---------------------------------------------------------------- health

    def lb_view(self, node: str) -> dict[str, str]:
        """{app address: status} as the node's HAProxy sees the app's tasks."""
        return self.machines[node].lb.servers_by_address()

    def wait_healthy(self, deadline_s: float = MACHINE_READY_S) -> None:
        """Every etcd member healthy, a Patroni leader and sync standby, and every LB
        with every app task UP."""
        for member in self.etcd.settings.members:
            wait_until(lambda: etcd_healthy(member), deadline_s, f"etcd member {member.name} healthy", 0.1)
        self.patroni.wait_for_leader_and_sync_standby()
        everyone = sorted(self.app_address(node) for node in NODES)

        def all_up() -> bool:
            return all(sorted(a for a, s in self.lb_view(node).items() if s == UP) == everyone for node in NODES)

        wait_until(all_up, deadline_s, "every LB with every app task UP", 0.1)
        # The steady state the etcd-leader-placement job keeps (it runs every EVERY_S).
        wait_until(self._leaders_apart, deadline_s, "etcd's leader off the Patroni leader's machine", 0.2)

    def _leaders_apart(self) -> bool:
        try:
            return self.etcd_leader_node() != self.leader_node()
        except etcd_leader_job.JobError:
            return False  # etcd between leaders


def _patroni_member(node: str, address: str, root: Path, etcd_hosts: tuple[str, ...], post_bootstrap: Path,
                    certificates: LoopbackCertificates) -> PatroniNode:
    database = PrimarySettings(replica_slots=tuple(replica_slot_name(i) for i in range(len(PATRONI_NODES) - 1)),
                               max_slot_wal_keep_size_mb=MAX_SLOT_WAL_KEEP_SIZE_MB, replication_cidr=str(DRILL_NETWORK),
                               app_db=APP_DB, app_user=APP_USER, listen_addresses=address, tls=certificates.server_tls())
    sockets = root / f"sockets-{node}"  # every member listens on 5432: one socket dir each
    sockets.mkdir()
    chown_to_postgres(sockets)
    settings = PatroniSettings(
        scope=PATRONI_SCOPE, node_name=f"db-{node}", etcd_hosts=etcd_hosts,
        restapi_listen=f"{address}:{RESTAPI_PORT}", restapi_connect_address=f"{address}:{RESTAPI_PORT}",
        postgres_listen=f"{address}:{POSTGRES_PORT}", postgres_connect_address=f"{address}:{POSTGRES_PORT}",
        data_dir=str(root / f"db-{node}"), database=database, bin_dir=str(POSTGRES_BIN_DIR),
        unix_socket_dir=str(sockets), post_bootstrap_path=str(post_bootstrap),
        # As components/swarm/patroni.py renders it: a DCS outage alone is no reason to
        # demote, and the ttl it sets.
        failsafe_mode=True, ttl_s=TTL_S, loop_wait_s=LOOP_WAIT_S, retry_timeout_s=RETRY_TIMEOUT_S,
    )
    return PatroniNode(settings, POSTGRES_PORT, RESTAPI_PORT, api_host=address)


@contextmanager
def nodes_stack() -> Iterator[NodesStack]:
    """Three machines with the whole stack, healthy; everything torn down on exit."""
    with ExitStack() as stack:
        network = stack.enter_context(drill_network([*NODES, "client"]))
        stack.enter_context(network.inside("client"))
        root = make_owned_dir("hastack-nodes-")
        stack.callback(remove_tree, root)
        (root / "uploads").mkdir()
        dns = stack.enter_context(TaskDns({f"tasks.{APP_SERVICE}": [network.address(n) for n in NODES]}, host=network.address("client")))
        etcd = EtcdCluster(EtcdClusterSettings(
            members=tuple(EtcdMember(f"etcd-{node}", network.address(node)) for node in NODES),
            cluster_token="hastack-drill", listen_host="0.0.0.0",
            # components/swarm/etcd.py's timing.
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS, election_timeout_ms=ELECTION_TIMEOUT_MS), root)
        passwords = Passwords.generate()
        # One server certificate naming every Patroni node's address: verify-full holds for each.
        certificates = issue_loopback_certificates(root, [network.address(node) for node in PATRONI_NODES])
        post_bootstrap = root / "post-bootstrap.sh"
        members = [_patroni_member(node, network.address(node), root, etcd.client_endpoints, post_bootstrap, certificates)
                   for node in PATRONI_NODES]
        post_bootstrap.write_text(patroni_post_bootstrap_script(members[0].settings.database, bin_dir=str(POSTGRES_BIN_DIR)))
        post_bootstrap.chmod(0o755)
        patroni = PatroniCluster(members, passwords, etcd, root, certificates)
        nodes = NodesStack(network, root, passwords, etcd, patroni, dns, certificates,
                           {node: Machine(node, network.address(node)) for node in NODES})
        for node in NODES:
            stack.callback(nodes.stop_machine, node)
        for node in NODES:
            nodes.start_etcd(node)
        for node in NODES:
            wait_until(lambda: etcd_healthy(etcd.settings.members[NODES.index(node)]), CLUSTER_READY_S, f"etcd on {node}", 0.1)
        for node in PATRONI_NODES:
            nodes.start_patroni(node)
        patroni.wait_for_leader_and_sync_standby()
        with nodes.direct_writer().writer() as conn:
            conn.execute(f"CREATE SCHEMA {WRITER_SCHEMA}")
            conn.execute(f"CREATE TABLE {WRITER_SCHEMA}.notes (id int PRIMARY KEY)")
        for node in NODES:
            nodes.start_app(node)
        for node in NODES:
            nodes.start_lb(node)
        placement = ScheduledJob(["python3", etcd_leader_job.__file__], {**os.environ, **nodes.placement_env()}, EVERY_S,
                                 root / "etcd-leader-placement.log")
        placement.start()
        stack.callback(placement.stop)
        nodes.wait_healthy()
        yield nodes
