"""NotificationService: from domain events on the bus to notifications of live subscriptions.

Theory of operation. The service owns one bus subscription (``dispatch_queue_size`` deep): the
pbx's ``publish`` only offers an event to that queue, so nothing on the call path ever waits for
delivery. One dispatcher task takes each event, matches it against the live subscriptions of
its account (:class:`~callwatch.events.registry.SubscriptionRegistry`), builds each matching
notification (body once per event and filter variant, envelope per subscription) and hands it
to that subscription's sink — a WebHook worker or a WebSocket session — which queues it without
waiting. A full queue drops and counts for that subscriber only (bus queue: the bus's counters;
WebHook queues: :meth:`NotificationService.stats`; socket outboxes: their ``dropped``).

Expiry is checked as events are matched: an expired WebHook subscription stops delivering at
its next event and is answered 404 SUB-507. An error while building one event's notifications
is a bug: it is logged with the event type and counted (``stats().errors``), and the dispatcher
goes on with the next event rather than leave every subscriber without notifications.

The service also assembles the events side: the subscription service, the WebHook worker pool
and validator with the one HTTP client and address guard they share (the guard's resolver is
injectable, for tests), and the WebSocket gateway (whose ended sessions take their subscription
along).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Final

from callwatch.clock import Clock
from callwatch.events.bus import EventBus, Subscription, SubscriptionStats
from callwatch.events.egress import AddressGuard, AddressPolicy, Resolver
from callwatch.events.filters import FilterKind, SessionChange, match_presence, match_session
from callwatch.events.notifications import (
    CallMemory,
    EncodedBody,
    Notification,
    format_time,
    is_missed,
    presence_body,
    session_body,
)
from callwatch.events.registry import ActiveFilter, ActiveSubscription, SubscriptionRegistry
from callwatch.events.settings import EventsSettings
from callwatch.events.subscriptions import ACTIVE, WEBHOOK, SubscriptionService
from callwatch.events.tasks import TaskSet
from callwatch.events.webhook import WebhookPool, WebhookValidator, new_http_client
from callwatch.events.websocket import WsGateway, WsSession
from callwatch.ids import IdGenerator
from callwatch.pbx.events import DomainEvent, PartyStatusChanged, PresenceChanged
from callwatch.store.repo import Store

logger = logging.getLogger(__name__)

_UUID_LOW: Final = 10**18
_UUID_HIGH: Final = 10**19 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationStats:
    """Counters of the notification service."""

    events: int
    """Domain events taken from the bus."""
    notifications: int
    """Notifications handed to sinks."""
    errors: int
    """Events whose notifications could not be built (bugs; logged)."""
    dispatch_dropped: int
    """Events the bus dropped because the dispatcher fell behind."""
    subscriptions: int
    websocket_sessions: int
    webhooks: tuple[SubscriptionStats, ...]


class NotificationService:
    """Subscriptions, their delivery and the WebSocket gateway of one node."""

    def __init__(
        self,
        *,
        bus: EventBus[DomainEvent],
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        settings: EventsSettings,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self._bus = bus
        self._clock = clock
        self._ids = ids
        guard = AddressGuard(AddressPolicy.of(settings), resolver)
        self._http = new_http_client(guard)
        self._tasks = TaskSet("notifications")
        self.registry = SubscriptionRegistry(limit=settings.max_subscriptions)
        self._webhooks = WebhookPool(
            http=self._http, guard=guard, settings=settings, tasks=self._tasks
        )
        self.subscriptions = SubscriptionService(
            store=store,
            clock=clock,
            ids=ids,
            registry=self.registry,
            webhooks=self._webhooks,
            validator=WebhookValidator(http=self._http, guard=guard, ids=ids, settings=settings),
            settings=settings,
        )
        self.gateway = WsGateway(
            clock=clock, ids=ids, settings=settings, on_session_end=self._session_ended
        )
        self._memory = CallMemory()
        self._uuids = itertools.count(ids.integer(_UUID_LOW, _UUID_HIGH // 2))
        """Notification uuids: 19-digit strings from a random start (unique, not secret)."""
        self._inbox: Subscription[DomainEvent] | None = None
        self._events = self._notifications = self._errors = 0

    async def start(self) -> None:
        """Resume stored WebHook subscriptions and start dispatching bus events."""
        resumed = await self.subscriptions.resume()
        self._inbox = self._bus.subscribe(
            "notifications", maxsize=self.settings.dispatch_queue_size
        )
        self._tasks.spawn(self._dispatch(self._inbox), name="notifications:dispatch")
        logger.info("= notifications started (%d webhook subscriptions resumed)", resumed)

    async def stop(self) -> None:
        """Stop dispatching and delivering; end every WebSocket session."""
        if self._inbox is not None:
            self._bus.unsubscribe(self._inbox)
        self.gateway.close()
        await self._tasks.close()
        await self._http.aclose()

    def stats(self) -> NotificationStats:
        return NotificationStats(
            events=self._events,
            notifications=self._notifications,
            errors=self._errors,
            dispatch_dropped=self._inbox.dropped if self._inbox else 0,
            subscriptions=len(self.registry),
            websocket_sessions=len(self.gateway),
            webhooks=self._webhooks.stats(),
        )

    def message_id(self) -> str:
        """A new RingCentral-style message/request id (UUID form)."""
        hex_id = self._ids.hex(16)
        return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"

    def notify(self, event: DomainEvent) -> int:
        """Deliver the notifications of one event now; returns how many were handed on."""
        now = format_time(self._clock.utcnow())
        if isinstance(event, PartyStatusChanged):
            return self._notify_session(event, now)
        if isinstance(event, PresenceChanged):
            return self._notify_presence(event, now)
        return 0

    async def _dispatch(self, inbox: Subscription[DomainEvent]) -> None:
        async for event in inbox:
            self._events += 1
            try:
                self._notifications += self.notify(event)
            except Exception:
                self._errors += 1
                logger.exception("! notifications of %s failed", type(event).__name__)

    def _notify_session(self, event: PartyStatusChanged, now: str) -> int:
        session = event.session
        answered = self._memory.observe(session)
        party = next((p for p in session.parties if p.id == event.party_id), None)
        if party is None:
            return 0
        change = SessionChange(session=session, party=party, missed=is_missed(party, answered))
        bodies: dict[tuple[int | None, bool], EncodedBody] = {}
        sent = 0
        for active, item in self._candidates(session.account_id, FilterKind.TELEPHONY_SESSIONS):
            parties = match_session(item.filter, change)
            if parties is None:
                continue
            extension = item.filter.extension_id if item.filter.extension_level else None
            key = (extension, bool(item.filter.sip_data))
            body = bodies.get(key)
            if body is None:
                body = bodies[key] = EncodedBody.of(
                    session_body(
                        session,
                        parties,
                        sequence=event.sequence,
                        event_time=event.event_time,
                        extension_id=extension,
                        sip_data=key[1],
                        answered=answered,
                    )
                )
            sent += self._send(active, item, body, now)
        return sent

    def _notify_presence(self, event: PresenceChanged, now: str) -> int:
        presence = event.presence
        bodies: dict[tuple[bool, bool], EncodedBody] = {}
        sent = 0
        for active, item in self._candidates(presence.account_id, FilterKind.PRESENCE):
            if not match_presence(item.filter, presence):
                continue
            detailed = bool(item.filter.detailed)
            key = (detailed, detailed and bool(item.filter.sip_data))
            body = bodies.get(key)
            if body is None:
                body = bodies[key] = EncodedBody.of(
                    presence_body(presence, detailed=key[0], sip_data=key[1])
                )
            sent += self._send(active, item, body, now)
        return sent

    def _candidates(
        self, account_id: int, kind: FilterKind
    ) -> list[tuple[ActiveSubscription, ActiveFilter]]:
        now = self._clock.utcnow().timestamp()
        found: list[tuple[ActiveSubscription, ActiveFilter]] = []
        for active in self.registry.for_account(account_id):
            record = active.record
            if record.transport == WEBHOOK and record.expires_at <= now:
                logger.info("= subscription %s expired", record.id)
                self.subscriptions.drop(record.id)
                continue
            if record.status == ACTIVE:
                found.extend((active, item) for item in active.filters if item.filter.kind is kind)
        return found

    def _send(
        self, active: ActiveSubscription, item: ActiveFilter, body: EncodedBody, now: str
    ) -> int:
        record = active.record
        active.sink.deliver(
            Notification(
                uuid=str(next(self._uuids)),
                event=item.uri,
                timestamp=now,
                subscription_id=record.id,
                owner_id=str(record.extension_id),
                body=body,
            )
        )
        return 1

    def _session_ended(self, session: WsSession) -> None:
        if session.subscription_id is not None:
            self.subscriptions.drop(session.subscription_id)
