"""The multi-machine drills on loopback/nodes.py's three namespaces, each returning the
figures `python -m bench nodes` prints and tests/integration/test_drill_nodes.py asserts:

a. node loss under load: the Patroni leader's machine vanishes;
b. partition: the leader's machine is cut off the bridge, then plugged back in;
c. rolling restart of every machine, one at a time;
d. a 3 s DCS blip: etcd stops answering while every Patroni member still reaches the others.

Every drill leaves the stack healthy again (every machine up, a leader and a sync standby).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field

import psycopg

from .drills import Figure, notes_stored
from .haproxy import DOWN
from .load import GETS, KINDS, LoadReport, MixedLoad
from .no_replay import ReplayCheck, deliveries, posted_request_ids, replays_in
from .nodes import NODES, PATRONI_NODES, NodesStack
from .patroni import SteadyWriter
from .ports import wait_until

LOAD_RATE_PER_S = 80.0
LOAD_MAX_SECONDS = 60.0
PHASE_REQUESTS = 120
# Bounds, so a broken drill fails instead of hanging.
EJECTION_DEADLINE_S = 10
WRITES_RESUME_DEADLINE_S = 30
PROMOTION_DEADLINE_S = 30
REJOIN_DEADLINE_S = 90
# The partition lasts this long after the majority has promoted, so a leader that did not
# step down would have had ample time to acknowledge writes.
PARTITION_HOLD_S = 3.0
DCS_BLIP_S = 3.0


def load_through(stack: NodesStack, node: str) -> MixedLoad:
    """Bounded mixed traffic entering at one node's LB (a client may enter at any node)."""
    return MixedLoad(stack.lb_url(node), max_requests=int(LOAD_RATE_PER_S * LOAD_MAX_SECONDS), max_seconds=LOAD_MAX_SECONDS,
                     rate_per_s=LOAD_RATE_PER_S)


def other_node(exclude: set[str]) -> str:
    return next(node for node in NODES if node not in exclude)


def failed_figures(drill: str, report: LoadReport, **window: float) -> list[Figure]:
    return [Figure(drill, f"{drill}_failed_{kind}", len(report.failed(kind, **window)), "requests",
                   {"of": len(report.of(kind, **window)), "reasons": report.failure_reasons(kind, **window)}) for kind in KINDS]


class RoleWatch(threading.Thread):
    """Polls a member's Patroni API from the calling thread's namespace and records when
    it first reports itself the leader (the promotion)."""

    def __init__(self, stack: NodesStack, node: str):
        super().__init__(daemon=True)
        self.member = stack.patroni_node(node)
        self.promoted_at: float | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set() and self.promoted_at is None:
            try:
                if self.member.api("/patroni").get("role") in {"master", "primary"}:
                    self.promoted_at = time.monotonic()
            except OSError:
                pass
            self.stopping.wait(0.05)


# ----------------------------------------------------------------- a. node loss


@dataclass
class NodeLossResult:
    lost: str
    entry: str
    # Whose etcd member led when the machine was lost (the placement job keeps it off `lost`).
    etcd_leader: str
    load: LoadReport
    killed_at: float
    ejected_at: float
    write_resume_s: float
    acknowledged_lost: int
    acknowledged: int

    def failed_gets_after_ejection(self) -> int:
        return sum(len(self.load.failed(kind, since=self.ejected_at)) for kind in GETS)

    def figures(self) -> list[Figure]:
        drill = "node_loss"
        return [
            Figure(drill, "node_loss_write_resume_s", self.write_resume_s, "s",
                   {"target_s": 10.0, "lost_node": self.lost, "entry_node": self.entry, "etcd_leader_node": self.etcd_leader,
                    "from": "machine lost", "to": "first POST acknowledged"}),
            Figure(drill, "node_loss_acknowledged_lost", self.acknowledged_lost, "writes", {"of": self.acknowledged, "target": 0}),
            Figure(drill, "node_loss_failed_gets_after_ejection", self.failed_gets_after_ejection(), "requests",
                   {"target": 0, "ejection_s": round(self.ejected_at - self.killed_at, 3)}),
            *failed_figures(drill, self.load),
        ]


def node_loss(stack: NodesStack) -> NodeLossResult:
    """The leader's machine vanishes under load entering at a machine without a Patroni member."""
    stack.wait_healthy()
    lost = stack.leader_node()
    entry = other_node(set(PATRONI_NODES))
    lost_app = stack.app_address(lost)
    try:
        with load_through(stack, entry) as traffic:
            traffic.wait_for_requests(PHASE_REQUESTS)
            etcd_leader = stack.etcd_leader_node()
            killed_at = time.monotonic()
            stack.lose_machine(lost)
            wait_until(lambda: stack.lb_view(entry).get(lost_app) == DOWN, EJECTION_DEADLINE_S, f"{lost}'s app ejected", 0.01)
            ejected_at = time.monotonic()
            wait_until(lambda: any(r.ok and r.kind == "post_note" and r.started > killed_at for r in list(traffic.results)),
                       WRITES_RESUME_DEADLINE_S, "a POST acknowledged after the machine was lost", 0.05)
            traffic.wait_for_requests(PHASE_REQUESTS)
        report = traffic.report
        resumed = min(r.ended for r in report.of("post_note", since=killed_at) if r.ok)
        acknowledged = report.committed_note_ids()
        survivor = next(node for node in PATRONI_NODES if node != lost)
        with stack.connect(survivor) as conn:
            stored = notes_stored(conn, acknowledged)
    finally:
        stack.restore_machine(lost)
    return NodeLossResult(lost, entry, etcd_leader, report, killed_at, ejected_at, resumed - killed_at, len(acknowledged - stored), len(acknowledged))


