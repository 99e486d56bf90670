"""The multi-machine drills: three network namespaces on one bridge, the swarm stack on them.

    uv run python -m bench nodes

Runs loopback/node_drills.py on loopback/nodes.py's stack (every node: the Swarm HAProxy
config resolving tasks through DNS, an app replica and an etcd member; two nodes: a
Patroni member, synchronous_mode and failsafe_mode, ttl 5 / retry_timeout 2). Needs root,
iproute2, haproxy, etcd-server, patroni and postgresql-15. Only the drill's own
namespaces and addresses (10.213.0.0/24) are used; all are removed at the end. Bounded:
each load stops after 60 s, each wait has a deadline. One JSON line per figure, among them
node_loss_write_resume_s, node_loss_acknowledged_lost, node_loss_failed_gets_after_ejection,
partition_writes_acknowledged_by_isolated_leader_after_promotion,
partition_divergent_rows_after_heal, rolling_restart_failed_requests,
rolling_restart_nodes_unkeyed_posts_delivered_twice, dcs_blip_promotions and
dcs_blip_write_pause_s.
"""

from __future__ import annotations

import sys

from loopback import node_drills
from loopback.binaries import MissingBinary
from loopback.netns import NetnsUnavailable
from loopback.nodes import nodes_stack

DRILLS = (node_drills.dcs_blip, node_drills.partition, node_drills.node_loss, node_drills.rolling_restart)


def main() -> int:
    try:
        with nodes_stack() as stack:
            for drill in DRILLS:
                for figure in drill(stack).figures():
                    print(figure.json(), flush=True)
    except (MissingBinary, NetnsUnavailable) as problem:
        print(f"bench.nodes: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
