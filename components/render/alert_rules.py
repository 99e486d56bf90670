"""The Prometheus alert rules of a hastack stack, as one rule file.

Consumed by `prometheus` (rule_files in prometheus.yml), `promtool check rules` and
`promtool test rules` (tests/integration/test_render_monitoring.py), all Prometheus 2.42.
Each rule selects series by the scrape job names of prometheus.py and by metric names of
the pinned exporters, checked against the real binaries (docs/monitoring.md):
- postgres_exporter 0.11.1 built-ins (`pg_stat_replication_*`, `pg_replication_slots_*`,
  `pg_stat_archiver_*`) and hastack's custom queries (`hastack_pg_*`, postgres_exporter.py);
- HAProxy's own exporter (`haproxy_server_status{proxy, server, state}`);
- Patroni's REST `/metrics` (`patroni_primary`, exported by 3.0 beside `patroni_master`,
  and the only one of the two Patroni 4 keeps);
- node_exporter's filesystem collector, for the data volumes;
- node_exporter's textfile collector serving the backup job's report (render/backup_report.py)
  for backup age, and blackbox_exporter's TLS probe (render/blackbox.py) for certificates;
  both expressions are settings (`backup_age`, `certificate_expiry_metric`), for a
  Prometheus of your own that gets them elsewhere.

Every alert has `severity` (critical: users are or will shortly be hurt; warning: HA is
degraded) and a `runbook_url` pointing at its section of docs/runbooks.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from .postgres_exporter import (
    IN_RECOVERY,
    REPLAY_AGE_SECONDS,
    REPLAY_PENDING_BYTES,
    WAL_UNARCHIVED_BYTES,
)
from .backup_report import NEWEST_BACKUP_METRIC
from .haproxy import APP_BACKEND, READ_BACKEND
from .prometheus import JOB_BACKUPS, JOB_HAPROXY, JOB_PATRONI, JOB_POSTGRES, JOB_TLS, JOB_VOLUMES, duration

# The brief's replication-lag threshold.
REPLICATION_LAG_BYTES = 1024 * 1024
# A standby replaying WAL this far behind the primary's commits serves stale reads.
REPLAY_LAG_SECONDS = 60
DATA_VOLUME_FULL_RATIO = 0.85
CERTIFICATE_EXPIRY_DAYS = 14
# Where the volume exporter mounts each data volume (`<root>/<node>`); the exporter's
# own root and bind mounts are someone else's disks.
VOLUME_MOUNT_ROOT = "/volumes"
# The HAProxy backends over the app replicas: writes (checked on the writer path) and,
# with a read health path, reads (checked on it).
APP_PROXIES = (APP_BACKEND, READ_BACKEND)

# After NUM_ARCHIVE_RETRIES (3) failed attempts a second apart, PostgreSQL's archiver
# waits PGARCH_AUTOWAKE_INTERVAL (60 s) before trying again (src/backend/postmaster/pgarch.c),
# so a failing archive_command bumps the failure counter about once a minute. increase()
# over a shorter window drops to 0 between bursts and the alert flaps.
ARCHIVER_RETRY_PAUSE_S = 60

# Seconds since the newest backup of any type finished, per stanza, from the backup job's
# report; the max over every node's copy of it, which all read one repository.
BACKUP_AGE = f'time() - max by (stanza) ({NEWEST_BACKUP_METRIC}{{job="{JOB_BACKUPS}"}})'
# blackbox_exporter's TLS probe (render/blackbox.py): the earliest expiry (Unix time) in the served chain.
BLACKBOX_CERT_EXPIRY = f'probe_ssl_earliest_cert_expiry{{job="{JOB_TLS}"}}'

# How long each alert's condition must hold before it fires (`for`), in seconds.
DEFAULT_FOR_S: Mapping[str, float] = {
    "PostgresReplicationLagHigh": 60,
    "PostgresReplayLagging": 60,
    "PostgresReplicaNotStreaming": 60,
    "PostgresReplicationSlotInactive": 60,
    "PostgresNoPrimary": 30,
    "PostgresSeveralPrimaries": 30,
    "PatroniNoLeader": 30,
    "BackendServerDown": 30,
    "NoHealthyBackend": 10,
    "PostgresWalArchiveFailing": 60,
    "PostgresBackupTooOld": 600,
    "DataVolumeAlmostFull": 300,
    "TlsCertificateExpiring": 600,
}


@dataclass(frozen=True)
class AlertRuleSettings:
    # docs/runbooks.md as the operators reach it; each alert appends `#<alert name, lowercase>`.
    runbook_base_url: str
    # Streaming replicas the primary should have (database.replicas).
    expected_replicas: int
    # `database.failover: patroni`: adds the Patroni leader rule.
    patroni: bool
    # `backups.enabled`: adds the backup-age rule.
    backups: bool = True
    # PostgreSQL's archive_timeout (backups.archiveTimeoutS): a working archive on a
    # database that writes sends a segment at least this often.
    archive_timeout_s: float = 60
    # The newest backup may be this old: the schedule's interval plus slack.
    backup_max_age_s: float = 26 * 3600
    # PromQL: seconds since the newest backup, labelled by `stanza`.
    backup_age: str = BACKUP_AGE
    certificate_expiry_metric: str = BLACKBOX_CERT_EXPIRY
    # The window of increase() on counters: at least two scrapes, and longer than the
    # archiver's pause between failing bursts.
    counter_window_s: float = 300
    for_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FOR_S))

    def __post_init__(self) -> None:
        if set(self.for_s) != set(DEFAULT_FOR_S):
            raise ValueError(f"for_s must give every alert a duration: {', '.join(sorted(DEFAULT_FOR_S))}")
        if self.expected_replicas < 0:
            raise ValueError("expected_replicas must be >= 0")
        if self.counter_window_s <= ARCHIVER_RETRY_PAUSE_S:
            raise ValueError(f"counter_window_s must exceed the archiver's {ARCHIVER_RETRY_PAUSE_S} s retry pause, "
                             f"or the archive alert flaps (got {self.counter_window_s})")


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    expr: str
    summary: str
    description: str


def runbook_anchor(alert_name: str) -> str:
    """The GitHub anchor of the `### <AlertName>` heading in docs/runbooks.md."""
    return alert_name.lower()


def hastack_alerts(s: AlertRuleSettings) -> list[Alert]:
    """Every alert for a stack shaped by `s`, in the order docs/monitoring.md lists them."""
    pg = f'job="{JOB_POSTGRES}"'
    alerts = [
        Alert("PostgresReplicationLagHigh", "warning",
              # Byte lag of a streaming standby, and WAL a slot holds for a standby that
              # is not streaming at all (its pg_stat_replication row is gone).
              f"max by (node, application_name) (pg_stat_replication_pg_wal_lsn_diff{{{pg}}}) > {REPLICATION_LAG_BYTES}"
              f" or max by (node, slot_name) (pg_replication_slots_pg_wal_lsn_diff{{{pg}}}) > {REPLICATION_LAG_BYTES}",
              "A replica is more than 1 MB of WAL behind the primary",
              "{{ $labels.node }}: {{ $labels.application_name }}{{ $labels.slot_name }} is {{ $value | humanize1024 }}B behind."),
        Alert("PostgresReplayLagging", "warning",
              # The age of the last replayed commit reads high on an idle, caught-up
              # standby; it only counts while received WAL is still waiting to be replayed.
              f"{REPLAY_AGE_SECONDS}{{{pg}}} > {REPLAY_LAG_SECONDS} and on (instance) {REPLAY_PENDING_BYTES}{{{pg}}} > 0",
              f"A replica replays WAL more than {REPLAY_LAG_SECONDS} s behind",
              "{{ $labels.node }} last replayed a commit {{ $value | humanizeDuration }} ago with WAL still pending."),
    ]
    if s.expected_replicas:
        alerts += [
            Alert("PostgresReplicaNotStreaming", "warning",
                  # A standby that disconnects takes its series with it, so the rule counts
                  # the streaming ones, and `or vector(0)` makes "none at all" a 0.
                  f'(count(pg_stat_replication_pg_current_wal_lsn_bytes{{{pg},state="streaming"}}) or vector(0))'
                  f" < {s.expected_replicas}",
                  "Fewer replicas stream from the primary than the stack runs",
                  f"{{{{ $value }}}} of {s.expected_replicas} replicas are streaming."),
            Alert("PostgresReplicationSlotInactive", "warning",
                  f"pg_replication_slots_active{{{pg}}} == 0",
                  "A replication slot has no standby attached",
                  "Slot {{ $labels.slot_name }} on {{ $labels.node }} is inactive: its standby is down or disconnected, "
                  "and the slot retains WAL for it."),
        ]
    alerts += [
        Alert("PostgresNoPrimary", "critical",
              f"(count({IN_RECOVERY}{{{pg}}} == 0) or vector(0)) < 1",
              "No PostgreSQL node accepts writes",
              "No reachable node is out of recovery: the app cannot write."),
        Alert("PostgresSeveralPrimaries", "critical",
              f"count({IN_RECOVERY}{{{pg}}} == 0) > 1",
              "More than one PostgreSQL node accepts writes",
              "{{ $value }} nodes are out of recovery: a split brain, writes may diverge."),
    ]
    if s.patroni:
        alerts.append(Alert("PatroniNoLeader", "critical",
                            f'(max(patroni_primary{{job="{JOB_PATRONI}"}}) or vector(0)) < 1',
                            "The Patroni cluster has no leader",
                            "No Patroni member reports itself as the leader."))
    app = f'job="{JOB_HAPROXY}",proxy=~"{"|".join(APP_PROXIES)}"'
    volumes = f'job="{JOB_VOLUMES}",mountpoint=~"{VOLUME_MOUNT_ROOT}/.+"'
    window = duration(s.counter_window_s)
    alerts += [
        Alert("BackendServerDown", "warning",
              f'haproxy_server_status{{{app},state="DOWN"}} == 1',
              "An app replica fails the load balancer's health check",
              "HAProxy has taken {{ $labels.server }} out of {{ $labels.proxy }}."),
        Alert("NoHealthyBackend", "critical",
              f"haproxy_backend_active_servers{{{app}}} < 1 or up{{job=\"{JOB_HAPROXY}\"}} == 0",
              "The load balancer has no healthy app replica to send requests to",
              "{{ with $labels.proxy }}Backend {{ . }} has no healthy replica: every request it takes fails."
              "{{ else }}HAProxy does not answer: no request is served.{{ end }}"),
        Alert("PostgresWalArchiveFailing", "critical",
              # The failure counter only ever grows; its increase over the window is the signal.
              f"increase(pg_stat_archiver_failed_count{{{pg}}}[{window}]) > 0"
              # An archive_command that hangs fails nothing; the last success grows old
              # while WAL beyond it waits (an idle database archives nothing, rightly).
              f" or (pg_stat_archiver_last_archive_age{{{pg}}} > {2 * s.archive_timeout_s:g}"
              f" and on (instance) {WAL_UNARCHIVED_BYTES}{{{pg}}} > 0)",
              "WAL archiving is failing",
              "{{ $labels.node }}: archive_command fails or has not archived for over twice archive_timeout; "
              "point-in-time recovery falls behind."),
    ]
    if s.backups:
        alerts.append(Alert("PostgresBackupTooOld", "warning",
                            # A stanza with no backup at all reports 0: it reads as very old, and fires.
                            f"{s.backup_age} > {s.backup_max_age_s:g}",
                            "The newest backup is older than its schedule allows",
                            "Stanza {{ $labels.stanza }}: the newest backup finished {{ $value | humanizeDuration }} ago."))
    alerts += [
        Alert("DataVolumeAlmostFull", "warning",
              f"1 - node_filesystem_avail_bytes{{{volumes}}} / node_filesystem_size_bytes{{{volumes}}} > {DATA_VOLUME_FULL_RATIO}",
              f"A data volume is more than {DATA_VOLUME_FULL_RATIO:.0%} full",
              "{{ $labels.mountpoint }} is {{ $value | humanizePercentage }} full."),
        Alert("TlsCertificateExpiring", "warning",
              f"{s.certificate_expiry_metric} - time() < {CERTIFICATE_EXPIRY_DAYS * 86400}",
              f"A TLS certificate expires within {CERTIFICATE_EXPIRY_DAYS} days",
              "{{ $labels.instance }}: the certificate expires in {{ $value | humanizeDuration }}."),
    ]
    return alerts


def render_alert_rules(s: AlertRuleSettings) -> str:
    """The rule file, consumed by `prometheus` and `promtool check rules` / `test rules`."""
    rules = [
        {
            "alert": alert.name,
            "expr": alert.expr,
            **({"for": duration(s.for_s[alert.name])} if s.for_s[alert.name] > 0 else {}),
            "labels": {"severity": alert.severity},
            "annotations": {
                "summary": alert.summary,
                "description": alert.description,
                "runbook_url": f"{s.runbook_base_url}#{runbook_anchor(alert.name)}",
            },
        }
        for alert in hastack_alerts(s)
    ]
    return yaml.safe_dump({"groups": [{"name": "hastack", "rules": rules}]}, sort_keys=False, width=1000)
