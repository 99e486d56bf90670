"""Keep etcd's leader off the Patroni leader's node: the job the etcd-leader-placement
service runs every few seconds (components/swarm/etcd_leader_placement.py).

Why: when a node dies, Patroni's leader key expires `ttl` after the dead leader last
renewed it. If etcd's leader died on the same node, the surviving members first elect a
new one, and the new leader restarts every lease at its full TTL plus an election timeout
(etcd lease/lessor.go Promote; without checkpoints a lease's remaining TTL is not
replicated). The key then outlives its machine by about two more seconds, which the
node-loss drill measured (docs/swarm.md). Moving etcd's leadership to a member on another
node (the MoveLeader API that `etcdctl move-leader` calls) keeps a node loss to the one
election, Patroni's.

One run: read each etcd member's status and Patroni's leader key; if etcd's leader runs on
the node of the Patroni leader, move etcd's leadership to a healthy member on another
node, preferring a node without a Patroni member. Quiet when there is nothing to do.

Runs in the Patroni image's python3 (stdlib only, so the file itself is the job) from
this environment, set by the service:

    ETCD_MEMBER_NODES     etcd member name=node, comma-separated (the member's --name)
    ETCD_CLIENT_URLS      etcd member name=client URL, comma-separated
    PATRONI_MEMBER_NODES  Patroni member name=node, comma-separated
    PATRONI_LEADER_KEY    the leader key, /service/<scope>/leader (Patroni's namespace)
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

# Each status read is one member answering for itself; a member that does not answer in
# this long is no candidate.
STATUS_TIMEOUT_S = 1.0
# etcdctl's own bound on a move-leader (its --command-timeout default).
MOVE_TIMEOUT_S = 5.0


class JobError(Exception):
    """A run that could not decide or act; printed as one line, exit 1."""


@dataclass(frozen=True)
class Topology:
    etcd_nodes: dict[str, str]  # etcd member name -> node
    etcd_urls: dict[str, str]  # etcd member name -> client URL
    patroni_nodes: dict[str, str]  # Patroni member name -> node
    leader_key: str

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Topology:
        topology = cls(_pairs(env, "ETCD_MEMBER_NODES"), _pairs(env, "ETCD_CLIENT_URLS"), _pairs(env, "PATRONI_MEMBER_NODES"),
                       env.get("PATRONI_LEADER_KEY", ""))
        if set(topology.etcd_nodes) != set(topology.etcd_urls):
            raise ValueError("ETCD_MEMBER_NODES and ETCD_CLIENT_URLS must name the same etcd members")
        if not topology.leader_key.startswith("/"):
            raise ValueError(f"PATRONI_LEADER_KEY must be the leader key's path, /<namespace>/<scope>/leader (got {topology.leader_key!r})")
        return topology


def _pairs(env: dict[str, str], name: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, env.get(name, "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{name} must be name=value pairs separated by commas (got {item!r})")
        pairs[key] = value
    if not pairs:
        raise ValueError(f"{name} is not set; it must be name=value pairs separated by commas")
    return pairs


def call(url: str, path: str, body: dict, timeout_s: float) -> dict:
    """One request to etcd's JSON gateway (POST, as every v3 gateway route)."""
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.load(response)


@dataclass(frozen=True)
class EtcdView:
    leader_id: str
    answering: dict[str, str]  # member id -> member name, of the members that answered

    def name_of(self, member_id: str) -> str | None:
        return self.answering.get(member_id)


def read_etcd(topology: Topology) -> EtcdView:
    """Which member leads, by the members' own status answers (a member knows its own id)."""
    answering, leaders = {}, set()
    for name, url in topology.etcd_urls.items():
        try:
            status = call(url, "/v3/maintenance/status", {}, STATUS_TIMEOUT_S)
        except (OSError, ValueError):
            continue  # down or cut off: neither the leader we look for nor a candidate
        answering[str(status["header"]["member_id"])] = name
        if str(status.get("leader", "0")) != "0":
            leaders.add(str(status["leader"]))
    if len(leaders) != 1:
        raise JobError(f"etcd has no single leader now (members answering: {sorted(answering.values())}, leaders named: {sorted(leaders)})")
    return EtcdView(leaders.pop(), answering)


def patroni_leader(topology: Topology, url: str) -> str | None:
    """The member name Patroni's leader key holds, or None when no member leads."""
    key = base64.b64encode(topology.leader_key.encode()).decode()
    kvs = call(url, "/v3/kv/range", {"key": key}, STATUS_TIMEOUT_S).get("kvs") or []
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def transferee(topology: Topology, view: EtcdView, avoid_node: str) -> str | None:
    """The id of an answering member on another node than `avoid_node`, first one on a node
    that runs no Patroni member (it stays off whichever member leads next)."""
    patroni_nodes = set(topology.patroni_nodes.values())
    candidates = [(topology.etcd_nodes[name] in patroni_nodes, name, member_id) for member_id, name in view.answering.items()
                  if topology.etcd_nodes[name] != avoid_node and member_id != view.leader_id]
    return min(candidates)[2] if candidates else None


def run_once(topology: Topology) -> str | None:
    """Move etcd's leadership if it shares the Patroni leader's node; what was done, or None."""
    view = read_etcd(topology)
    leader_name = view.name_of(view.leader_id)
    if leader_name is None:
        return None  # the leader did not answer us; we cannot ask it to move
    primary = patroni_leader(topology, topology.etcd_urls[leader_name])
    if primary is None or topology.patroni_nodes.get(primary) != topology.etcd_nodes[leader_name]:
        return None
    node = topology.etcd_nodes[leader_name]
    target = transferee(topology, view, avoid_node=node)
    if target is None:
        raise JobError(f"etcd leader {leader_name} shares node {node} with Patroni leader {primary}, and no etcd member on another node answers")
    # MoveLeader is served by the leader only; it returns once the transferee leads.
    call(topology.etcd_urls[leader_name], "/v3/maintenance/transfer-leadership", {"targetID": target}, MOVE_TIMEOUT_S)
    return f"etcd leader {leader_name} shared node {node} with Patroni leader {primary}: moved etcd's leadership to {view.name_of(target)}"


def main(env: dict[str, str] | None = None) -> int:
    try:
        topology = Topology.from_env(dict(os.environ) if env is None else env)
    except ValueError as problem:
        print(f"etcd-leader-placement: {problem}", file=sys.stderr)
        return 2
    try:
        done = run_once(topology)
    except (JobError, OSError, KeyError, ValueError) as problem:
        print(f"etcd-leader-placement: {problem}", file=sys.stderr)
        return 1
    if done:
        print(f"etcd-leader-placement: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
