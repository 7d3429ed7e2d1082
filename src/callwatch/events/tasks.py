"""An owner for long-lived background tasks (delivery workers, the dispatcher).

Every task has an owner that awaits or cancels it (STYLE anti-pattern "fire-and-forget tasks").
A :class:`TaskSet` keeps strong references to its tasks, logs a task that dies of an exception
(it is a bug: workers handle delivery failures themselves), and on :meth:`TaskSet.close` cancels
and awaits them all. Unlike :class:`asyncio.TaskGroup` it fits a service with ``start()`` /
``stop()`` methods, and one failing worker does not cancel its siblings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class TaskSet:
    """Background tasks owned by one service."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.failures = 0
        """Tasks that ended with an exception so far."""

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run ``coro`` as a task owned by this set.

        Raises:
            RuntimeError: the set is closed.
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"task set {self.name} is closed")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def close(self) -> None:
        """Cancel every task and wait for all of them to end."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failures += 1
            logger.error("! task %s of %s failed", task.get_name(), self.name, exc_info=error)
