"""`python -m verify.engine_drill`: kill one app container of a running dev stack under a
bounded load, count the failures, and check that no request was delivered twice.

For a real Docker engine (the pull-request workflow's `real-engine` job): the same load
and the same replay check as the loopback drills (loopback/load.py, loopback/no_replay.py),
against the containers `pulumi up -s dev` made.

    uv run python -m verify.engine_drill --url https://127.0.0.1:8443 --cacert ca.pem \\
        --kill <app container> --db <db-primary container>

Exit 0 when 0 GETs and 0 keyed POSTs failed, no more unkeyed POSTs failed than were in
flight at the kill, and no unkeyed POST reached two replicas; 1 otherwise; 2 on bad
arguments. Prints one JSON line per figure.
"""

from __future__ import annotations

import subprocess
import sys
import time

from loopback.drills import PHASE_REQUESTS, failed_request_figures
from loopback.load import GETS, MixedLoad
from loopback.no_replay import KEYED, replays_in

from .cli import OneLineArgumentParser

LOAD_RATE_PER_S = 60.0
LOAD_MAX_SECONDS = 60.0
DOCKER_TIMEOUT_S = 60


def parse_args(argv: list[str] | None):
    parser = OneLineArgumentParser(prog="python -m verify.engine_drill", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the LB on 127.0.0.1, e.g. https://127.0.0.1:8443")
    parser.add_argument("--cacert", metavar="FILE", help="the CA that signed the LB's certificate (output caCertificate)")
    parser.add_argument("--kill", required=True, metavar="CONTAINER", help="the app container to SIGKILL")
    parser.add_argument("--db", required=True, metavar="CONTAINER", help="the primary's container (deliveries are read there)")
    parser.add_argument("--database", default="app", help="the app's database (database.name)")
    return parser.parse_args(argv)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True,
                          timeout=DOCKER_TIMEOUT_S).stdout


def recorded_deliveries(db_container: str, database: str) -> dict[str, list[str]]:
    """request_deliveries (app/hastack_app/deliveries.py), read as the postgres OS user
    through the container's local socket: the database publishes no port."""
    rows = docker("exec", "-u", "postgres", db_container, "psql", "-d", database, "-XtA", "-F", " ",
                  "-c", "SELECT request_id, node_id FROM request_deliveries ORDER BY received_at")
    delivered: dict[str, list[str]] = {}
    for line in rows.splitlines():
        request_id, node = line.split(" ", 1)
        delivered.setdefault(request_id, []).append(node)
    return delivered


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with MixedLoad(args.url, max_requests=int(LOAD_RATE_PER_S * LOAD_MAX_SECONDS), max_seconds=LOAD_MAX_SECONDS,
                   rate_per_s=LOAD_RATE_PER_S, ca_file=args.cacert) as traffic:
        traffic.wait_for_requests(PHASE_REQUESTS)
        killed_at = time.monotonic()
        docker("kill", "--signal", "KILL", args.kill)
        traffic.wait_for_requests(2 * PHASE_REQUESTS, deadline_s=LOAD_MAX_SECONDS)
    replays = replays_in(recorded_deliveries(args.db, args.database), "engine_kill", traffic.report, killed_at)
    for figure in failed_request_figures("engine_kill", traffic.report) + replays.figures():
        print(figure.json(), flush=True)
    failed_gets = sum(len(traffic.report.failed(kind)) for kind in GETS)
    ok = (failed_gets == 0 and not traffic.report.failed(KEYED) and not replays.delivered_twice
          and replays.failed_unkeyed <= replays.unkeyed_in_flight_at_kill)
    print("engine_drill: PASS" if ok else "engine_drill: FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
