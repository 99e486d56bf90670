"""Notes: idempotent creates and read-your-writes reads.

Two identical replicas behind a load balancer will, sooner or later, both receive the
same request (a client retry after a timeout, an LB retry-on). The unique
`idempotency_key` makes the database pick one winner; the notification row is
written in the winner's transaction only, so one request means one email.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .db import Database
from .writer import WriterHealth, in_write_transaction

log = logging.getLogger("hastack_app.notes")

_COLUMNS = "id::text, body, idempotency_key, node_id, created_at"


class IdempotencyConflict(Exception):
    """The key was used before with a different body."""


@dataclass(frozen=True)
class CreateResult:
    note: dict[str, Any]
    created: bool  # False: an earlier request with this key created it


async def create(db: Database, writer: WriterHealth, body: str, idempotency_key: str | None) -> CreateResult:
    async def insert(conn) -> CreateResult:
        cur = conn.cursor(row_factory=dict_row)
        # A concurrent insert with the same key blocks here until the other transaction
        # ends, then DO NOTHING returns no row and we read the winner's note below.
        await cur.execute(
            f"""INSERT INTO notes (body, idempotency_key, node_id) VALUES (%s, %s, %s)
                ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}""",
            (body, idempotency_key, db.settings.node_id))
        note = await cur.fetchone()
        if note is not None:
            await cur.execute("INSERT INTO notifications (note_id, kind) VALUES (%s, 'note-created')",
                              (note["id"],))
            return CreateResult(note, created=True)
        await cur.execute(f"SELECT {_COLUMNS} FROM notes WHERE idempotency_key = %s", (idempotency_key,))
        return CreateResult(await cur.fetchone(), created=False)

    async def stored(conn, result: CreateResult) -> bool:
        # The note's uuid: only this transaction (or, created=False, an earlier one) wrote it.
        cursor = await conn.execute("SELECT 1 FROM notes WHERE id = %s FOR KEY SHARE", (result.note["id"],))
        return await cursor.fetchone() is not None

    result = await in_write_transaction(db, writer, insert, stored)
    if result.note["body"] != body:
        raise IdempotencyConflict(idempotency_key)
    return result


async def _select(conn, note_id: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_COLUMNS} FROM notes WHERE id = %s", (note_id,))
    return await cur.fetchone()


async def _find(pool, note_id: str) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        return await _select(conn, note_id)


async def get(db: Database, note_id: str, writer: WriterHealth) -> tuple[dict[str, Any] | None, str]:
    """The note and which pool answered. Reads go to the reader, but a replica may not
    have the row yet (written a moment ago, replication is async) or may be down: then
    the writer answers, so a client always reads its own writes. While no primary
    exists the replica is asked again once it has applied what it received, and the
    writer fallback waits WRITER_WAIT_S at most, then raises WriterUnavailable (a 503)."""
    if db.reader is not db.writer:
        try:
            note = await _find(db.reader, note_id)
            if note is None and not writer.writable:
                note = await _find_once_replayed(db.reader, note_id)
            if note is not None:
                return note, "reader"
        except psycopg.OperationalError as error:  # includes PoolTimeout
            log.warning("reader unavailable, reading from the writer: %s", error)
    await writer.require()
    return await _find(db.writer, note_id), "writer"


# How long a read waits for the replica to apply the WAL it already holds, when no
# primary can answer instead. Replay trails receipt by milliseconds, more on a busy host.
REPLAY_CATCH_UP_S = 1.0
REPLAY_POLL_S = 0.02


async def _find_once_replayed(pool, note_id: str) -> dict[str, Any] | None:
    """The note, read again once the replica has replayed every WAL record it has
    received (or after REPLAY_CATCH_UP_S). With no primary, a note acknowledged just
    before the primary died may be received but not yet applied here; a note the
    replica never received is lost with the primary, and stays None."""
    async with pool.connection() as conn:
        deadline = asyncio.get_running_loop().time() + REPLAY_CATCH_UP_S
        while asyncio.get_running_loop().time() < deadline:
            # NULLs (not a standby, or nothing streamed yet): nothing to wait for.
            cur = await conn.execute(
                "SELECT coalesce(pg_last_wal_replay_lsn() < pg_last_wal_receive_lsn(), false)")
            if not (await cur.fetchone())[0]:
                break
            await asyncio.sleep(REPLAY_POLL_S)
        return await _select(conn, note_id)
