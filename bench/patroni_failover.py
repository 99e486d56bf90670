"""Patroni failover on loopback: SIGKILL the leader node under steady writes.

    uv run python -m bench patroni_failover

Runs the rendered etcd flags and patroni.yml (three etcd members, two Patroni nodes, the
same setup as tests/integration/test_render_patroni.py) on 127.0.0.1 only, with one
writer committing one row at a time. Bounded: the cluster must form within
loopback.patroni.CLUSTER_READY_S and writes resume within FAILOVER_WAIT_S, or it stops.
Needs etcd-server, patroni and postgresql-15 (apt-get install -y etcd-server patroni
postgresql-15). Prints one JSON line per figure:
- patroni_writes_resume_seconds: from the SIGKILL to the first commit acknowledged by the
  new leader (HA target: <= 10 s);
- patroni_committed_rows_lost: acknowledged commits missing afterwards (target: 0, with
  synchronous_mode);
- patroni_rows_acknowledged: commits acknowledged over the run, what "lost" is out of.
"""

from __future__ import annotations

import json
import sys

from loopback.binaries import MissingBinary
from loopback.patroni import crash_leader_under_writes, loopback_patroni

TARGET_RESUME_S = 10.0


def main() -> int:
    try:
        with loopback_patroni(members=2) as cluster:
            outcome = crash_leader_under_writes(cluster)
    except MissingBinary as missing:
        print(f"bench.patroni_failover: {missing}", file=sys.stderr)
        return 1
    figures = [
        {"figure": "patroni_writes_resume_seconds", "value": round(outcome.writes_resume_s, 3), "unit": "s",
         "target": TARGET_RESUME_S, "met": outcome.writes_resume_s <= TARGET_RESUME_S, "crashed": outcome.crashed},
        {"figure": "patroni_committed_rows_lost", "value": len(outcome.lost), "unit": "rows", "target": 0,
         "met": not outcome.lost},
        {"figure": "patroni_rows_acknowledged", "value": outcome.acknowledged, "unit": "rows"},
    ]
    for figure in figures:
        print(json.dumps(figure), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
