"""A receipt per delivered write, so a drill can prove no request reached two replicas.

A client (the drills' load) that sends `X-Request-Id` on a write gets a row here,
committed before the write itself runs. The same id on two rows means the load
balancer delivered one request twice, which must never happen to a request without an
idempotency key (docs/docker.md#retries-and-idempotency-keys).
"""

from __future__ import annotations

from .db import Database
from .writer import WriterHealth, in_write_transaction

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 200


async def record(db: Database, writer: WriterHealth, request_id: str, method: str, path: str) -> None:
    async def insert(conn) -> None:
        await conn.execute("INSERT INTO request_deliveries (request_id, method, path, node_id) VALUES (%s, %s, %s, %s)",
                           (request_id[:MAX_REQUEST_ID_LENGTH], method, path, db.settings.node_id))

    # In a transaction of its own, so a receipt cut off before its COMMIT is written once, not lost.
    await in_write_transaction(db, writer, insert)
