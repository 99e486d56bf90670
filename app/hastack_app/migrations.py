"""Schema migrations, run by every replica at startup.

N replicas start at once, and `CREATE TABLE IF NOT EXISTS` is not safe under
concurrency (two sessions can both decide to create and one fails on pg_type). So the
whole run holds a session-level `pg_advisory_lock`: the first replica migrates, the
others wait, then find every version recorded in `schema_migrations` and do nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg

from .db import Database
from .locks import MIGRATION_LOCK

log = logging.getLogger("hastack_app.migrations")

# (version, SQL). Append only: a shipped migration never changes.
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE notes (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            body text NOT NULL,
            idempotency_key text UNIQUE,
            node_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        -- One notification per note, written in the note's transaction (an outbox):
        -- a retried or duplicated request must never send a second email.
        CREATE TABLE notifications (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            note_id uuid NOT NULL UNIQUE REFERENCES notes (id),
            kind text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
    """),
    (2, """
        CREATE TABLE jobs (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            batch text,
            payload jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'processing', 'done', 'failed')),
            node_id text,
            attempts integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            error text
        );
        CREATE INDEX jobs_queued ON jobs (created_at) WHERE status = 'queued';
        CREATE INDEX jobs_processing ON jobs (started_at) WHERE status = 'processing';
        CREATE INDEX jobs_batch ON jobs (batch);
        -- Append-only record of every completed run, deliberately without a unique
        -- constraint: it is the evidence that each job's effect happened exactly once.
        CREATE TABLE job_completions (
            job_id uuid NOT NULL REFERENCES jobs (id),
            node_id text NOT NULL,
            attempt integer NOT NULL,
            completed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX job_completions_job ON job_completions (job_id);
    """),
    (3, """
        -- One row per write a replica received with an X-Request-Id (deliveries.py),
        -- deliberately without a unique constraint: a repeated id is the evidence of a
        -- request delivered twice.
        CREATE TABLE request_deliveries (
            request_id text NOT NULL,
            method text NOT NULL,
            path text NOT NULL,
            node_id text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX request_deliveries_request ON request_deliveries (request_id);
    """),
]


async def apply_pending(conn: psycopg.AsyncConnection) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction, holding the
    migration lock. Returns the versions this call applied."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                                  version integer PRIMARY KEY,
                                  applied_at timestamptz NOT NULL DEFAULT now())""")
        rows = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
        done = {version for (version,) in rows}
        applied = []
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


async def migrate(db: Database) -> None:
    """Migrate, retrying while the database is unreachable (it may still be starting)
    until MIGRATE_DEADLINE_S, then fail so the platform restarts the replica."""
    deadline = time.monotonic() + db.settings.migrate_deadline_s
    while True:
        try:
            async with await db.dedicated_connection("migrate") as conn:
                applied = await apply_pending(conn)
            log.info("schema migrations applied: %s", applied or "none pending")
            return
        except psycopg.OperationalError as error:
            if time.monotonic() >= deadline:
                raise
            log.warning("database not reachable for migrations, retrying: %s", error)
            await asyncio.sleep(1.0)
