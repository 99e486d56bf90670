"""One asyncio task per background duty (job worker, maintenance, writer probe),
started and cancelled with the app."""

from __future__ import annotations

import asyncio


class BackgroundTask:
    """Owns the task running `self._run()`; subclasses add their own cleanup to `stop`."""

    task_name = "background"
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def _cancel(self) -> None:
        """Cancel the task and wait until it has ended. Idempotent."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError
