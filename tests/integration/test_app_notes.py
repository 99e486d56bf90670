"""Notes: idempotent creates across processes, and read-your-writes reads."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from app.hastack_app.migrations import MIGRATIONS
from loopback.app import database_url

pytestmark = pytest.mark.integration


def test_idempotency_key_dedupes_concurrent_requests_to_two_processes(start_apps, fresh_database):
    first, second = start_apps(2, fresh_database)
    keys = [f"order-{n}" for n in range(20)]

    def post(url: str, key: str) -> httpx.Response:
        return httpx.post(f"{url}/notes", json={"body": f"note for {key}"}, headers={"Idempotency-Key": key},
                          timeout=10)

    # Each key is sent to both processes at the same moment, three times over.
    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = {key: [pool.submit(post, url, key) for url in (first.url, second.url) * 3] for key in keys}
        responses = {key: [future.result() for future in sent] for key, sent in futures.items()}

    for key, answers in responses.items():
        assert sorted(answer.status_code for answer in answers) == [200] * 5 + [201], key
        assert len({answer.json()["id"] for answer in answers}) == 1, key
        assert {answer.headers["x-served-by"] for answer in answers} == {"app-0", "app-1"}
    with psycopg.connect(fresh_database) as conn:
        notes, notifications = conn.execute(
            """SELECT (SELECT count(*) FROM notes), (SELECT count(*) FROM notifications)""").fetchone()
    # One row and one notification (the email) per key, however many requests.
    assert (notes, notifications) == (len(keys), len(keys))


def test_reusing_an_idempotency_key_with_another_body_is_a_conflict(start_apps, fresh_database):
    (replica,) = start_apps(1, fresh_database)
    headers = {"Idempotency-Key": "same-key"}
    assert httpx.post(f"{replica.url}/notes", json={"body": "one"}, headers=headers).status_code == 201
    assert httpx.post(f"{replica.url}/notes", json={"body": "two"}, headers=headers).status_code == 409


def test_note_reads_prefer_the_reader_and_fall_back_to_the_writer(start_apps, fresh_database, pg_primary):
    # A "replica" that has the schema but has not received the rows yet: a second
    # database, which is what a lagging standby looks like to the app.
    reader_db = f"reader_{uuid.uuid4().hex[:12]}"
    with pg_primary.connect() as conn:
        conn.execute(f"CREATE DATABASE {reader_db}")
    try:
        reader_url = database_url(pg_primary.port, reader_db)
        with psycopg.connect(reader_url, autocommit=True) as conn:
            for _, sql in MIGRATIONS:
                conn.execute(sql)
        (replica,) = start_apps(1, fresh_database, read_url=reader_url)

        note = httpx.post(f"{replica.url}/notes", json={"body": "fresh"}).json()
        just_written = httpx.get(f"{replica.url}/notes/{note['id']}")
        assert just_written.status_code == 200
        assert just_written.json()["body"] == "fresh"
        assert just_written.headers["x-read-from"] == "writer"

        with psycopg.connect(reader_url, autocommit=True) as conn:  # "replication" catches up
            conn.execute("INSERT INTO notes (id, body, node_id) VALUES (%s, 'fresh', 'app-0')", (note["id"],))
        replicated = httpx.get(f"{replica.url}/notes/{note['id']}")
        assert replicated.headers["x-read-from"] == "reader"

        assert httpx.get(f"{replica.url}/notes/{uuid.uuid4()}").status_code == 404
    finally:
        with pg_primary.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {reader_db} WITH (FORCE)")
