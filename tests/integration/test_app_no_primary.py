"""The app while no primary exists (a failover in progress): reads stay ready, writes
are answered at once with 503 and Retry-After instead of hanging until a timeout, and
writes resume by themselves when a primary is back."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from app.hastack_app.writer import RETRY_AFTER_S
from loopback.app import database_url
from loopback.ports import wait_until
from tests.integration.conftest import FAST_POSTGRES_FLAGS

pytestmark = pytest.mark.integration

# The pool's wait for a connection; a write that waited for it would take this long.
POOL_TIMEOUT_S = 3.0


def post_note(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/notes", json={"body": "during failover"},
                          headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=10)
    return response, time.monotonic() - started


def test_without_a_primary_writes_get_a_quick_503_and_read_readiness_holds(start_apps, pg_disposable, fresh_database):
    # The writer is a server of its own, so it can die; the reader URL is another server
    # (standing in for a standby), so "any DB node answers" still holds.
    dbname = f"noprimary_{uuid.uuid4().hex[:12]}"
    with pg_disposable.connect() as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    (replica,) = start_apps(1, database_url(pg_disposable.port, dbname), read_url=fresh_database,
                            extra_env={"DB_CONNECT_TIMEOUT_S": str(POOL_TIMEOUT_S), "READY_TIMEOUT_S": "1"})
    replica.wait_ready()
    assert post_note(replica.url)[0].status_code == 201

    pg_disposable.kill()
    wait_until(lambda: httpx.get(f"{replica.url}/readyz", timeout=5).status_code == 503, 10, "/readyz 503")
    writes = [post_note(replica.url) for _ in range(10)]
    assert [r.status_code for r, _ in writes] == [503] * 10, [r.text for r, _ in writes]
    assert all(r.headers["retry-after"] == str(RETRY_AFTER_S) for r, _ in writes)
    # Answered at once, not after the pool's timeout.
    assert max(seconds for _, seconds in writes) < POOL_TIMEOUT_S / 3, [round(s, 3) for _, s in writes]
    read_ready = httpx.get(f"{replica.url}/readyz/read", timeout=5)
    assert read_ready.status_code == 200, read_ready.text
    assert httpx.get(f"{replica.url}/", timeout=5).status_code == 200

    pg_disposable.start(FAST_POSTGRES_FLAGS)
    wait_until(lambda: post_note(replica.url)[0].status_code == 201, 20, "writes accepted again", interval_s=0.1)
