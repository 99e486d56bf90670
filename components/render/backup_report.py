"""The backup report: after every run of the scheduled backup job, when the newest backup in
the pgBackRest repository finished, as a file for node_exporter's textfile collector, which
feeds the backup-age alert (render/alert_rules.py PostgresBackupTooOld).

Consumed by `sh` (the script the backup scheduler's crontab runs instead of the job itself;
it also runs `pgbackrest info --output=json` and `jq`) and by `node_exporter
--collector.textfile.directory` (Debian's 1.5.0 in the tests, the pinned image in the stack),
which serves every `*.prom` file of its directory in the Prometheus text format
(https://github.com/prometheus/node_exporter/tree/v1.5.0#textfile-collector).

The Prometheus docs send batch jobs that belong to a machine to this collector rather than
the Pushgateway (https://prometheus.io/docs/practices/pushing/). The value comes from the
repository, not from the job's own success: a node that never backs up (a standby) still
reports the repository's truth, and when backups stop, the reported time stops moving
while the alert's `time() - ...` grows.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .pgbackrest import PgBackRestSettings

# Unix time at which the newest backup (full, diff or incr) of a stanza finished; 0: none.
NEWEST_BACKUP_METRIC = "hastack_backup_newest_completion_timestamp_seconds"
FAILED_MARKER = "hastack-backup-report: pgbackrest info failed; the report is unchanged"


@dataclass(frozen=True)
class BackupReportSettings:
    backup: PgBackRestSettings
    # The scheduled job (render/pgbackrest.py backup_job_script) this script runs first.
    job_path: str
    # node_exporter's --collector.textfile.directory, as the job's container sees it.
    directory: str


def report_file(s: BackupReportSettings) -> str:
    """The stanza's report. Every node writes the same file: each reads the same repository."""
    return f"{s.directory}/pgbackrest-{s.backup.stanza}.prom"


def backup_report_script(s: BackupReportSettings) -> str:
    """sh: `hastack-scheduled-backup full|diff|ensure` runs the job with the same argument,
    then rewrites the report; it exits with the job's status, or 1 if only the report failed."""
    q = shlex.quote
    report = report_file(s)
    return f"""#!/bin/sh
# Rendered by hastack: the scheduled backup of stanza {s.backup.stanza}, then the repository's
# newest backup as a node_exporter textfile report.
set -u
status=0
{q(s.job_path)} "$@" || status=$?

report() {{
    info=$({s.backup.command("--output=json", "info")}) || return 1
    # `info` exits 0 even when it cannot read the repository: its status says. 0 ok, 1 no
    # stanza yet, 2 no valid backups; anything else (99: the repository unreadable) is no
    # answer (https://pgbackrest.org/command.html#command-info: "status").
    case "$(printf '%s' "$info" | jq -r '.[0].status.code')" in 0|1|2) ;; *) return 1 ;; esac
    newest=$(printf '%s' "$info" | jq -r '[.[0].backup[]?.timestamp.stop] | max // 0') || return 1
    case "$newest" in ''|*[!0-9]*) return 1 ;; esac
    # Written beside it and renamed over it, so the collector never reads half a file
    # (it reads only *.prom: the temporary name is skipped).
    {{
        echo '# HELP {NEWEST_BACKUP_METRIC} Unix time the newest backup of the stanza finished (0: none).'
        echo '# TYPE {NEWEST_BACKUP_METRIC} gauge'
        echo '{NEWEST_BACKUP_METRIC}{{stanza="{s.backup.stanza}"}} '"$newest"
    }} > {q(report)}.$$ || return 1
    mv -f {q(report)}.$$ {q(report)}
}}

# Whatever the job did: when pgBackRest cannot say, the old report stays and ages.
if ! report; then
    echo "{FAILED_MARKER}" >&2
    [ "$status" != 0 ] || status=1
fi
exit "$status"
"""
