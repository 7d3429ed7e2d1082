"""The event bus between the pbx (publisher) and event delivery (subscribers).

Theory of operation. The pbx publishes domain events from the call path — SIP handling, session
transitions, the media relay's callbacks — so :meth:`EventBus.publish` is synchronous and never
waits: a slow or stuck consumer (a webhook timing out, a WebSocket client not reading) must never
back-pressure a call. Each subscriber owns a bounded queue (:class:`Subscription`); publishing
offers the event to every queue, and a full queue drops the event **for that subscriber only**.
Drops are never silent: each subscription counts them (:attr:`Subscription.dropped`, also in
:meth:`EventBus.stats`) and logs one warning when a burst of drops starts and one info line with
the burst's size when the subscriber catches up.

Seam for scale-out. :class:`EventBus` is a Protocol generic in the event type, so this module
knows nothing of the pbx. A NATS or Redis implementation keeps the same shape: ``publish``
encodes the event and hands it to the client's bounded outgoing buffer without awaiting (one
flusher task owned by the bus does the I/O), and each ``subscribe`` opens a broker subscription
whose message callback decodes and calls :meth:`Subscription.offer` on the same
:class:`Subscription` class used here — so overflow, counting and the consumer's API are
identical whichever bus is configured. Such a bus also needs an event codec; this one passes
objects by reference (events are frozen dataclasses).

Threading. :class:`InProcessBus` uses :class:`asyncio.Queue`: call ``publish`` from the event
loop that runs the consumers (the pbx and the relay run on it). From another thread, use
``loop.call_soon_threadsafe(bus.publish, event)``.

Usage::

    bus: InProcessBus[DomainEvent] = InProcessBus()
    subscription = bus.subscribe("webhook:42", maxsize=1000)
    bus.publish(event)                     # from the pbx, never blocks
    async for event in subscription:       # in the delivery worker; ends on unsubscribe
        ...
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar, cast

logger = logging.getLogger(__name__)

E = TypeVar("E")

DEFAULT_MAXSIZE = 1000
"""Queued events per subscriber unless ``subscribe`` says otherwise."""
MAX_SUBSCRIBERS = 10_000
"""Subscriptions one bus accepts (rule 8: every table has a limit)."""


class SubscriptionClosed(Exception):
    """The subscription was unsubscribed and every event queued before that was consumed."""


class TooManySubscribers(Exception):
    """The bus already holds its maximum number of subscriptions."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionStats:
    """Counters of one subscription."""

    name: str
    maxsize: int
    queued: int
    """Events waiting to be consumed now."""
    delivered: int
    """Events accepted into the queue so far."""
    dropped: int
    """Events dropped so far because the queue was full."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BusStats:
    """Counters of a bus and its current subscriptions."""

    published: int
    subscriptions: tuple[SubscriptionStats, ...]

    @property
    def dropped(self) -> int:
        """Events dropped across the current subscriptions."""
        return sum(s.dropped for s in self.subscriptions)


_CLOSED: Final = object()
"""Queue sentinel marking the end of a closed subscription."""


class Subscription(Generic[E]):
    """One consumer's bounded queue of events; iterate it, or ``await get()``."""

    def __init__(self, name: str, *, maxsize: int = DEFAULT_MAXSIZE) -> None:
        """Create a subscription (normally done by :meth:`EventBus.subscribe`).

        Raises:
            ValueError: ``maxsize`` is less than 1.
        """
        if maxsize < 1:
            raise ValueError(f"subscription {name!r}: maxsize must be at least 1")
        self.name = name
        self.maxsize = maxsize
        # Unbounded underneath so the close sentinel always fits; offer() enforces maxsize.
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._delivered = 0
        self._dropped = 0
        self._burst = 0
        self._closed = False

    @property
    def delivered(self) -> int:
        """Events accepted into the queue so far."""
        return self._delivered

    @property
    def dropped(self) -> int:
        """Events dropped so far because the queue was full."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """True once unsubscribed (queued events can still be consumed)."""
        return self._closed

    def qsize(self) -> int:
        """Events waiting to be consumed."""
        return self._queue.qsize() - (1 if self._closed else 0)

    def offer(self, event: E) -> bool:
        """Queue ``event`` unless the queue is full or closed; never blocks.

        This is the one entry point of every bus implementation. Returns True if queued; a
        dropped event is counted and, at the start of a burst, logged at warning.
        """
        if self._closed:
            return False
        if self._queue.qsize() >= self.maxsize:
            self._dropped += 1
            self._burst += 1
            if self._burst == 1:
                logger.warning("x subscriber %s is full (%d): dropping", self.name, self.maxsize)
            return False
        if self._burst:
            logger.info("= subscriber %s caught up after dropping %d", self.name, self._burst)
            self._burst = 0
        self._queue.put_nowait(event)
        self._delivered += 1
        return True

    async def get(self) -> E:
        """The next event, waiting for one.

        Raises:
            SubscriptionClosed: unsubscribed and drained.
        """
        item = await self._queue.get()
        return self._unwrap(item)

    def get_nowait(self) -> E | None:
        """The next event, or None if none is queued.

        Raises:
            SubscriptionClosed: unsubscribed and drained.
        """
        if self._queue.empty():
            return None
        return self._unwrap(self._queue.get_nowait())

    def close(self) -> None:
        """End the subscription: no more events are queued; consumers drain what is there."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_CLOSED)

    def stats(self) -> SubscriptionStats:
        """This subscription's counters."""
        return SubscriptionStats(
            name=self.name,
            maxsize=self.maxsize,
            queued=self.qsize(),
            delivered=self._delivered,
            dropped=self._dropped,
        )

    def __aiter__(self) -> Subscription[E]:
        return self

    async def __anext__(self) -> E:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def _unwrap(self, item: object) -> E:
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # later get() calls see the end too
            raise SubscriptionClosed(self.name)
        return cast(E, item)  # only offer() puts anything else in the queue


