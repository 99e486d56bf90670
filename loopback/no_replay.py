"""The SIGKILL and rolling-restart drills (loopback/drills.py), checked for requests
delivered twice.

The load (loopback/load.py) sends every POST with an X-Request-Id, keyed and unkeyed
alike, and the app records each delivery of it before doing the work
(app/hastack_app/deliveries.py). After a drill, an unkeyed POST recorded by two replicas
is a request the LB replayed, performed twice: what issue 9 forbids. A keyed one may
be delivered twice (the LB retried it), and the idempotency key keeps it one note.

    crash, replay = replica_kill_without_replay(stack)
    replay.delivered_twice            # -> {} : no unkeyed POST reached two replicas
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from .drills import Figure, ReplicaCrashResult, RollingRestartResult, replica_crash, rolling_restart
from .load import LoadReport
from .stack import LoopbackStack

UNKEYED = "post_note_unkeyed"
KEYED = "post_note"


@dataclass
class ReplayCheck:
    drill: str
    load: LoadReport
    # Unkeyed request id -> the replicas it reached, for each one that reached more than one.
    delivered_twice: dict[str, list[str]]
    # Keyed POSTs the LB delivered again after a replica failed mid-request (allowed).
    keyed_redelivered: int
    # Unkeyed POSTs started before the kill and unanswered at it: the most that may fail.
    unkeyed_in_flight_at_kill: int | None = None

    @property
    def failed_unkeyed(self) -> int:
        return len(self.load.failed(UNKEYED))

    def figures(self) -> list[Figure]:
        unkeyed = len(self.load.of(UNKEYED))
        figures = [Figure(self.drill, f"{self.drill}_unkeyed_posts_delivered_twice", len(self.delivered_twice), "requests",
                          {"of": unkeyed, "target": 0, "evidence": "request_deliveries rows per X-Request-Id"}),
                   Figure(self.drill, f"{self.drill}_keyed_posts_redelivered", self.keyed_redelivered, "requests",
                          {"of": len(self.load.of(KEYED)), "safe_because": "Idempotency-Key"})]
        if self.unkeyed_in_flight_at_kill is not None:
            figures.append(Figure(self.drill, f"{self.drill}_unkeyed_posts_in_flight_at_kill",
                                  self.unkeyed_in_flight_at_kill, "requests",
                                  {"failed_unkeyed": self.failed_unkeyed, "bound": "failed <= in flight"}))
        return figures


def deliveries(conn: psycopg.Connection, request_ids: set[str]) -> dict[str, list[str]]:
    """{request id: the nodes that recorded it, in order} for the ids any replica received,
    read over `conn` (the app role's connection to the primary)."""
    rows = conn.execute("""SELECT request_id, array_agg(node_id ORDER BY received_at) FROM request_deliveries
                           WHERE request_id = ANY(%s) GROUP BY request_id""", (list(request_ids),)).fetchall()
    return dict(rows)


def posted_request_ids(load: LoadReport) -> set[str]:
    return load.request_ids(UNKEYED) | load.request_ids(KEYED)


def check_replays(stack: LoopbackStack, drill: str, load: LoadReport, killed_at: float | None = None) -> ReplayCheck:
    with stack.connect_app_writer() as conn:
        delivered = deliveries(conn, posted_request_ids(load))
    return replays_in(delivered, drill, load, killed_at)


def replays_in(delivered: dict[str, list[str]], drill: str, load: LoadReport, killed_at: float | None) -> ReplayCheck:
    """The check from `{request id: nodes that recorded it}`, however it was read."""
    unkeyed = {rid: nodes for rid, nodes in delivered.items() if rid in load.request_ids(UNKEYED)}
    keyed = {rid: nodes for rid, nodes in delivered.items() if rid in load.request_ids(KEYED)}
    return ReplayCheck(
        drill, load,
        delivered_twice={request_id: nodes for request_id, nodes in unkeyed.items() if len(nodes) > 1},
        keyed_redelivered=sum(len(nodes) > 1 for nodes in keyed.values()),
        unkeyed_in_flight_at_kill=None if killed_at is None else len(load.in_flight(UNKEYED, killed_at)))


def replica_kill_without_replay(stack: LoopbackStack) -> tuple[ReplicaCrashResult, ReplayCheck]:
    """Drill 1 (an app replica SIGKILLed under load), then the replay check."""
    crash = replica_crash(stack)
    return crash, check_replays(stack, "replica_kill", crash.load, killed_at=crash.killed_at)


def rolling_restart_without_replay(stack: LoopbackStack) -> tuple[RollingRestartResult, ReplayCheck]:
    """Drill 2 (every replica SIGTERMed and restarted in turn), then the replay check."""
    restart = rolling_restart(stack)
    return restart, check_replays(stack, "rolling_restart", restart.load)
