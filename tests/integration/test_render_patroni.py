"""The rendered patroni.yml and etcd flags: a three-member etcd cluster and two Patroni
nodes on 127.0.0.1 (loopback/patroni.py), and a leader crash.

Measures the seconds from SIGKILL of the leader node (Patroni and its postgres) to the
first write accepted by the new leader, and checks that synchronous mode lost no
acknowledged commit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopback.binaries import MissingBinary, find, in_ci
from loopback.patroni import REQUIRED_BINARIES, PatroniCluster, crash_leader_under_writes, loopback_patroni

pytestmark = pytest.mark.integration

# HA target: writes accepted again within 10 s of a node crash.
FAILOVER_LIMIT_S = 10.0


@pytest.fixture(autouse=True)
def patroni_installed() -> None:
    try:
        for name in REQUIRED_BINARIES:
            find(name)
    except MissingBinary as err:
        if in_ci():
            pytest.fail(str(err))
        pytest.skip(str(err))


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
