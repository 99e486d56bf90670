"""The backup drills (loopback/backup_drills.py) on real pgbackrest + PostgreSQL 15,
printing one JSON line per figure, each with its `drill` and the figure's own key
(rpo_s, rto_s, rows_before_target_missing, rows_after_target_present, db_bytes).

    uv run python -m bench backups

The whole-cluster-loss drill restores a database of at least 1 GB (pgbench scale 70)
for its RTO figure; archive_timeout is the stack default, 60 s, so its RPO figure is
the one a stack gets. Needs postgresql-15, pgbackrest and jq; everything runs on
127.0.0.1 under temp dirs, with bounded writes (loopback/backup_drills.py WRITE_*). The
standby drill (loopback/backup_standby.py) reports the backup's seconds and the primary's
commit rate during it against the rate just before; the Patroni timeline drill
(loopback/backup_patroni.py) needs patroni and etcd too.
"""

from __future__ import annotations

import sys
import traceback

from components.config import BackupsConfig
from loopback import backup_drills, backup_patroni, backup_standby
from loopback.backups import loopback_backups
from loopback.binaries import MissingBinary

# pgbench scale for the 1 GB restore: about 15 MB per unit.
RTO_PGBENCH_SCALE = 70
STACK_ARCHIVE_TIMEOUT_S = BackupsConfig().archive_timeout_s


def run() -> list:
    figures = []
    with loopback_backups(extra_flags=backup_drills.DRILL_FLAGS) as setup:
        figures += backup_drills.operator_error(setup).figures()
    with loopback_backups(replicas=1, extra_flags=backup_drills.DRILL_FLAGS,
                          archive_timeout_s=STACK_ARCHIVE_TIMEOUT_S) as setup:
        figures += backup_drills.whole_cluster_loss(setup, pgbench_scale=RTO_PGBENCH_SCALE).figures()
    with loopback_backups(replicas=1, extra_flags=backup_drills.DRILL_FLAGS) as setup:
        figures += backup_drills.timeline_switch(setup).figures()
    with backup_patroni.loopback_patroni_backups() as (setup, cluster):
        figures += backup_patroni.patroni_timeline_switch(setup, cluster).figures()
    with loopback_backups() as setup:
        figures += backup_drills.encryption(setup).figures()
    with loopback_backups(replicas=1, extra_flags=backup_drills.DRILL_FLAGS) as setup:
        figures += backup_standby.backup_from_standby(setup).figures()
    return figures


def main() -> int:
    try:
        for figure in run():
            print(figure.json(), flush=True)
    except MissingBinary as missing:
        print(f"bench.backups: {missing}", file=sys.stderr)
        return 1
    except Exception:
        print(f"bench.backups: a drill failed:\n{traceback.format_exc()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