class EventBus(Protocol[E]):
    """Publish/subscribe of events; see the module docstring for the contract."""

    def publish(self, event: E) -> None:
        """Offer ``event`` to every subscription; synchronous, never blocks, never raises."""
        ...

    def subscribe(self, name: str, *, maxsize: int = DEFAULT_MAXSIZE) -> Subscription[E]:
        """A new subscription receiving every event published from now on.

        Args:
            name: label for logs and stats (need not be unique).
            maxsize: queued events before new ones are dropped for this subscriber.
        """
        ...

    def unsubscribe(self, subscription: Subscription[E]) -> None:
        """Stop delivering to ``subscription`` and close it (idempotent)."""
        ...

    def stats(self) -> BusStats:
        """Counters of the bus and its subscriptions."""
        ...


class InProcessBus(Generic[E]):
    """The default :class:`EventBus`: fan-out to in-memory queues on one event loop."""

    def __init__(self, *, max_subscribers: int = MAX_SUBSCRIBERS) -> None:
        self._subscriptions: list[Subscription[E]] = []
        self._max_subscribers = max_subscribers
        self._published = 0

    def publish(self, event: E) -> None:
        """Offer ``event`` to every subscription in subscription order."""
        self._published += 1
        for subscription in self._subscriptions:
            subscription.offer(event)

    def subscribe(self, name: str, *, maxsize: int = DEFAULT_MAXSIZE) -> Subscription[E]:
        """A new subscription receiving every event published from now on.

        Raises:
            TooManySubscribers: the bus holds ``max_subscribers`` subscriptions already.
            ValueError: ``maxsize`` is less than 1.
        """
        if len(self._subscriptions) >= self._max_subscribers:
            raise TooManySubscribers(f"event bus is full ({self._max_subscribers} subscribers)")
        subscription: Subscription[E] = Subscription(name, maxsize=maxsize)
        # Copy-on-write: publish() may be iterating the old list.
        self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def unsubscribe(self, subscription: Subscription[E]) -> None:
        """Remove and close ``subscription`` (idempotent)."""
        self._subscriptions = [s for s in self._subscriptions if s is not subscription]
        subscription.close()

    def stats(self) -> BusStats:
        """Counters of the bus and its current subscriptions."""
        return BusStats(
            published=self._published,
            subscriptions=tuple(s.stats() for s in self._subscriptions),
        )
