"""A bounded queue of notifications between a receiving task and an ``async for`` reader.

``put`` never blocks the receiver: beyond ``limit`` waiting items the new one is dropped and
counted (a slow reader must not stall heartbeats or the HTTP server). ``end`` closes the inbox;
the reader gets what is queued, then ``StopAsyncIteration`` — or the failure ``end`` was given.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Inbox"]

T = TypeVar("T")


class Inbox(Generic[T]):
    """Items in arrival order, at most ``limit`` waiting."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.dropped = 0
        """Items refused because ``limit`` were waiting."""
        self._items: deque[T] = deque()
        self._wakeup = asyncio.Event()
        self._ended = False
        self._failure: BaseException | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ended(self) -> bool:
        return self._ended

    def put(self, item: T) -> bool:
        """Queue ``item``; False if it was dropped (full or ended)."""
        if self._ended or len(self._items) >= self.limit:
            self.dropped += 1
            return False
        self._items.append(item)
        self._wakeup.set()
        return True

    def end(self, failure: BaseException | None = None) -> None:
        """No more items; the reader raises ``failure`` (if any) once the queue is empty."""
        if not self._ended:
            self._ended, self._failure = True, failure
        self._wakeup.set()

    async def get(self) -> T:
        """The next item.

        Raises:
            StopAsyncIteration: ended and empty.
            BaseException: the failure the inbox was ended with.
        """
        while True:
            if self._items:
                return self._items.popleft()
            if self._failure is not None:
                raise self._failure
            if self._ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
