"""Reads while no primary exists: the failover drills, checked from the reader's side.

During a failover there is no primary for a while: seconds with Patroni, until an
operator runs the runbook with manual failover. The LB sends reads to replicas that
pass the read check (shared storage + any DB node, /readyz/read) and writes to those
that pass the writer check (/readyz), so GETs keep being served while writes get a
quick 503 with Retry-After (app/hastack_app/writer.py, components/render/haproxy.py).

1. `reads_without_primary`          kill the DB primary (streaming replication), leave
                                    the stack without one for an operator's reaction
                                    time, then promote the replica (the runbook).
2. `reads_during_patroni_failover`  drill 6 (loopback/drills.py automatic_failover):
                                    kill the Patroni leader node; Patroni promotes.

Both report failed GETs (target 0) and, separately, the write-unavailable window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .drills import (
    LOAD_RATE_PER_S,
    PHASE_REQUESTS,
    Figure,
    automatic_failover,
    failed_request_figures,
    first_write_after,
    load_rps_figure,
    steady_load,
)
from .load import GETS, POSTS, LoadReport, nearest_rank
from .ports import wait_until
from .stack import LoopbackStack

# How long the manual drill leaves the stack without a primary before "the operator"
# promotes: short for a drill, long enough to span many health-check rounds (750 ms
# to eject), so reads are seen served by replicas whose writer check fails.
NO_PRIMARY_HOLD_S = 3.0
WRITE_RESUME_DEADLINE_S = 30.0


@dataclass
class DegradedReadsResult:
    drill: str
    load: LoadReport
    killed_at: float
    # The first POST acknowledged through the LB after the kill.
    writes_back_at: float

    def failed_gets(self) -> int:
        return sum(len(self.load.failed(kind, since=self.killed_at)) for kind in GETS)

    def gets_while_no_primary(self) -> int:
        window = {"since": self.killed_at, "until": self.writes_back_at}
        return sum(len(self.load.of(kind, **window)) for kind in GETS)

    @property
    def write_unavailable_s(self) -> float:
        return self.writes_back_at - self.killed_at

    def refused_write_latencies_s(self) -> list[float]:
        """How long each failed POST took to be answered: quick, not a timeout."""
        return [r.latency_s for kind in POSTS for r in self.load.failed(kind, since=self.killed_at)]

    def figures(self) -> list[Figure]:
        drill = self.drill
        refused = self.refused_write_latencies_s()
        return [
            Figure(drill, f"{drill}_failed_gets", self.failed_gets(), "requests",
                   {"target": 0, "gets_while_no_primary": self.gets_while_no_primary(), "from": "primary kill"}),
            Figure(drill, f"{drill}_write_unavailable_seconds", self.write_unavailable_s, "s",
                   {"from": "primary kill", "to": "first POST /notes acknowledged through the LB"}),
            Figure(drill, f"{drill}_refused_write_p99_seconds", nearest_rank(99, refused), "s",
                   {"refused_writes": len(refused), "answer": "503 + Retry-After"}),
            *failed_request_figures(drill, self.load, since=self.killed_at),
            load_rps_figure(drill, self.load),
        ]


def reads_without_primary(stack: LoopbackStack, hold_s: float = NO_PRIMARY_HOLD_S) -> DegradedReadsResult:
    """SIGKILL the DB primary under load; keep the load running without a primary for
    `hold_s` worth of requests; then promote the replica with the runbook's command."""
    with steady_load(stack) as traffic:
        traffic.wait_for_requests(PHASE_REQUESTS)
        stack.primary.kill()
        # After kill() returns the primary and all its backends are gone; a POST that
        # started before that could still commit, and would end the window too early.
        killed_at = time.monotonic()
        traffic.wait_for_requests(round(hold_s * LOAD_RATE_PER_S))
        stack.promote(0)
        wait_until(lambda: first_write_after(traffic, killed_at) is not None, WRITE_RESUME_DEADLINE_S,
                   "a write after the promotion", 0.01)
        writes_back_at = first_write_after(traffic, killed_at)
        traffic.wait_for_requests(PHASE_REQUESTS)
    return DegradedReadsResult("no_primary_manual", traffic.report, killed_at, writes_back_at)


def reads_during_patroni_failover(stack: LoopbackStack) -> DegradedReadsResult:
    """Drill 6 on a `database="patroni"` stack, seen as reads and writes."""
    failover = automatic_failover(stack)
    return DegradedReadsResult("no_primary_patroni", failover.load, failover.killed_at,
                               failover.killed_at + failover.first_write_s)
