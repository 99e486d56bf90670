"""The rendered patroni.yml and etcd flags: a three-member etcd cluster and two Patroni
nodes on 127.0.0.1 (loopback/patroni.py), and a leader crash.

Measures the seconds from SIGKILL of the leader node (Patroni and its postgres) to the
first write accepted by the new leader, and checks that synchronous mode lost no
acknowledged commit; then the same with one etcd member already lost, which the
three-member cluster is there to survive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from loopback.patroni import PatroniCluster, crash_leader_under_writes, loopback_patroni
from loopback.ports import wait_until
from loopback.replication import APP_DB, APP_USER

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("patroni_installed")]

# HA target: writes accepted again within 10 s of a node crash.
FAILOVER_LIMIT_S = 10.0


@pytest.fixture
def patroni_cluster() -> Iterator[PatroniCluster]:
    with loopback_patroni(members=2) as cluster:
        yield cluster


def test_patroni_fails_over_within_ten_seconds_without_losing_commits(patroni_cluster) -> None:
    outcome = crash_leader_under_writes(patroni_cluster)
    print(f"patroni failover: writes accepted {outcome.writes_resume_s:.2f} s after SIGKILL of leader {outcome.crashed}; "
          f"acknowledged commits lost: {len(outcome.lost)} of {outcome.acknowledged}")
    assert outcome.writes_resume_s <= FAILOVER_LIMIT_S
    assert outcome.lost == frozenset()


def test_patroni_still_fails_over_after_losing_one_etcd_member(patroni_cluster) -> None:
    patroni_cluster.etcd.crash("etcd-0")
    outcome = crash_leader_under_writes(patroni_cluster)
    print(f"patroni failover with etcd-0 down: writes accepted {outcome.writes_resume_s:.2f} s after SIGKILL of "
          f"leader {outcome.crashed}; acknowledged commits lost: {len(outcome.lost)} of {outcome.acknowledged}")
    assert outcome.writes_resume_s <= FAILOVER_LIMIT_S
    assert outcome.lost == frozenset()


def test_runbook_patronictl_switchover_and_reinit(patroni_cluster) -> None:
    """The commands of docs/runbooks.md#patroni, against the loopback cluster."""
    cluster = patroni_cluster

    def members() -> dict[str, dict]:
        return {m["Member"]: m for m in json.loads(cluster.patronictl("list", "-f", "json"))}

    listed = members()
    assert sorted(m["Role"] for m in listed.values()) == ["Leader", "Sync Standby"]
    leader = next(name for name, m in listed.items() if m["Role"] == "Leader")
    standby = next(name for name in listed if name != leader)

    cluster.switchover(leader, standby)
    wait_until(lambda: cluster.roles() == {standby: "leader", leader: "sync_standby"}, 60, "switchover done", 0.2)
    with cluster.writer() as conn:  # the multi-host URL finds the new leader
        conn.execute("CREATE TABLE after_switchover AS SELECT 1 AS id")

    cluster.patronictl("reinit", "hastack-loopback", leader, "--force", "--wait")
    # Patroni 3.0 reports a replica's state as "running" (later versions: "streaming").
    wait_until(lambda: members()[leader]["State"] in {"running", "streaming"} and cluster.roles()[leader] == "sync_standby",
               60, f"{leader} a sync standby again", 0.2)
    rebuilt = next(node for node in cluster.nodes if node.name == leader)
    with psycopg.connect(host="127.0.0.1", port=rebuilt.postgres_port, user=APP_USER, dbname=APP_DB,
                         password=cluster.passwords.app, connect_timeout=2) as conn:
        assert conn.execute("SELECT pg_is_in_recovery(), count(*) FROM after_switchover").fetchone() == (True, 1)
