"""Notifications through a WebHook that looks after itself: the webhook twin of
:class:`~callwatch.client.subscriptions.WebSocketSubscription`.

Theory of operation. :class:`WebhookFeed` starts a :class:`~.webhooks.WebhookReceiver`
(listening on ``host:port``), then creates a ``WebHook`` subscription for the event filters
delivering to ``address`` — the receiver's own URL unless the server must reach it through
another name (NAT, a proxy). A random verification token is set, so the receiver refuses
deliveries that do not come from that subscription. One owned task then keeps the
subscription alive, every ``check_interval`` seconds:

* ``GET`` it: ``Active`` with less than ``renew_margin`` of its life left → ``renew``;
  ``Blacklisted`` (the server gave up after failed deliveries), gone (404: expired, deleted,
  or a server that lost its store) or any other status → a new subscription is created and
  the old one deleted (best effort); ``on_reset(False)`` tells the caller that notifications
  of the gap are lost;
* a transport error or a 5xx: the server is unreachable; the next check is sooner
  (``retry_interval``) and when the server answers again ``on_reset(True)`` is called — it kept
  the subscription, but it may have restarted (a softphone's registration is gone then).

Reading: ``async for envelope in feed`` yields each delivered envelope once (de-duplicated by
``uuid``, as a retried delivery repeats it), skipping those of subscriptions this feed no
longer owns. :meth:`WebhookFeed.close` deletes the subscription (best effort), stops the
receiver and ends the iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from callwatch.client.api_errors import ApiError, ConnectionFailed, NotFound, ServerError
from callwatch.client.api_session import ApiSession
from callwatch.client.webhooks import WebhookReceiver, WebhookSubscription, create_webhook
from callwatch.client.wire import JsonObject

__all__ = ["FeedStats", "WebhookFeed"]

logger = logging.getLogger(__name__)

SEEN_UUIDS = 4096
"""Envelope ids remembered for de-duplication."""


@dataclass(slots=True)
class FeedStats:
    renewals: int = 0
    recreations: int = 0
    """Subscriptions created anew (blacklisted, expired or lost by the server)."""
    outages: int = 0
    """Times the server stopped answering the health check and came back."""
    duplicates: int = 0
    stale: int = 0
    """Deliveries for a subscription this feed no longer owns."""


class WebhookFeed:
    """A self-renewing WebHook subscription and its receiver (see the module docstring).

    Args:
        rest: a logged-in session (tokens refresh through it).
        event_filters: what to subscribe to.
        host, port: where the receiver listens (port 0: any free port).
        address: the URL the server delivers to (default: the receiver's own URL).
        expires_in: the subscription's lifetime in seconds (the server may cap it).
        check_interval: seconds between two health checks of the subscription.
        renew_margin: renew when less than this many seconds of its life are left.
        retry_interval: seconds between checks while the server does not answer.
        on_reset: called (on the loop) with ``True`` when the server answers again after an
            outage, ``False`` when the subscription had to be created anew.
    """

    def __init__(
        self,
        rest: ApiSession,
        event_filters: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        address: str | None = None,
        expires_in: int = 3600,
        check_interval: float = 30.0,
        renew_margin: float = 300.0,
        retry_interval: float = 1.0,
        on_reset: Callable[[bool], None] | None = None,
    ) -> None:
        self._rest = rest
        self._filters = tuple(event_filters)
        self.verification_token = secrets.token_urlsafe(24)
        """What the server sends back in ``Validation-Token`` with each delivery."""
        self._receiver = WebhookReceiver(
            verification_token=self.verification_token, host=host, port=port
        )
        self._address = address
        self._expires_in = expires_in
        self._check_interval = check_interval
        self._renew_margin = renew_margin
        self._retry_interval = retry_interval
        self._on_reset = on_reset
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.subscription: WebhookSubscription | None = None
        self.stats = FeedStats()

    @property
    def address(self) -> str:
        """Where deliveries go (known once started)."""
        return self._address or self._receiver.url

    async def start(self) -> Self:
        """Listen, subscribe (the server's handshake reaches the receiver), start the upkeep.

        Raises:
            ApiError: the subscription was refused (403 for a filter the user may not use,
                400 SUB-525 when the server cannot complete the handshake at ``address`` …).
        """
        await self._receiver.start()
        try:
            self.subscription = await self._create()
        except BaseException:
            await self._receiver.close()
            raise
        self._task = asyncio.create_task(self._upkeep(), name="callwatch-webhook-upkeep")
        return self

    async def close(self) -> None:
        """Stop the upkeep, delete the subscription (best effort), stop the receiver."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.subscription is not None:
            with contextlib.suppress(ApiError):
                await self.subscription.delete()
            self.subscription = None
        await self._receiver.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[JsonObject]:
        return self

    async def __anext__(self) -> JsonObject:
        """The next new envelope of the current subscription (see the module docstring)."""
        while True:
            envelope = await anext(self._receiver)
            key = _text(envelope, "uuid")
            if key and key in self._seen:
                self.stats.duplicates += 1
                continue
            owner = self.subscription.id if self.subscription is not None else None
            if _text(envelope, "subscriptionId") != owner:
                self.stats.stale += 1
                continue
            if key:
                self._seen[key] = None
                if len(self._seen) > SEEN_UUIDS:
                    self._seen.popitem(last=False)
            return envelope

    async def _create(self) -> WebhookSubscription:
        return await create_webhook(
            self._rest,
            self._filters,
            self.address,
            verification_token=self.verification_token,
            expires_in=self._expires_in,
        )

    async def _upkeep(self) -> None:
        delay = self._check_interval
        away = False
        while True:
            await asyncio.sleep(delay)
            try:
                await self._check()
            except (ConnectionFailed, ServerError, TimeoutError) as exc:
                if not away:
                    logger.warning("! webhook check failed, server unreachable: %r", exc)
                away, delay = True, self._retry_interval
                continue
            except ApiError as exc:  # refused (403 after a permission change …): keep trying
                logger.warning("! webhook upkeep refused: %s", exc)
            if away:
                self.stats.outages += 1
                logger.info("= the server answers again; subscription %s", self._current_id())
                self._reset(recovered=True)
            away, delay = False, self._check_interval

    async def _check(self) -> None:
        subscription = self.subscription
        assert subscription is not None
        try:
            info = await subscription.read()
        except NotFound:
            info = {}
        status = _text(info, "status")
        if status == "Active":
            left = info.get("expiresIn")
            if isinstance(left, int | float) and left < self._renew_margin:
                await subscription.renew()
                self.stats.renewals += 1
            return
        shown = status or "gone"
        logger.warning("! webhook subscription %s is %s: subscribing again", subscription.id, shown)
        self.subscription = await self._create()
        self.stats.recreations += 1
        if status:
            with contextlib.suppress(ApiError):
                await subscription.delete()
        self._reset(recovered=False)

    def _current_id(self) -> str | None:
        return None if self.subscription is None else self.subscription.id

    def _reset(self, *, recovered: bool) -> None:
        if self._on_reset is not None:
            try:
                self._on_reset(recovered)
            except Exception:  # the caller's hook must not stop the upkeep
                logger.exception("! on_reset hook failed")


def _text(obj: JsonObject, key: str) -> str | None:
    """``obj[key]`` as a string when it is one (or an integer id); never raises."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)
