"""The in-memory index of live subscriptions, by id, account and owner.

Each :class:`ActiveSubscription` pairs a subscription (its record and resolved filters) with the
:class:`NotificationSink` its notifications go to: a WebHook delivery worker or a WebSocket
session. The dispatcher reads :meth:`SubscriptionRegistry.for_account` for every event; the
subscription service adds, replaces and removes entries. Everything runs on one event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from callwatch.events.errors import Unavailable
from callwatch.events.filters import EventFilter
from callwatch.events.notifications import Notification
from callwatch.store.repo import SubscriptionRecord


class NotificationSink(Protocol):
    """Where the notifications of a subscription go; methods never block and never raise."""

    def deliver(self, notification: Notification) -> None:
        """Queue one notification (dropping and counting it if the queue is full)."""
        ...

    def retire(self, subscription_id: str) -> None:
        """The subscription ended (deleted, expired, replaced): deliver nothing more for it."""
        ...


@dataclass(frozen=True, slots=True)
class ActiveFilter:
    """A resolved filter and its canonical URI (the ``event`` of its notifications)."""

    filter: EventFilter
    uri: str

    @classmethod
    def of(cls, event_filter: EventFilter) -> ActiveFilter:
        return cls(event_filter, event_filter.serialize())


@dataclass(slots=True)
class ActiveSubscription:
    """A live subscription: what it wants and where it goes."""

    record: SubscriptionRecord
    filters: tuple[ActiveFilter, ...]
    sink: NotificationSink


class SubscriptionRegistry:
    """Live subscriptions of this node, bounded by ``limit``."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit
        self._by_id: dict[str, ActiveSubscription] = {}
        self._by_account: dict[int, dict[str, ActiveSubscription]] = {}

    def add(self, active: ActiveSubscription) -> None:
        """Index a new live subscription.

        Raises:
            Unavailable: the node holds ``limit`` live subscriptions already (503 CMN-201).
        """
        if len(self._by_id) >= self._limit:
            raise Unavailable("too many subscriptions on this node")
        record = active.record
        self._by_id[record.id] = active
        self._by_account.setdefault(record.account_id, {})[record.id] = active

    def get(self, subscription_id: str) -> ActiveSubscription | None:
        return self._by_id.get(subscription_id)

    def remove(self, subscription_id: str) -> ActiveSubscription | None:
        """Unindex a subscription (the caller retires its sink); None if it was not live."""
        active = self._by_id.pop(subscription_id, None)
        if active is None:
            return None
        account = self._by_account[active.record.account_id]
        del account[subscription_id]
        if not account:
            del self._by_account[active.record.account_id]
        return active

    def for_account(self, account_id: int) -> tuple[ActiveSubscription, ...]:
        """Live subscriptions of an account (a snapshot: callers may remove while iterating)."""
        account = self._by_account.get(account_id)
        return tuple(account.values()) if account else ()

    def for_owner(self, extension_id: int, client_id: str) -> list[ActiveSubscription]:
        """Live subscriptions of one user and app."""
        return [
            active
            for active in self._by_id.values()
            if active.record.extension_id == extension_id and active.record.client_id == client_id
        ]

    def all(self) -> tuple[ActiveSubscription, ...]:
        return tuple(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