# ----------------------------------------------------------------- b. partition


@dataclass
class PartitionResult:
    isolated: str
    cut_at: float
    promoted_at: float
    # When the isolated old leader acknowledged each commit of its local writer.
    isolated_acks: list[float]
    divergent_rows: int
    rejoined_role: str

    def acks_after_promotion(self) -> int:
        return sum(1 for at in self.isolated_acks if at >= self.promoted_at)

    def last_isolated_ack_s(self) -> float:
        return max((at for at in self.isolated_acks if at >= self.cut_at), default=self.cut_at) - self.cut_at

    def figures(self) -> list[Figure]:
        drill = "partition"
        return [
            Figure(drill, "partition_writes_acknowledged_by_isolated_leader_after_promotion", self.acks_after_promotion(), "writes",
                   {"target": 0, "isolated_node": self.isolated}),
            Figure(drill, "partition_promotion_s", self.promoted_at - self.cut_at, "s", {"from": "cut", "to": "majority leader"}),
            Figure(drill, "partition_isolated_last_ack_s", self.last_isolated_ack_s(), "s", {"from": "cut", "to": "last commit acknowledged by the isolated leader"}),
            Figure(drill, "partition_divergent_rows_after_heal", self.divergent_rows, "rows", {"target": 0, "rejoined_as": self.rejoined_role}),
        ]


def partition(stack: NodesStack) -> PartitionResult:
    """Cut the leader's machine off while a writer on that machine keeps committing to
    its local postgres; the majority side promotes; then heal."""
    stack.wait_healthy()
    isolated = stack.leader_node()
    majority = next(node for node in PATRONI_NODES if node != isolated)
    stack.empty_writer_table()
    with stack.network.inside(isolated):
        # Created inside: the thread's connections are made from the isolated machine.
        local = SteadyWriter(stack.direct_writer((isolated,)))
        local.start()
    watch = RoleWatch(stack, majority)
    try:
        wait_until(lambda: len(local.acknowledged_at) >= 50, 30, "local writes flowing", 0.05)
        watch.start()
        cut_at = time.monotonic()
        stack.network.cut(isolated)
        watch.join(PROMOTION_DEADLINE_S)
        if watch.promoted_at is None:
            raise TimeoutError(f"{majority} not promoted within {PROMOTION_DEADLINE_S}s of the partition")
        time.sleep(PARTITION_HOLD_S)  # not readiness: how long the isolated side is given to misbehave
    finally:
        watch.stopping.set()
        local.stopping.set()
        local.join(timeout=10)
        stack.network.heal(isolated)
    isolated_acks = sorted(local.acknowledged_at.values())
    old_leader = stack.patroni_node(isolated)
    wait_until(lambda: _streaming(stack, isolated), REJOIN_DEADLINE_S, f"{isolated} rejoined as a streaming replica", 0.2,
               explain=stack.patroni.explain)
    rejoined_role = stack.patroni.roles().get(old_leader.name, "")
    with stack.connect(majority) as primary:
        lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        # A new connection each time: Patroni may still restart the rejoined postgres (pg_rewind).
        wait_until(lambda: _replayed(stack, isolated, lsn), REJOIN_DEADLINE_S, "the rejoined replica caught up", 0.2)
        with stack.connect(isolated) as replica:
            rows = [{row[0] for row in conn.execute("SELECT id FROM drill.notes")} for conn in (primary, replica)]
    missing_acked = set(local.acknowledged_at) - rows[0]
    divergent = len(rows[0] ^ rows[1]) + len(missing_acked)
    stack.wait_healthy()
    return PartitionResult(isolated, cut_at, watch.promoted_at, isolated_acks, divergent, rejoined_role)


def _replayed(stack: NodesStack, node: str, lsn: str) -> bool:
    try:
        with stack.connect(node) as conn:
            return bool(conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0])
    except psycopg.OperationalError:
        return False


def _streaming(stack: NodesStack, node: str) -> bool:
    member = stack.patroni_node(node)
    try:
        state = member.api("/patroni")
    except OSError:
        return False
    return state.get("role") == "replica" and state.get("state") in {"running", "streaming"} and (
        stack.patroni.roles().get(member.name) in {"replica", "sync_standby"})


# ----------------------------------------------------------------- c. rolling restart


