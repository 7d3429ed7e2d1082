"""Subscription lifecycle: create, read, list, update, renew, expire, blacklist, delete.

Theory of operation (ringcentral-api.md §2.11). A subscription belongs to one user and one app
(its :class:`Owner`); at most ``max_subscriptions_per_owner`` (30) unexpired ones exist per
owner (403 SUB-505). Filters are parsed (400 SUB-508), resolved (``~`` → the owner's ids) and
authorised against what the owner may read:

- the app must hold the filter's permission — CallControl for telephony sessions, ReadPresence
  for presence (403 CMN-401);
- an account id other than the owner's: 403 SUB-406; an extension the store does not know:
  403 SUB-408 (SUB-406 if it belongs to another account);
- another extension needs an administrator, or a call-monitoring group in which the owner is
  Monitoring and that extension Monitored (the seed's user-level subscription); an
  account-level filter needs an administrator: 403 SUB-405;
- presence of an extension type without presence (Department, …): 403 SUB-402.

WebHook subscriptions are created over REST only, after the address passed the operator's
address policy (400 CMN-101 ``deliveryMode.address`` otherwise; :mod:`callwatch.events.egress`)
and the handshake (:class:`~callwatch.events.webhook.WebhookValidator`); they are stored, so
they survive a restart (:meth:`SubscriptionService.resume`), and expire ``expiresIn`` seconds
after creation or the last renewal (then 404 SUB-507 and no deliveries; the row is purged after
``expired_retention``). Repeated delivery failures — a refused address among them — blacklist
them for good (status ``Blacklisted`` + ``blacklistedData``; delete and re-create to recover).
WebSocket subscriptions exist only in memory, bound to their WebSocket session, and need no
renewal.

Store calls run in a worker thread (``asyncio.to_thread``) so SQLite never blocks the loop that
also runs the SIP stack and the relay; registry changes happen on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from callwatch.clock import Clock
from callwatch.events.errors import (
    FilterForbidden,
    InvalidFilters,
    InvalidSubscriptionField,
    SubscriptionExpired,
    SubscriptionNotFound,
    TooManySubscriptions,
)
from callwatch.events.filters import EventFilter, FilterKind, parse_filters
from callwatch.events.registry import ActiveFilter, ActiveSubscription, NotificationSink
from callwatch.events.registry import SubscriptionRegistry as Registry
from callwatch.events.settings import EventsSettings
from callwatch.events.webhook import WebhookPool, WebhookValidator, check_address
from callwatch.ids import IdGenerator
from callwatch.pbx.permissions import may_monitor
from callwatch.store.repo import Store, SubscriptionRecord

logger = logging.getLogger(__name__)

WEBHOOK: Final = "WebHook"
WEBSOCKET: Final = "WebSocket"
ACTIVE: Final = "Active"
BLACKLISTED: Final = "Blacklisted"
FILTER_PERMISSIONS: Final = {
    FilterKind.TELEPHONY_SESSIONS: "CallControl",
    FilterKind.PRESENCE: "ReadPresence",
}
"""App permission each kind of filter needs (ringcentral-api.md §3.2)."""
NO_PRESENCE_TYPES: Final = frozenset(
    {"Department", "Announcement", "Voicemail", "FaxUser", "PagingOnly", "ParkLocation"}
)
"""Extension types without presence (ringcentral-api.md §2.8): subscribing is SUB-402."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """Who subscribes: a user (extension) through an app, with what it may do."""

    account_id: int
    extension_id: int
    client_id: str
    scopes: tuple[str, ...]
    session_id: str
    """The OAuth session (WebSocket recovery must come from the same one)."""
    is_admin: bool


class SubscriptionService:
    """Creates and manages subscriptions; keeps the registry in step with the store."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        registry: Registry,
        webhooks: WebhookPool,
        validator: WebhookValidator,
        settings: EventsSettings,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._registry = registry
        self._webhooks = webhooks
        self._validator = validator
        self._settings = settings

    async def create_webhook(
        self,
        owner: Owner,
        filters: Sequence[str],
        *,
        address: str | None,
        verification_token: str | None,
        expires_in: int | None,
    ) -> SubscriptionRecord:
        """Validate, authorise, run the handshake, store and start delivering.

        Raises:
            SubscriptionError: see the module docstring (SUB-508, SUB-40x, SUB-505, CMN-101 for a
                refused address, SUB-525…).
        """
        address = check_address(address)
        ttl = self._ttl(expires_in)
        resolved = await self._authorised(owner, filters)
        await self._check_limit(owner)
        await self._validator.validate(address)
        now = self._now()
        record = SubscriptionRecord(
            id=self._new_id(),
            account_id=owner.account_id,
            extension_id=owner.extension_id,
            client_id=owner.client_id,
            event_filters=tuple(f.serialize() for f in resolved),
            transport=WEBHOOK,
            created_at=now,
            expires_at=now + ttl,
            expires_in=ttl,
            address=address,
            verification_token=verification_token,
        )
        await asyncio.to_thread(self._store.subscriptions.create, record)
        await asyncio.to_thread(
            self._store.subscriptions.purge_expired, now - self._settings.expired_retention
        )
        self._activate(record, resolved)
        logger.info("= webhook subscription %s for %s", record.id, record.address)
        return record

    async def create_websocket(
        self, owner: Owner, filters: Sequence[str], *, sink: NotificationSink
    ) -> SubscriptionRecord:
        """A subscription delivered to a WebSocket session (in memory only)."""
        resolved = await self._authorised(owner, filters)
        await self._check_limit(owner)
        now = self._now()
        ttl = int(self._settings.ws_absolute_timeout)
        record = SubscriptionRecord(
            id=self._new_id(),
            account_id=owner.account_id,
            extension_id=owner.extension_id,
            client_id=owner.client_id,
            event_filters=tuple(f.serialize() for f in resolved),
            transport=WEBSOCKET,
            created_at=now,
            expires_at=now + ttl,
            expires_in=ttl,
        )
        self._registry.add(ActiveSubscription(record, _active(resolved), sink))
        return record

    async def owned(self, owner: Owner) -> list[SubscriptionRecord]:
        """The owner's unexpired subscriptions, oldest first."""
        now = self._now()
        stored = await asyncio.to_thread(
            self._store.subscriptions.list_for_owner, owner.extension_id, owner.client_id
        )
        live = [
            a.record
            for a in self._registry.for_owner(owner.extension_id, owner.client_id)
            if a.record.transport == WEBSOCKET
        ]
        records = [r for r in stored if r.expires_at > now] + live
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def get(self, owner: Owner, subscription_id: str) -> SubscriptionRecord:
        """One of the owner's subscriptions.

        Raises:
            SubscriptionNotFound: unknown, or another owner's (404 CMN-102).
            SubscriptionExpired: it expired (404 SUB-507).
        """
        record = await self._find(owner, subscription_id)
        if record.expires_at <= self._now():
            raise SubscriptionExpired(subscription_id)
        return record

    async def update(
        self,
        owner: Owner,
        subscription_id: str,
        *,
        filters: Sequence[str] | None,
        expires_in: int | None,
        over_websocket: bool = False,
    ) -> SubscriptionRecord:
        """PUT: new filters (if given) and a new expiry; an empty update renews.

        Raises:
            InvalidSubscriptionField: a WebSocket subscription updated over HTTP (400 CMN-101).
            SubscriptionError: as :meth:`get` and :meth:`create_webhook` for the filters.
        """
        record = await self.get(owner, subscription_id)
        if record.transport == WEBSOCKET and not over_websocket:
            raise InvalidSubscriptionField(
                "deliveryMode.transportType", "WebSocket subscriptions cannot be updated via HTTP"
            )
        resolved = None if filters is None else await self._authorised(owner, filters)
        ttl = record.expires_in if expires_in is None else self._ttl(expires_in)
        now = self._now()
        updated = replace(
            record,
            event_filters=record.event_filters
            if resolved is None
            else tuple(f.serialize() for f in resolved),
            expires_at=now + ttl,
            expires_in=ttl,
        )
        if updated.transport == WEBHOOK:
            await asyncio.to_thread(self._store.subscriptions.update, updated)
        active = self._registry.get(subscription_id)
        if active is not None:
            active.record = updated
            if resolved is not None:
                active.filters = _active(resolved)
        return updated

    async def renew(
        self, owner: Owner, subscription_id: str, *, over_websocket: bool = False
    ) -> SubscriptionRecord:
        """Extend the subscription by its ``expiresIn`` from now."""
        return await self.update(
            owner, subscription_id, filters=None, expires_in=None, over_websocket=over_websocket
        )

    async def delete(self, owner: Owner, subscription_id: str) -> SubscriptionRecord:
        """Remove a subscription (expired ones too); returns what was removed.

        Raises:
            SubscriptionNotFound: unknown, or another owner's.
        """
        record = await self._find(owner, subscription_id)
        self.drop(subscription_id)
        if record.transport == WEBHOOK:
            await asyncio.to_thread(self._store.subscriptions.delete, subscription_id)
        return record

    def drop(self, subscription_id: str) -> None:
        """Stop delivering a subscription now (it stays stored)."""
        active = self._registry.remove(subscription_id)
        if active is not None:
            active.sink.retire(subscription_id)

    async def blacklist(self, subscription_id: str, reason: str) -> None:
        """Mark a WebHook subscription Blacklisted for good (its worker has stopped)."""
        self._registry.remove(subscription_id)
        record = await asyncio.to_thread(self._store.subscriptions.get, subscription_id)
        if record is None:
            return
        updated = replace(
            record, status=BLACKLISTED, blacklisted_at=self._now(), blacklist_reason=reason
        )
        await asyncio.to_thread(self._store.subscriptions.update, updated)
        logger.warning("x webhook subscription %s blacklisted: %s", subscription_id, reason)

    async def resume(self) -> int:
        """Start delivering every stored Active, unexpired subscription; returns how many."""
        records = await asyncio.to_thread(self._store.subscriptions.list_active, self._now())
        for record in records:
            parsed, invalid = parse_filters(record.event_filters)
            if invalid or not all(f.resolved for f in parsed):
                logger.error("! subscription %s has unusable filters %s", record.id, invalid)
                continue
            self._activate(record, parsed)
        return len(records)

    def _activate(self, record: SubscriptionRecord, resolved: Sequence[EventFilter]) -> None:
        worker = self._webhooks.start(record, on_blacklist=self.blacklist)
        try:
            self._registry.add(ActiveSubscription(record, _active(resolved), worker))
        except Exception:
            worker.retire(record.id)
            raise

    async def _find(self, owner: Owner, subscription_id: str) -> SubscriptionRecord:
        active = self._registry.get(subscription_id)
        record = (
            active.record
            if active is not None
            else await asyncio.to_thread(self._store.subscriptions.get, subscription_id)
        )
        if record is None or (record.extension_id, record.client_id) != (
            owner.extension_id,
            owner.client_id,
        ):
            raise SubscriptionNotFound()
        return record

    async def _authorised(self, owner: Owner, texts: Sequence[str]) -> list[EventFilter]:
        if not texts:
            raise InvalidFilters([], "at least one event filter is required")
        if len(texts) > self._settings.max_event_filters:
            raise InvalidFilters([], f"at most {self._settings.max_event_filters} filters")
        parsed, invalid = parse_filters(tuple(texts))
        if invalid:
            raise InvalidFilters(invalid)
        resolved = [
            f.resolve(account_id=owner.account_id, extension_id=owner.extension_id) for f in parsed
        ]
        await asyncio.to_thread(self._check_access, owner, resolved)
        return list(dict.fromkeys(resolved))

    def _check_access(self, owner: Owner, filters: Sequence[EventFilter]) -> None:
        for event_filter in filters:
            permission = FILTER_PERMISSIONS[event_filter.kind]
            if permission not in owner.scopes:
                raise FilterForbidden(
                    "In order to call this API endpoint, application needs to have "
                    f"[{permission}] permission",
                    code="CMN-401",
                    permission=permission,
                )
            self._check_target(owner, event_filter)

    def _check_target(self, owner: Owner, event_filter: EventFilter) -> None:
        if event_filter.account_id != owner.account_id:
            raise FilterForbidden(
                "Not allowed subscribe for events to extensions of other account", code="SUB-406"
            )
        if not event_filter.extension_level:
            if not owner.is_admin:
                raise FilterForbidden(
                    "Not allowed subscribe for account-level events without administrator "
                    "permission",
                    code="SUB-405",
                )
            return
        extension = self._store.extensions.get(event_filter.extension_id or 0)
        if extension is None:
            raise FilterForbidden("Not allowed subscribe for unknown user", code="SUB-408")
        if extension.account_id != owner.account_id:
            raise FilterForbidden(
                "Not allowed subscribe for events to extensions of other account", code="SUB-406"
            )
        if (
            extension.id != owner.extension_id
            and not owner.is_admin
            and not self._monitors(owner, extension.id)
        ):
            raise FilterForbidden(
                "Not allowed subscribe for events to other extensions", code="SUB-405"
            )
        if event_filter.kind is FilterKind.PRESENCE and extension.type in NO_PRESENCE_TYPES:
            raise FilterForbidden(
                f"Presence feature is disabled for this extension type ({extension.type})",
                code="SUB-402",
            )

    def _monitors(self, owner: Owner, extension_id: int) -> bool:
        """A supervisor may follow the agents its call-monitoring groups let it monitor."""
        members = self._store.monitoring.memberships_in_account(owner.account_id)
        return may_monitor(owner.extension_id, extension_id, members)

    async def _check_limit(self, owner: Owner) -> None:
        current = await self.owned(owner)
        if len(current) >= self._settings.max_subscriptions_per_owner:
            raise TooManySubscriptions(self._settings.max_subscriptions_per_owner)

    def _ttl(self, expires_in: int | None) -> int:
        if expires_in is None:
            return self._settings.default_expires_in
        if not 1 <= expires_in <= self._settings.max_expires_in:
            raise InvalidSubscriptionField("expiresIn")
        return expires_in

    def _new_id(self) -> str:
        return str(uuid.UUID(hex=self._ids.hex(16), version=4))

    def _now(self) -> float:
        return self._clock.utcnow().timestamp()


def _active(filters: Sequence[EventFilter]) -> tuple[ActiveFilter, ...]:
    return tuple(ActiveFilter.of(f) for f in filters)
