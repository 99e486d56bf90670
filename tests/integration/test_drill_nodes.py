"""The swarm stack on three machines (network namespaces on one bridge, loopback/nodes.py),
with real haproxy, etcd, Patroni, postgres and app processes on each: a machine lost, a
partition, a rolling restart of every machine and a DCS blip. Timings are bench figures
(`python -m bench nodes`); these tests hold the safety properties."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopback import node_drills
from loopback.load import GETS
from loopback.nodes import NodesStack, nodes_stack
from loopback.patroni import REQUIRED_BINARIES as PATRONI_BINARIES
from tests.integration.conftest import require_binaries, require_network_namespaces

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[NodesStack]:
    """One three-machine stack for the module: each drill leaves it healthy again."""
    require_network_namespaces()
    require_binaries("haproxy", "ip", *PATRONI_BINARIES)
    with nodes_stack() as running:
        yield running


def print_figures(result) -> None:
    for figure in result.figures():
        print(figure.json())


def test_dcs_blip_is_no_failover(stack):
    """etcd silent for 3 s with ttl 5 / retry_timeout 2: the classic false failover,
    which failsafe_mode prevents, since the leader still reaches every member."""
    result = node_drills.dcs_blip(stack)
    print_figures(result)
    assert result.promotions == 0 and result.leader_after == result.leader_before
    assert result.write_pause_s < node_drills.DCS_BLIP_S, "writes go on while the DCS is away"


def test_partitioned_leader_stops_acknowledging_before_the_majority_promotes(stack):
    result = node_drills.partition(stack)
    print_figures(result)
    assert result.isolated_acks, "the isolated leader's writer ran"
    assert result.acks_after_promotion() == 0, "no write acknowledged on both sides"
    assert result.divergent_rows == 0
    assert result.rejoined_role in {"replica", "sync_standby"}
    assert stack.leader_node() != result.isolated


def test_losing_the_leaders_machine_loses_no_acknowledged_write(stack):
    result = node_drills.node_loss(stack)
    print_figures(result)
    # The etcd-leader-placement job kept etcd's leader off the machine that was lost.
    assert result.etcd_leader != result.lost
    assert result.acknowledged > 0
    assert result.acknowledged_lost == 0
    # HAProxy's own checks take the dead machine's replica out; its address still resolves.
    assert result.ejected_at - result.killed_at <= 2.0
    # Reads are routed to replicas that can read: none fails once the dead replica is out.
    assert result.failed_gets_after_ejection() == 0, result.load.summary()
    assert result.write_resume_s < node_drills.WRITES_RESUME_DEADLINE_S


def test_rolling_restart_of_every_machine_fails_no_read(stack):
    result = node_drills.rolling_restart(stack)
    print_figures(result)
    assert len(result.loads) == 3
    assert all(result.failed(kind) == 0 for kind in GETS), [load.summary() for load in result.loads]
    # Keyed writes too: the app runs a write cut off before its COMMIT again, and HAProxy
    # retries a keyed one that failed mid-flight. (An unkeyed write cut off *in* COMMIT
    # is never rerun: the app answers 201 if the writer holds it, else 503; bench figure.)
    assert result.failed("post_note") == 0, [load.summary() for load in result.loads]
    # Writes wait out the switchovers in the app (WRITER_WAIT_S); none is run twice.
    assert result.replays.delivered_twice == {}
