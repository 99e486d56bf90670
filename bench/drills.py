"""The HA drills (loopback/drills.py, and the edge drills of loopback/no_replay.py and
loopback/degraded_reads.py), each on a fresh stack on loopback, printing one JSON line
per measured figure.

    uv run python -m bench drills                      # all of them
    uv run python -m bench.drills replica_crash        # just some
    uv run python -m bench.drills --list

replica_crash and rolling_restart run with the replay check: their figures include
requests delivered twice and unkeyed POSTs in flight at the kill. no_primary_manual and
no_primary_patroni report failed GETs while no primary exists and the write-unavailable
window.

Needs haproxy and postgresql-15 (apt-get install -y haproxy postgresql-15), and
etcd-server and patroni for automatic_failover. Every process and the load target
127.0.0.1 only; each drill's load is bounded in requests and seconds (loopback/drills.py
LOAD_*).
"""

from __future__ import annotations

import dataclasses
import sys
import traceback

from loopback import degraded_reads, drills, no_replay
from loopback.binaries import MissingBinary
from loopback.stack import run_loopback_stack

DRILLS = {
    "replica_crash": no_replay.replica_kill_without_replay,
    "rolling_restart": no_replay.rolling_restart_without_replay,
    "db_replica_loss": drills.db_replica_loss,
    "manual_failover": drills.manual_failover,
    "replication_lag": drills.replication_lag,
    "automatic_failover": drills.automatic_failover,
    # The same SIGKILL drill with HAProxy terminating HTTPS (loadBalancer.tls).
    "replica_crash_https": drills.replica_crash,
    "no_primary_manual": degraded_reads.reads_without_primary,
    "no_primary_patroni": degraded_reads.reads_during_patroni_failover,
}
# The stack's database for drills that need other than streaming replication.
DRILL_DATABASE = {"automatic_failover": "patroni", "no_primary_patroni": "patroni"}
# Drills run through HTTPS; their figures get an `_https` suffix.
OVER_HTTPS = {"replica_crash_https"}


def figures_of(outcome) -> list[drills.Figure]:
    """A drill returns one result, or (drill result, replay check)."""
    results = outcome if isinstance(outcome, tuple) else (outcome,)
    return [figure for result in results for figure in result.figures()]


def main(argv: list[str]) -> int:
    if argv == ["--list"]:
        print("\n".join(DRILLS))
        return 0
    unknown = [name for name in argv if name not in DRILLS]
    if unknown:
        print(f"bench.drills: unknown drill {', '.join(unknown)}; available: {', '.join(DRILLS)}", file=sys.stderr)
        return 2
    failed = 0
    for name in argv or DRILLS:
        try:
            with run_loopback_stack(database=DRILL_DATABASE.get(name, "streaming"), tls=name in OVER_HTTPS) as stack:
                figures = figures_of(DRILLS[name](stack))
        except MissingBinary as missing:
            print(f"bench.drills: {missing}", file=sys.stderr)
            return 1
        except Exception:  # one broken drill must not hide the others' figures
            print(f"bench.drills: drill {name} failed:\n{traceback.format_exc()}", file=sys.stderr)
            failed += 1
            continue
        for figure in figures:
            if name in OVER_HTTPS:
                figure = dataclasses.replace(figure, figure=f"{figure.figure}_https")
            print(figure.json(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
