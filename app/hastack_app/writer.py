"""Whether this replica can write right now, and the fast answer when it cannot.

During a failover no primary exists for seconds (Patroni) or until an operator acts
(manual). A write then cannot succeed, and waiting for the pool's connection timeout
only turns a quick, retryable answer into a hung client. So a `WriterHealth` probes the
writer every WRITER_PROBE_S on a connection of its own (a dead primary fails the next
query at once), and requests that
need the writer are answered at once with 503 and `Retry-After` while it is known to
be down, or, with WRITER_WAIT_S set, after waiting that long for the probe to find
one (a planned switchover leaves no primary for about a second). A request that finds
it down first (the primary died since the last probe) marks it down for the others; it
waited at most DB_WRITE_WAIT_S (or WRITER_WAIT_S) for a connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection

from .background import BackgroundTask
from .db import Database

log = logging.getLogger("hastack_app.writer")

# How often the writer is probed, and how long its query may take.
WRITER_PROBE_S = 0.25
WRITER_PROBE_TIMEOUT_S = 1.0
# What a client is told to wait before retrying a write (HAProxy's own 503 says the same).
RETRY_AFTER_S = 2


class WriterUnavailable(Exception):
    """No primary accepts writes through DATABASE_URL now."""


async def check_writer(db: Database, timeout_s: float) -> None:
    """Raise unless the writer URL reaches a primary within `timeout_s`."""
    async with db.writer.connection(timeout=timeout_s) as conn:
        (in_recovery,) = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
    if in_recovery:
        raise RuntimeError("the writer URL reached a read-only standby")


async def _in_recovery(connection: AsyncConnection) -> bool:
    (in_recovery,) = await (await connection.execute("SELECT pg_is_in_recovery()")).fetchone()
    return in_recovery


class WriterHealth(BackgroundTask):
    """The writer as last seen: `writable`, kept current by a background probe."""

    task_name = "writer-health"

    def __init__(self, db: Database):
        self.db = db
        # A reconnect dials every host of the URL at once, again and again while they
        # refuse (db.connect_to_writer): one dial may take the connect timeout (libpq's
        # floor is 2 s), since a lost machine refuses nothing, it just never answers.
        self._reconnect_timeout_s = max(2.0, db.settings.db_connect_timeout_s) + WRITER_PROBE_TIMEOUT_S
        # The app starts after its migrations wrote to the primary.
        self.writable = True
        self._found = asyncio.Event()
        self._found.set()
        self._probe_connection: AsyncConnection | None = None
        # Probe queries that outlived their bound, each closing its connection once it ends.
        self._abandoned: set[asyncio.Task] = set()

    async def stop(self) -> None:
        await self._cancel()
        await self._drop_probe_connection()
        for task in self._abandoned:
            task.cancel()

    def mark_down(self, why: BaseException) -> None:
        if self.writable:
            log.warning("writer unavailable, answering writes 503 until it is back: %s", why)
        self.writable = False
        self._found.clear()

    def _mark_up(self) -> None:
        if not self.writable:
            log.info("writer available again")
        self.writable = True
        self._found.set()

    def require_known(self) -> None:
        """Raise WriterUnavailable unless a writer is known now (readiness: no waiting)."""
        if not self.writable:
            raise WriterUnavailable()

    async def require(self) -> None:
        """Return once a writer is known; raise WriterUnavailable if none is found within
        WRITER_WAIT_S. Nothing of the request has reached the database yet, so waiting
        here never runs a write twice: it only lets a write outlast a planned switchover's
        second without a primary instead of failing it."""
        if self.writable:
            return
        if not self.db.settings.writer_wait_s:
            raise WriterUnavailable()
        try:
            await asyncio.wait_for(self._found.wait(), self.db.settings.writer_wait_s)
        except TimeoutError:
            raise WriterUnavailable() from None

    async def _probe(self) -> None:
        if self._probe_connection is None or self._probe_connection.closed:
            self._probe_connection = await self.db.connect_to_writer(
                "writer-probe", within_s=self._reconnect_timeout_s, retry_every_s=WRITER_PROBE_S)
        connection = self._probe_connection
        query = asyncio.ensure_future(_in_recovery(connection))
        try:
            in_recovery = await asyncio.wait_for(asyncio.shield(query), WRITER_PROBE_TIMEOUT_S)
        except TimeoutError:
            # Not cancelled: psycopg answers a cancelled query with a cancel request to the
            # server and then waits for the query to end, 5 s each, which against a lost
            # machine (silent) kept the writer probe away from the new primary for 10 s.
            # The query fails by itself (the URL's tcp_user_timeout, else TCP's retries).
            self._probe_connection = None
            self._abandon(query, connection)
            raise
        if in_recovery:
            raise RuntimeError("the writer URL reached a read-only standby")

    def _abandon(self, query: asyncio.Future, connection: AsyncConnection) -> None:
        async def close_when_done() -> None:
            try:
                await asyncio.shield(query)
            except Exception:
                pass  # the connection is being given up anyway
            await connection.close()

        task = asyncio.create_task(close_when_done())
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _probe_with_fresh_retry(self) -> None:
        """A probe that fails on its old connection is tried once more on a new one before
        the writer is called down: libpq tries every host of the URL, so when another
        primary already accepts writes (a promoted replica), writes are never refused."""
        try:
            await self._probe()
        except Exception:
            await self._drop_probe_connection()
            await self._probe()

    async def _drop_probe_connection(self) -> None:
        if self._probe_connection is not None:
            await self._probe_connection.close()
            self._probe_connection = None

    async def _run(self) -> None:
        while True:
            try:
                await self._probe_with_fresh_retry()
                self._mark_up()
            except asyncio.CancelledError:
                raise
            except Exception as problem:  # any failure means: do not send writes there
                self.mark_down(problem)
                await self._drop_probe_connection()
            await asyncio.sleep(WRITER_PROBE_S)


Result = TypeVar("Result")
# Does the writer hold this result? (committed_after_all)
StoredCheck = Callable[[AsyncConnection, Result], Awaitable[bool]]


async def committed_after_all(db: Database, writer: WriterHealth, stored: StoredCheck, result: Result,
                              problem: Exception) -> bool:
    """Whether a transaction whose COMMIT lost its connection is stored on the writer the
    probe finds within WRITER_WAIT_S, and as durable as an acknowledged commit.

    In a switchover the old primary's fast shutdown ends a session waiting in COMMIT for
    the sync standby ("The transaction has already committed locally, but might not have
    been replicated"); its WAL still reaches the standby, which then leads. `stored` looks
    for the transaction's own row (a note's uuid: no other transaction writes it) and locks
    it FOR KEY SHARE. A row can be visible before the standby has it (the waiting session
    was ended); a row lock is WAL-logged, so the check's COMMIT waits for the sync standby
    like any other (PostgreSQL waits only for a transaction that wrote WAL), and everything
    before it, that row included, is there too once it returns. Absent, or the check
    failing: unknown, never "not committed" (it may still be waiting in COMMIT), so the
    caller raises and the client retries with its own key."""
    log.info("write transaction lost its connection in COMMIT, asking the writer whether it is stored: %s", problem)
    writer.mark_down(problem)
    try:
        await writer.require()
        async with db.writer.connection() as conn, conn.transaction():
            return await stored(conn, result)  # leaving the block commits: the wait for the standby
    except (psycopg.OperationalError, WriterUnavailable) as again:
        log.info("could not tell whether the write is stored: %s", again)
        return False


async def in_write_transaction(db: Database, writer: WriterHealth, work: Callable[[AsyncConnection], Awaitable[Result]],
                               stored: StoredCheck | None = None) -> Result:
    """`work(conn)` in one transaction on the writer. If the connection fails before the
    COMMIT is sent (the primary shut down under it: a switchover, a restart), the
    transaction was rolled back and nothing of it was written, so it runs once more on
    the writer the probe finds within WRITER_WAIT_S. A failure of the COMMIT itself is
    ambiguous (the commit may have happened): that write is never run twice, but with
    `stored` (does the writer hold this result?) the app asks the writer, and answers with
    the result if it is there (`committed_after_all`); else the failure is raised."""
    retried = False
    while True:
        committing = False
        try:
            async with db.writer.connection() as conn, conn.transaction():
                result = await work(conn)
                committing = True  # leaving the block sends COMMIT
            return result
        except psycopg.OperationalError as problem:  # includes PoolTimeout
            if committing and stored is not None and await committed_after_all(db, writer, stored, result, problem):
                return result
            if committing or retried:
                raise
            retried = True
            log.info("write transaction lost its connection before COMMIT, running it again: %s", problem)
            writer.mark_down(problem)
            await writer.require()
