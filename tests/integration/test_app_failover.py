"""The writer pool after the primary is lost: libpq's multi-host URL picks the next
read-write host, and the pool drops its dead connections instead of handing them out."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.hastack_app.migrations import MIGRATIONS
from loopback.app import database_url

pytestmark = pytest.mark.integration


def test_writes_move_to_the_next_read_write_host_when_the_primary_dies(start_apps, pg_disposable, pg_primary):
    # Two servers in one DATABASE_URL, as the Docker platform lists primary and replica.
    # Here the second is a stand-alone server that already accepts writes, standing in
    # for a promoted replica (the HA drills run the real promotion).
    dbname = f"failover_{uuid.uuid4().hex[:12]}"
    old_primary, new_primary = pg_disposable, pg_primary
    for server in (old_primary, new_primary):
        with server.connect() as conn:
            conn.execute(f"CREATE DATABASE {dbname}")
    try:
        with new_primary.connect(dbname) as conn:  # the schema a replica would have replicated
            for _, sql in MIGRATIONS:
                conn.execute(sql)
        url = database_url([("127.0.0.1", old_primary.port), ("127.0.0.1", new_primary.port)], dbname)
        (replica,) = start_apps(1, url, extra_env={"READY_TIMEOUT_S": "1", "DB_CONNECT_TIMEOUT_S": "1"})
        replica.wait_ready()
        assert httpx.post(f"{replica.url}/notes", json={"body": "before"}).status_code == 201

        old_primary.kill()
        replica.wait_ready(deadline_s=15)
        after = httpx.post(f"{replica.url}/notes", json={"body": "after"}, timeout=10)
        assert after.status_code == 201, after.text

        with new_primary.connect(dbname) as conn:
            bodies = [row[0] for row in conn.execute("SELECT body FROM notes")]
        assert bodies == ["after"]  # "before" went to the old primary, as it should have
    finally:
        with new_primary.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
