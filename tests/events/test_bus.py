"""InProcessBus: ordering, fan-out, per-subscriber overflow that never blocks publish."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callwatch.events import (
    EventBus,
    InProcessBus,
    Subscription,
    SubscriptionClosed,
    TooManySubscribers,
)


def drain(subscription: Subscription[int]) -> list[int]:
    events: list[int] = []
    while (event := subscription.get_nowait()) is not None:
        events.append(event)
    return events


class TestDelivery:
    async def test_order_is_publish_order(self) -> None:
        bus: EventBus[int] = InProcessBus()
        subscription = bus.subscribe("ordered", maxsize=100)
        for n in range(50):
            bus.publish(n)
        assert [await subscription.get() for _ in range(50)] == list(range(50))

    async def test_fan_out_to_every_subscriber(self) -> None:
        bus: InProcessBus[int] = InProcessBus()
        first, second = bus.subscribe("a"), bus.subscribe("b")
        bus.publish(1)
        bus.publish(2)
        assert drain(first) == drain(second) == [1, 2]

    async def test_only_events_after_subscribing(self) -> None:
        bus: InProcessBus[int] = InProcessBus()
        bus.publish(1)
        late = bus.subscribe("late")
        bus.publish(2)
        assert drain(late) == [2]

    async def test_waiting_consumer_is_woken(self) -> None:
        bus: InProcessBus[str] = InProcessBus()
        subscription = bus.subscribe("waiter")
        waiter = asyncio.create_task(subscription.get())
        await asyncio.sleep(0)
        assert not waiter.done()
        bus.publish("ring")
        assert await asyncio.wait_for(waiter, timeout=1) == "ring"

    def test_publish_needs_no_running_loop(self) -> None:
        bus: InProcessBus[int] = InProcessBus()
        subscription = bus.subscribe("sync")
        bus.publish(7)
        assert drain(subscription) == [7]


class TestOverflow:
    async def test_slow_subscriber_drops_alone_and_counts(self) -> None:
        bus: InProcessBus[int] = InProcessBus()
        slow = bus.subscribe("slow", maxsize=3)
        fast = bus.subscribe("fast", maxsize=1000)
        received: list[int] = []

        async def consume() -> None:
            async for event in fast:
                received.append(event)

        consumer = asyncio.create_task(consume())
        for n in range(500):
            bus.publish(n)  # synchronous: returns at once although "slow" never reads
        bus.unsubscribe(fast)
        await asyncio.wait_for(consumer, timeout=1)

        assert received == list(range(500))
        assert drain(slow) == [0, 1, 2]
        assert (slow.dropped, slow.delivered) == (497, 3)
        assert fast.dropped == 0
        stats = bus.stats()
        assert stats.published == 500
        assert stats.dropped == 497
        (only,) = stats.subscriptions
        assert (only.name, only.maxsize, only.queued, only.delivered) == ("slow", 3, 0, 3)

    def test_one_warning_per_burst(self, caplog: pytest.LogCaptureFixture) -> None:
        bus: InProcessBus[int] = InProcessBus()
        subscription = bus.subscribe("burst", maxsize=1)
        with caplog.at_level(logging.INFO, logger="callwatch.events.bus"):
            for n in range(5):
                bus.publish(n)
            drain(subscription)
            bus.publish(10)  # recovers
            bus.publish(11)  # second burst
            bus.publish(12)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        infos = [r for r in caplog.records if r.levelno == logging.INFO]
        assert len(warnings) == 2
        assert all("burst" in r.getMessage() for r in warnings)
        assert [r.getMessage() for r in infos] == ["= subscriber burst caught up after dropping 4"]
        assert subscription.dropped == 6


class TestLifecycle:
    async def test_unsubscribe_ends_iteration_after_queued_events(self) -> None:
        bus: InProcessBus[int] = InProcessBus()
        subscription = bus.subscribe("leaving")
        bus.publish(1)
        bus.unsubscribe(subscription)
        bus.unsubscribe(subscription)  # idempotent
        bus.publish(2)
        assert subscription.closed
        assert [event async for event in subscription] == [1]
        with pytest.raises(SubscriptionClosed):
            await subscription.get()
        with pytest.raises(SubscriptionClosed):
            subscription.get_nowait()
        assert bus.stats().subscriptions == ()

    async def test_unsubscribe_wakes_a_waiting_consumer(self) -> None:
        bus: InProcessBus[int] = InProcessBus()
        subscription = bus.subscribe("waiting")
        waiter = asyncio.create_task(subscription.get())
        await asyncio.sleep(0)
        bus.unsubscribe(subscription)
        with pytest.raises(SubscriptionClosed):
            await asyncio.wait_for(waiter, timeout=1)

    def test_limits(self) -> None:
        bus: InProcessBus[int] = InProcessBus(max_subscribers=2)
        with pytest.raises(ValueError, match="maxsize"):
            bus.subscribe("empty", maxsize=0)
        first = bus.subscribe("1")
        bus.subscribe("2")
        with pytest.raises(TooManySubscribers):
            bus.subscribe("3")
        bus.unsubscribe(first)
        bus.subscribe("3")

    def test_offer_after_close_is_refused(self) -> None:
        bus: InProcessBus[int] = InProcessBus()
        subscription = bus.subscribe("a")
        assert subscription.offer(1)
        assert subscription.qsize() == 1
        subscription.close()
        assert not subscription.offer(2)
        assert subscription.qsize() == 1
