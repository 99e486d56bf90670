"""App replicas that record every request they receive, and can die holding one.

The no-replay proof (tests/integration/test_no_replay.py) needs to know which replica a
request reached, including a replica that never answered. Each `RecordingReplica` is an
HTTP server on 127.0.0.1 that appends every request it receives to a shared log
before doing anything else, then answers it, or, when it holds the shared
`DeathToken`, dies without answering: the connection is reset and the listening socket
closed, so the LB sees what a SIGKILLed process leaves behind (no response, then
connection refused).

    log, token = ReceiptLog(), DeathToken()
    with recording_replicas(3, log, token) as replicas:
        token.arm()                         # the next replica to get a request dies
        httpx.post(lb.url + "/orders", headers={"X-Request-Id": "r1"})
        log.receivers("r1")                 # -> ["replica-1"]

Health paths: `WRITE_READY_PATH` answers 200 unless `writer_ready` is False, and
while it is False writes are answered 503 + Retry-After, as the app does without a
primary; `READ_READY_PATH` always 200 (the replica can read).

`keep_alive=True` answers HTTP/1.1 and keeps connections open, as real app servers do,
so the LB can reuse them. Such a replica is for tests that never kill it: a kill stops
the listener but would leave its open connections behind.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REQUEST_ID_HEADER = "X-Request-Id"
WRITE_READY_PATH = "/readyz"
READ_READY_PATH = "/readyz/read"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Receipt:
    replica: str
    method: str
    path: str
    request_id: str | None


@dataclass
class ReceiptLog:
    """Every non-health request any replica received, in arrival order."""

    receipts: list[Receipt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, receipt: Receipt) -> None:
        with self.lock:
            self.receipts.append(receipt)

    def receivers(self, request_id: str) -> list[str]:
        """The replicas that received `request_id`, in order (one entry per delivery)."""
        with self.lock:
            return [r.replica for r in self.receipts if r.request_id == request_id]


class DeathToken:
    """Held by no one, or by the next replica to receive a request, which then dies."""

    def __init__(self) -> None:
        self._armed = threading.Event()
        self._lock = threading.Lock()

    def arm(self) -> None:
        self._armed.set()

    def take(self) -> bool:
        """True for exactly one caller after each `arm()`."""
        with self._lock:
            if self._armed.is_set():
                self._armed.clear()
                return True
            return False


class RecordingReplica:
    """One replica: records, then answers (200 for GET, HEAD, OPTIONS; 201 otherwise, or
    503 while `writer_ready` is False) or dies."""

    def __init__(self, name: str, log: ReceiptLog, token: DeathToken, host: str = "127.0.0.1", port: int = 0,
                 keep_alive: bool = False):
        self.name = name
        self.writer_ready = True
        self.dead = False
        replica = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path in (WRITE_READY_PATH, READ_READY_PATH):
                    ready = self.path == READ_READY_PATH or replica.writer_ready
                    return self._answer(200 if ready else 503)
                log.add(Receipt(replica.name, self.command, self.path, self.headers.get(REQUEST_ID_HEADER)))
                if token.take():
                    return replica._die(self.connection)
                if self.command in SAFE_METHODS:
                    return self._answer(200)
                self._answer(201 if replica.writer_ready else 503)

            def _answer(self, status: int) -> None:
                body = json.dumps({"served_by": replica.name}).encode()
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

            def log_message(self, *args: object) -> None:
                pass

        # `host`/`port`: several replicas on one port, as Swarm tasks on their own addresses.
        self.server = ThreadingHTTPServer((host, port), Handler)
        # A reset connection (ours, or a health check's) is not an error to print.
        self.server.handle_error = lambda request, client_address: None
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _die(self, connection: socket.socket) -> None:
        """What the kernel does for a SIGKILLed server: reset the connection in hand
        (SO_LINGER 0 makes close() send RST) and stop listening, so new connections are refused."""
        self.dead = True
        # shutdown() stops the listener at once; close() alone would wait for the
        # serving thread's poll() to let go of it, accepting connections meanwhile.
        self.server.socket.shutdown(socket.SHUT_RDWR)
        self.server.socket.close()
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        threading.Thread(target=self.server.shutdown, daemon=True).start()

    def kill(self) -> None:
        """Die now, with nothing in hand: connections to the port are refused from here on."""
        self.dead = True
        self.server.shutdown()
        self.server.server_close()

    def stop(self) -> None:
        if not self.dead:
            self.kill()
        self.thread.join(timeout=5)


@contextmanager
def recording_replicas(count: int, log: ReceiptLog, token: DeathToken,
                       keep_alive: bool = False) -> Iterator[list[RecordingReplica]]:
    """`count` replicas named replica-0..; all stopped on exit."""
    with ExitStack() as running:
        replicas = []
        for index in range(count):
            replica = RecordingReplica(f"replica-{index}", log, token, keep_alive=keep_alive)
            running.callback(replica.stop)
            replicas.append(replica)
        yield replicas
