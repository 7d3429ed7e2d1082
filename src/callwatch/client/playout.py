"""The playout clock: one 20 ms grid of loop time shared by every stream of a softphone.

Theory of operation: tick *k* is due at ``origin + k · 20 ms`` on the event loop's clock (the
clock RTP arrival times are read from). One timer is armed for the next due tick while anything
listens; when it fires, every tick due by then is delivered, in order, to every listener — so a
late wake-up or a stalled loop never loses a tick (up to :data:`MAX_CATCH_UP`), and all
listeners see the same tick indexes at the same moments. Streams of different parties that play
tick *k* therefore describe the same instant: that is what aligns parties on a shared timeline.

A listener that raises is removed and closed (and the error logged) so one broken stream
cannot stop the others.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Protocol

__all__ = ["MAX_CATCH_UP", "PlayoutClock", "TickListener"]

logger = logging.getLogger(__name__)

MAX_CATCH_UP = 500
"""Most overdue ticks delivered after a stall (10 s); older ones are skipped and counted."""


class TickListener(Protocol):
    """Something played once per tick (a party's stream, a call watching its media)."""

    def tick(self, index: int, at: float) -> None:
        """Play tick ``index``, due at loop time ``at``."""
        ...

    def close(self) -> None:
        """Stop for good (called when :meth:`tick` raised)."""
        ...


class PlayoutClock:
    """Delivers every tick of a 20 ms grid to its listeners (see the module docstring).

    Args:
        frame: tick interval in seconds.
    """

    def __init__(self, frame: float = 0.02) -> None:
        self._loop = asyncio.get_running_loop()
        self.frame = frame
        self._origin = self._loop.time()
        self._next = 1
        self._listeners: list[TickListener] = []
        self._timer: asyncio.TimerHandle | None = None
        self._firing = False
        self.skipped = 0
        """Ticks skipped after a stall longer than :data:`MAX_CATCH_UP` ticks."""

    def time_of(self, index: int) -> float:
        """Loop time tick ``index`` is due."""
        return self._origin + index * self.frame

    def next_index(self) -> int:
        """Index of the first tick a listener added now would get."""
        if self._firing:  # the tick being delivered goes to the listeners it started with
            return self._next + 1
        if self._timer is not None:
            return self._next
        return self._due(self._loop.time()) + 1

    def add(self, listener: TickListener) -> int:
        """Start ticking ``listener``; returns the index of the first tick it will get."""
        first = self.next_index()
        self._listeners.append(listener)
        if self._timer is None and not self._firing:
            self._next = first
            self._arm()
        return first

    def remove(self, listener: TickListener) -> None:
        """Stop ticking ``listener`` (a no-op if it is not listening)."""
        if listener in self._listeners:
            self._listeners.remove(listener)
        if not self._listeners and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def listeners(self) -> int:
        """How many listeners tick."""
        return len(self._listeners)

    def close(self) -> None:
        """Stop the timer and forget every listener (they are not closed)."""
        self._listeners.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        self._timer = self._loop.call_at(self.time_of(self._next), self._on_timer)

    def _due(self, now: float) -> int:
        # the loop may run a timer up to its clock resolution early: round that to "due"
        return math.floor((now - self._origin) / self.frame + 1e-6)

    def _on_timer(self) -> None:
        self._timer = None
        due = self._due(self._loop.time())
        if due - self._next >= MAX_CATCH_UP:
            self.skipped += due - self._next - MAX_CATCH_UP + 1
            self._next = due - MAX_CATCH_UP + 1
        self._firing = True
        try:
            while self._next <= due and self._listeners:
                at = self.time_of(self._next)
                for listener in list(self._listeners):
                    if listener in self._listeners:  # not removed by an earlier one this tick
                        self._deliver(listener, self._next, at)
                self._next += 1
        finally:
            self._firing = False
        if self._listeners:
            self._arm()

    def _deliver(self, listener: TickListener, index: int, at: float) -> None:
        try:
            listener.tick(index, at)
        except Exception:  # isolate: one broken stream must not silence every other one
            logger.exception("! tick listener %r failed; removed", listener)
            self.remove(listener)
            listener.close()
