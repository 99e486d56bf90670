"""Schema migrations when several replicas start at once."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_three_processes_migrating_a_fresh_database_at_once_all_start(start_apps, fresh_database):
    replicas = start_apps(3, fresh_database)  # started together, then each waited for

    with psycopg.connect(fresh_database) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert versions == [1, 2, 3]
    assert {"notes", "notifications", "jobs", "job_completions", "request_deliveries"} <= tables
    # The advisory lock let exactly one replica do the work; the others found it done.
    logs = [replica.log_path.read_text() for replica in replicas]
    assert sum("schema migrations applied: [1, 2, 3]" in log for log in logs) == 1, logs
    assert sum("schema migrations applied: none pending" in log for log in logs) == 2, logs
