"""postgres_exporter's custom queries file (`--extend.query-path`), and its role's name.

Consumed by `postgres_exporter` 0.11.1 (the pinned image and Debian's package), which
exports each query's numeric columns as `<query name>_<column>` gauges, beside its
built-in `pg_stat_replication_*`, `pg_replication_slots_*` and `pg_stat_archiver_*`.
The extend queries are deprecated from 0.13 on, one reason the image is pinned to the
version CI runs (docs/monitoring.md).

Every query here runs as MONITOR_ROLE, a login role that is only a member of pg_monitor.
"""

from __future__ import annotations

import yaml

# The exporter's login role: member of pg_monitor and nothing more (render/postgres.py creates it).
MONITOR_ROLE = "hastack_monitor"

QUERY_NAME = "hastack_pg"
# 1 on a standby (in recovery), 0 on the primary.
IN_RECOVERY = f"{QUERY_NAME}_in_recovery"
# A standby: seconds since the last replayed commit was made on the primary.
REPLAY_AGE_SECONDS = f"{QUERY_NAME}_replay_age_seconds"
# A standby: WAL received but not yet replayed. 0 when caught up, whatever the age says.
REPLAY_PENDING_BYTES = f"{QUERY_NAME}_replay_pending_bytes"
# The primary: WAL written past the end of the last archived segment (0 with nothing archived yet).
WAL_UNARCHIVED_BYTES = f"{QUERY_NAME}_wal_unarchived_bytes"

# A WAL segment file name is 24 hex digits: timeline, then the LSN's high 32 bits, then
# the segment number within them. `last_archived_wal` may also name a history or backup
# file, which says nothing about how far archiving has come.
_LAST_SEGMENT = "substr(last_archived_wal, 1, 24)"
_SEGMENT_END_BYTES = (
    f"(('x' || substr({_LAST_SEGMENT}, 9, 8))::bit(32)::bigint::numeric * 4294967296"
    f" + (('x' || substr({_LAST_SEGMENT}, 17, 8))::bit(32)::bigint + 1)"
    " * (SELECT setting::numeric FROM pg_settings WHERE name = 'wal_segment_size'))"
)

NODE_STATE_SQL = f"""SELECT
  pg_is_in_recovery()::int AS in_recovery,
  CASE WHEN pg_is_in_recovery()
       THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) ELSE 0 END AS replay_age_seconds,
  CASE WHEN pg_is_in_recovery()
       THEN COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0) ELSE 0 END AS replay_pending_bytes,
  CASE WHEN pg_is_in_recovery() OR last_archived_wal IS NULL OR {_LAST_SEGMENT} !~ '^[0-9A-F]{{24}}$' THEN 0
       ELSE GREATEST(0, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') - {_SEGMENT_END_BYTES}) END AS wal_unarchived_bytes
FROM pg_stat_archiver"""


def render_exporter_queries() -> str:
    """The `--extend.query-path` YAML, consumed by postgres_exporter 0.11."""
    queries = {
        QUERY_NAME: {
            "query": NODE_STATE_SQL,
            "metrics": [
                {"in_recovery": {"usage": "GAUGE", "description": "1 on a standby, 0 on the primary"}},
                {"replay_age_seconds": {"usage": "GAUGE",
                                        "description": "Standby: seconds since the last replayed commit was made"}},
                {"replay_pending_bytes": {"usage": "GAUGE",
                                          "description": "Standby: WAL received but not yet replayed"}},
                {"wal_unarchived_bytes": {"usage": "GAUGE",
                                          "description": "Primary: WAL written past the last archived segment"}},
            ],
        }
    }
    return yaml.safe_dump(queries, sort_keys=False, width=1000)


def exporter_tls_query(ca_file: str) -> str:
    """The DATA_SOURCE_URI query string: TLS, the server verified against the stack CA (every
    node's pg_hba admits TCP logins over `hostssl` only)."""
    return f"sslmode=verify-full&sslrootcert={ca_file}"


def monitor_role_sql(password_variable: str) -> str:
    """psql input creating MONITOR_ROLE with the password in psql variable `password_variable`."""
    return f"CREATE ROLE {MONITOR_ROLE} WITH LOGIN PASSWORD :'{password_variable}' IN ROLE pg_monitor;\n"
