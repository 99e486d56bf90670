"""`python -m hastack_app`: serve the app with uvicorn on 0.0.0.0:$PORT.

Shutdown on SIGTERM (docker stop, a rolling update, scale-in) goes in two steps:

1. Drain, for SHUTDOWN_DRAIN_S: /readyz answers 503 and the worker hands its job
   back, but requests are still served, each answered with `Connection: close` so
   the load balancer keeps no idle connection to this replica. Its health checks see
   the 503 and stop routing here, so no client is sent to a closing socket.
2. uvicorn's graceful shutdown: stop accepting, let in-flight requests finish within
   SHUTDOWN_GRACE_S, then the app closes its pools.

The platform's stop timeout must exceed the sum (Docker's default is 10 s).
A second signal skips the drain.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

import uvicorn

from .config import ConfigError, Settings
from .main import create_app


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_s: float):
        super().__init__(config)
        self.drain_s = drain_s
        self.drain_started = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.drain_task: asyncio.Task | None = None  # held: the loop keeps only weak refs

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig, frame) -> None:
        runtime = getattr(self.config.app.state, "runtime", None)
        if self.drain_started or self.drain_s <= 0 or runtime is None or self.loop is None:
            super().handle_exit(sig, frame)
            return
        self.drain_started = True
        self.loop.call_soon_threadsafe(self._start_drain, runtime, sig, frame)

    def _start_drain(self, runtime, sig, frame) -> None:
        # Runs on the loop; a signal handler may not create tasks itself.
        self.drain_task = self.loop.create_task(self._drain(runtime, sig, frame))

    async def _drain(self, runtime, sig, frame) -> None:
        logging.getLogger("hastack_app").info("draining for %ss before shutdown", self.drain_s)
        await asyncio.gather(runtime.begin_drain(), asyncio.sleep(self.drain_s))
        super().handle_exit(sig, frame)


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as problem:
        sys.exit(f"hastack_app: {problem}")
    logging.basicConfig(level=settings.log_level.upper(),
                        format=f"%(asctime)s {settings.node_id} %(name)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        timeout_keep_alive=settings.keep_alive_s,
        log_level=settings.log_level,
        access_log=settings.access_log,
    )
    DrainingServer(config, drain_s=settings.shutdown_drain_s).run()


if __name__ == "__main__":
    main()
