"""Free TCP ports on 127.0.0.1, so parallel tests and drills never collide, and
polling with deadlines, since readiness is never guessed with sleeps."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, deadline_s: float = 30.0, host: str = "127.0.0.1") -> None:
    """Poll until something accepts connections on `port`, or raise TimeoutError."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {deadline_s}s")


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str, interval_s: float = 0.02,
               explain: Callable[[], str] | None = None) -> float:
    """Poll `condition` until it holds; return the seconds that took, or raise TimeoutError
    (with what `explain` reports then, so a failed run in CI says why)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > deadline_s:
            raise TimeoutError(f"{what}: not true after {deadline_s}s" + (f"\n{explain()}" if explain else ""))
        time.sleep(interval_s)
    return time.monotonic() - start
