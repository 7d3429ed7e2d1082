"""Event distribution: the bus between the pbx and event delivery (see :mod:`.bus`)."""

from callwatch.events.bus import (
    DEFAULT_MAXSIZE,
    BusStats,
    EventBus,
    InProcessBus,
    Subscription,
    SubscriptionClosed,
    SubscriptionStats,
    TooManySubscribers,
)

__all__ = [
    "DEFAULT_MAXSIZE",
    "BusStats",
    "EventBus",
    "InProcessBus",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionStats",
    "TooManySubscribers",
]
