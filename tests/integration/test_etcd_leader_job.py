"""The etcd-leader-placement job (components/swarm/etcd_leader_job.py) against a real etcd
cluster on 127.0.0.1: it moves etcd's leadership off the Patroni leader's node, and only
then. The members stand for three nodes; the leader key is written as Patroni writes it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from components.render.patroni import leader_key
from components.swarm import etcd_leader_job
from components.swarm.etcd_leader_placement import job_env
from loopback.patroni import EtcdCluster, loopback_etcd
from tests.integration.conftest import require_binaries

pytestmark = pytest.mark.integration

NODES = ("n0", "n1", "n2")
SCOPE = "hastack-test"


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    require_binaries("etcd")
    with loopback_etcd() as cluster:
        yield cluster


def env_for(etcd: EtcdCluster, patroni_nodes: dict[str, str]) -> dict[str, str]:
    members = etcd.settings.members
    return job_env([m.name for m in members], list(NODES), [m.client_url for m in members],
                   list(patroni_nodes), list(patroni_nodes.values()), SCOPE)


def etcd_leader_node(env: dict[str, str]) -> str:
    topology = etcd_leader_job.Topology.from_env(env)
    view = etcd_leader_job.read_etcd(topology)
    return topology.etcd_nodes[view.name_of(view.leader_id)]


def set_patroni_leader(etcd: EtcdCluster, member: str | None) -> None:
    url = etcd.settings.members[0].client_url
    key = base64.b64encode(leader_key(SCOPE).encode()).decode()
    if member is None:
        etcd_leader_job.call(url, "/v3/kv/deleterange", {"key": key}, 2)
    else:
        etcd_leader_job.call(url, "/v3/kv/put", {"key": key, "value": base64.b64encode(member.encode()).decode()}, 2)


def run_job(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The job file as the service runs it: python3 on the file, configured by its environment."""
    return subprocess.run([sys.executable, etcd_leader_job.__file__], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=30)


def test_moves_etcds_leadership_off_the_patroni_leaders_node_to_one_without_a_member(etcd):
    # Patroni members on two nodes, one of them the etcd leader's; that one leads Patroni.
    leader = etcd_leader_node(env_for(etcd, {"db-a": NODES[0], "db-b": NODES[1]}))
    others = [node for node in NODES if node != leader]
    env = env_for(etcd, {"db-a": leader, "db-b": others[0]})
    set_patroni_leader(etcd, "db-a")
    result = run_job(env)
    assert result.returncode == 0, result.stderr
    assert "moved etcd's leadership" in result.stdout
    # To the node without a Patroni member, not to the standby's.
    assert etcd_leader_node(env) == others[1]


def test_leaves_etcd_alone_when_the_leaders_are_apart_or_patroni_has_none(etcd):
    leader = etcd_leader_node(env_for(etcd, {"db-a": NODES[0]}))
    others = [node for node in NODES if node != leader]
    env = env_for(etcd, {"db-a": others[0], "db-b": leader})
    set_patroni_leader(etcd, "db-a")
    assert run_job(env).stdout == ""
    set_patroni_leader(etcd, None)  # no Patroni leader: nothing to keep apart
    env_colocated = env_for(etcd, {"db-a": leader})
    result = run_job(env_colocated)
    assert (result.returncode, result.stdout) == (0, "")
    assert etcd_leader_node(env) == leader


@pytest.mark.parametrize("change, expected", [
    ({"PATRONI_LEADER_KEY": "leader"}, "PATRONI_LEADER_KEY must be the leader key's path"),
    ({"ETCD_CLIENT_URLS": ""}, "ETCD_CLIENT_URLS is not set"),
    ({"PATRONI_MEMBER_NODES": "db-a"}, "PATRONI_MEMBER_NODES must be name=value pairs"),
])
def test_bad_environment_is_one_line_and_exit_2(etcd, change, expected):
    result = run_job({**env_for(etcd, {"db-a": NODES[0]}), **change})
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and expected in result.stderr
