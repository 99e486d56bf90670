"""The app while no primary exists (a failover in progress): reads stay ready, writes
are answered at once with 503 and Retry-After instead of hanging until a timeout, and
writes resume by themselves when a primary is back."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from app.hastack_app import notes
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


def replica_holds(stack, lsn: str) -> bool:
    with stack.db.connect(stack.replica) as conn:
        return conn.execute("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]


def test_a_note_the_replica_received_but_had_not_applied_is_read_there_once_applied(loopback_stack):
    """No primary, and the replica holds a note's WAL without having applied it yet (replay
    paused here; on a busy host, replay trailing receipt by milliseconds): the read waits
    for the replay, bounded, instead of answering 503 while the note is on its way."""
    stack = loopback_stack
    with stack.db.connect(stack.replica) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    created = httpx.post(f"{stack.url}/notes", json={"body": "applied late"},
                         headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=10)
    assert created.status_code == 201, created.text
    with stack.db.connect(stack.primary) as conn:
        written = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]
    wait_until(lambda: replica_holds(stack, written), 10, "the replica received the note's WAL", interval_s=0.05)
    stack.primary.kill()
    app = stack.apps[0]
    # The app knows the writer is gone once a write or its probe has failed on it.
    wait_until(lambda: "no primary" in post_note(app.url)[0].text, 15, "the app's writer marked down")

    started = time.monotonic()
    while_paused = httpx.get(f"{app.url}/notes/{created.json()['id']}", timeout=10)
    assert while_paused.status_code == 503 and "no primary" in while_paused.text, while_paused.text
    assert time.monotonic() - started < notes.REPLAY_CATCH_UP_S + 1

    def resume_replay() -> None:
        with stack.db.connect(stack.replica) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    resume = threading.Timer(0.3, resume_replay)
    resume.start()
    try:
        once_applied = httpx.get(f"{app.url}/notes/{created.json()['id']}", timeout=10)
    finally:
        resume.join()
    assert once_applied.status_code == 200, (once_applied.text, app.log_tail())
    assert once_applied.headers["x-read-from"] == "reader"
    assert once_applied.json()["body"] == "applied late"
