"""A receipt per delivered write, so a drill can prove no request reached two replicas.

A client (the drills' load) that sends `X-Request-Id` on a write gets a row here,
committed before the write itself runs. The same id on two rows means the load
balancer delivered one request twice, which must never happen to a request without an
idempotency key (docs/docker.md#retries-and-idempotency-keys).
"""

from __future__ import annotations

from datetime import datetime

from .db import Database
from .writer import WriterHealth, in_write_transaction

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 200


async def record(db: Database, writer: WriterHealth, request_id: str, method: str, path: str) -> None:
    request_id = request_id[:MAX_REQUEST_ID_LENGTH]

    async def insert(conn) -> datetime:
        cursor = await conn.execute(
            "INSERT INTO request_deliveries (request_id, method, path, node_id) VALUES (%s, %s, %s, %s) RETURNING received_at",
            (request_id, method, path, db.settings.node_id))
        return (await cursor.fetchone())[0]

    async def stored(conn, received_at: datetime) -> bool:
        # This receipt: its request id, this replica and its transaction's start, to the microsecond.
        cursor = await conn.execute(
            "SELECT 1 FROM request_deliveries WHERE request_id = %s AND node_id = %s AND received_at = %s FOR KEY SHARE",
            (request_id, db.settings.node_id, received_at))
        return await cursor.fetchone() is not None

    # In a transaction of its own, so a receipt cut off before its COMMIT is written once, not lost.
    await in_write_transaction(db, writer, insert, stored)