@dataclass
class RollingRestartResult:
    loads: list[LoadReport] = field(default_factory=list)
    switchovers: int = 0
    # The app's delivery records of every POST (loopback/no_replay.py), read at the end.
    replays: ReplayCheck | None = None

    def failed(self, kind: str) -> int:
        return sum(len(load.failed(kind)) for load in self.loads)

    @property
    def load(self) -> LoadReport:
        """The three machines' loads as one."""
        return LoadReport([r for load in self.loads for r in load.results], self.loads[0].started, self.loads[-1].ended)

    def figures(self) -> list[Figure]:
        drill = "rolling_restart_nodes"
        total = sum(self.failed(kind) for kind in KINDS)
        reasons: dict[str, int] = {}
        for load in self.loads:
            for kind in KINDS:
                for reason, count in load.failure_reasons(kind).items():
                    reasons[reason] = reasons.get(reason, 0) + count
        return [
            Figure(drill, "rolling_restart_failed_requests", total, "requests",
                   {"target": 0, "of": sum(len(load.results) for load in self.loads), "reasons": reasons,
                    "switchovers": self.switchovers, **{f"failed_{kind}": self.failed(kind) for kind in KINDS}}),
            *(self.replays.figures() if self.replays else []),
        ]


def rolling_restart(stack: NodesStack) -> RollingRestartResult:
    """Restart every machine in turn, as an operator patches a swarm: hand the Patroni
    leadership over first (the runbook's switchover), drain and stop everything on the
    machine, start it again, and wait for the whole stack to be healthy. Traffic enters at
    another machine throughout (the operator takes the node out of the DNS/VIP first)."""
    stack.wait_healthy()
    result = RollingRestartResult()
    for node in NODES:
        entry = other_node({node})
        with load_through(stack, entry) as traffic:
            traffic.wait_for_requests(PHASE_REQUESTS)
            if stack.leader_node() == node:
                candidate = next(n for n in PATRONI_NODES if n != node)
                stack.patroni.switchover(f"db-{node}", f"db-{candidate}")
                stack.patroni.wait_for_leader_and_sync_standby()
                result.switchovers += 1
            stack.stop_machine(node)
            traffic.wait_for_requests(PHASE_REQUESTS)
            stack.restore_machine(node)
            traffic.wait_for_requests(PHASE_REQUESTS)
        result.loads.append(traffic.report)
    with stack.connect(stack.leader_node()) as conn:
        result.replays = replays_in(deliveries(conn, posted_request_ids(result.load)), "rolling_restart_nodes", result.load, None)
    return result


# ----------------------------------------------------------------- d. DCS blip


@dataclass
class DcsBlipResult:
    leader_before: str
    leader_after: str
    timeline_before: int
    timeline_after: int
    blip_started: float
    write_pause_s: float
    acknowledged: int

    @property
    def promotions(self) -> int:
        return self.timeline_after - self.timeline_before

    def figures(self) -> list[Figure]:
        drill = "dcs_blip"
        return [
            Figure(drill, "dcs_blip_promotions", self.promotions, "promotions",
                   {"target": 0, "leader_before": self.leader_before, "leader_after": self.leader_after, "blip_s": DCS_BLIP_S}),
            Figure(drill, "dcs_blip_write_pause_s", self.write_pause_s, "s",
                   {"what": "longest gap between acknowledged commits around the blip", "acknowledged": self.acknowledged}),
        ]


def dcs_blip(stack: NodesStack) -> DcsBlipResult:
    """Every etcd member stops answering for DCS_BLIP_S (SIGSTOP: connections open but
    nothing comes back, as when etcd's network drops packets) while the Patroni members
    and the writer still reach each other. failsafe_mode keeps the leader."""
    stack.wait_healthy()
    leader = stack.leader_node()
    timeline_before = stack.patroni_node(leader).api("/patroni")["timeline"]
    stack.empty_writer_table()
    writer = SteadyWriter(stack.direct_writer())
    writer.start()
    try:
        wait_until(lambda: len(writer.acknowledged_at) >= 50, 30, "writes flowing", 0.05)
        started = time.monotonic()
        etcd_pids = [process.pid for process in stack.etcd.processes.values() if process.poll() is None]
        for pid in etcd_pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(DCS_BLIP_S)  # the fault's duration, not a wait for readiness
        finally:
            for pid in etcd_pids:
                os.kill(pid, signal.SIGCONT)
        # Patroni's view settles within a ttl after the DCS is back.
        wait_until(lambda: len([a for a in list(writer.acknowledged_at.values()) if a > time.monotonic() - 1]) > 10, 30,
                   "writes flowing after the blip", 0.1)
        time.sleep(stack.patroni_node(leader).settings.ttl_s)  # a demotion would show within one ttl
    finally:
        writer.stopping.set()
        writer.join(timeout=10)
    leader_after = stack.leader_node()
    timeline_after = stack.patroni_node(leader_after).api("/patroni")["timeline"]
    acks = sorted(at for at in writer.acknowledged_at.values() if at >= started - 1)
    pause = max((b - a for a, b in zip(acks, acks[1:])), default=float("nan"))
    stack.wait_healthy()
    return DcsBlipResult(leader, leader_after, timeline_before, timeline_after, started, pause, len(writer.acknowledged_at))
