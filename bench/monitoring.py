"""The detection drill (loopback/monitoring.py): seconds from each fault to its alert
firing in Prometheus, one JSON line per figure.

    uv run python -m bench monitoring

Runs the stack on loopback (haproxy, 3 app processes, postgresql-15 primary + replica
archiving into pgBackRest) with Debian's prometheus, prometheus-alertmanager,
prometheus-postgres-exporter and prometheus-node-exporter on 127.0.0.1 only, then Patroni
over etcd for the leader alert; every wait is bounded (loopback.monitoring.ALERT_DEADLINE_S).
Needs `apt-get install -y haproxy postgresql-15 pgbackrest jq patroni etcd-server prometheus
prometheus-alertmanager prometheus-postgres-exporter prometheus-node-exporter`.
Target for each figure: the drill rule's `for` plus two scrape intervals (`target_s`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from loopback.binaries import MissingBinary
from loopback.monitoring import detection_drill, patroni_leader_drill, watching
from loopback.postgres import remove_tree
from loopback.stack import run_loopback_stack


def main() -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="hastack-bench-monitoring-"))
    try:
        with run_loopback_stack(backups=True) as stack, watching(stack) as watch:
            figures = detection_drill(stack, watch).figures()
        figures += patroni_leader_drill(log_dir).figures()
    except MissingBinary as missing:
        print(f"bench.monitoring: {missing}", file=sys.stderr)
        return 1
    finally:
        remove_tree(log_dir)
    for figure in figures:
        print(figure.json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
