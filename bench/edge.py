"""The edge drills of issue 9, each on a fresh stack on loopback, printing one JSON line
per measured figure:

- replica_kill / rolling_restart with the replay check (loopback/no_replay.py): failed
  requests per kind, unkeyed POSTs in flight at the kill, requests delivered twice;
- no_primary_manual / no_primary_patroni (loopback/degraded_reads.py): failed GETs while
  no primary exists, the write-unavailable window, how fast refused writes are answered.

    uv run python -m bench edge
    uv run python -m bench.edge no_primary_manual     # just some

Needs haproxy and postgresql-15, and etcd-server and patroni for no_primary_patroni.
Everything runs on 127.0.0.1 with the drills' bounded load (loopback/drills.py LOAD_*).
"""

from __future__ import annotations

import sys
import traceback

from loopback import degraded_reads, no_replay
from loopback.binaries import MissingBinary
from loopback.stack import run_loopback_stack

DRILLS = {
    "replica_kill": (no_replay.replica_kill_without_replay, "streaming"),
    "rolling_restart": (no_replay.rolling_restart_without_replay, "streaming"),
    "no_primary_manual": (degraded_reads.reads_without_primary, "streaming"),
    "no_primary_patroni": (degraded_reads.reads_during_patroni_failover, "patroni"),
}


def figures_of(outcome) -> list:
    """A drill returns one result, or (drill result, replay check)."""
    results = outcome if isinstance(outcome, tuple) else (outcome,)
    return [figure for result in results for figure in result.figures()]


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in DRILLS]
    if unknown:
        print(f"bench.edge: unknown drill {', '.join(unknown)}; available: {', '.join(DRILLS)}", file=sys.stderr)
        return 2
    failed = 0
    for name in argv or DRILLS:
        drill, database = DRILLS[name]
        try:
            with run_loopback_stack(database=database) as stack:
                figures = figures_of(drill(stack))
        except MissingBinary as missing:
            print(f"bench.edge: {missing}", file=sys.stderr)
            return 1
        except Exception:  # one broken drill must not hide the others' figures
            print(f"bench.edge: drill {name} failed:\n{traceback.format_exc()}", file=sys.stderr)
            failed += 1
            continue
        for figure in figures:
            print(figure.json(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
