"""Notification subscriptions: over the WebSocket gateway here, WebHooks in ``webhooks``.

Theory of operation — :class:`WebSocketSubscription` (ringcentral-api.md §4)
---------------------------------------------------------------------------
One owned task runs the connection loop; the caller reads notifications with ``async for``.

1. Connect: ``POST /restapi/oauth/wstoken`` (through the REST client, so tokens refresh), open
   ``uri?access_token=…`` — plus ``&wsc=<token>`` once a subscription exists — and wait for
   ConnectionDetails (:class:`~callwatch.client.wsg_connection.GatewayConnection`).
2. Bring up: a new session, or ``recoveryState: "Failed"``, gets a ClientRequest
   ``POST /restapi/v1.0/subscription`` with the current filters; ``"Successful"`` keeps the
   subscription — the server replays what was missed — and only re-applies filters changed
   while the socket was down.
3. Serve until the socket is dead (closed, reset, or silent after a heartbeat). Notifications
   are de-duplicated by ``uuid``, those of an older subscription are ignored, and at most
   ``max_pending`` wait for the reader (beyond, dropped and counted).
4. Reconnect at once with the last ``wsc``; failed attempts wait :class:`Backoff` (exponential,
   capped, jittered), and at least a 429's ``Retry-After`` (wstoken is in the 5/min Auth
   group). An error the server would repeat — 400, 401 after a refresh, 403, 404 — ends the
   iteration with that error; during :meth:`WebSocketSubscription.start` every error is
   raised to the caller.

After a failed recovery, notifications published during the gap are lost (the server's window
or buffer was exceeded): ``stats.resubscriptions`` counts it; re-read state (e.g.
``RestClient.session``) if that matters.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import websockets

from callwatch.client import wsg
from callwatch.client.api_errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    RateLimited,
    ResponseError,
)
from callwatch.client.api_session import ApiSession, Sleep
from callwatch.client.inbox import Inbox
from callwatch.client.webhooks import WebhookReceiver, WebhookSubscription, create_webhook
from callwatch.client.wire import JsonObject, text_field
from callwatch.client.wsg_connection import (
    ConnectionLost,
    Connector,
    GatewayConnection,
    GatewayRefused,
    Timing,
    websockets_connector,
)

__all__ = [
    "Backoff",
    "ConnectionLost",
    "Connector",
    "GatewayRefused",
    "SubscriptionStats",
    "Timing",
    "WebSocketSubscription",
    "WebhookReceiver",
    "WebhookSubscription",
    "create_webhook",
    "websockets_connector",
]

logger = logging.getLogger(__name__)

SUBSCRIPTION_PATH: Final = "/restapi/v1.0/subscription"
_TRANSIENT = (
    ConnectionFailed,
    ConnectionLost,
    ResponseError,
    OSError,
    TimeoutError,
    websockets.WebSocketException,
)
"""Failures a later attempt may not meet (ApiErrors are sorted by :func:`_fatal`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Delays between failed connection attempts: ``initial·factor^(n-1)`` capped, ± jitter."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.1
    """Fraction of the delay randomised (spreads reconnects after a server restart)."""

    def delay(self, failures: int, rand: float) -> float:
        """Delay after ``failures`` (≥ 1) consecutive failures; ``rand`` uniform in [0, 1)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        return max(0.0, base * (1 + self.jitter * (2 * rand - 1)))


@dataclass(slots=True)
class SubscriptionStats:
    """What happened to a subscription; ``frames`` counts frames by kind."""

    frames: wsg.FrameCounters
    connections: int = 0
    recoveries: int = 0
    """Reconnections the server recovered (nothing lost)."""
    resubscriptions: int = 0
    """Reconnections that needed a new subscription (notifications of the gap are lost)."""
    dropped: int = 0
    """Notifications dropped because ``max_pending`` were waiting for the reader."""
    stale: int = 0
    """Notifications of a previous subscription, ignored."""


def _fatal(error: ApiError) -> bool:
    """Errors the server will repeat on every attempt."""
    return error.status in (400, 401, 403, 404) and not error.token_expired


class WebSocketSubscription:
    """Notifications for ``event_filters`` over the WebSocket gateway (module docstring).

    ``async with WebSocketSubscription(rest, filters) as sub: async for envelope in sub: …``

    ``on_reconnected(recovered)`` runs (on the loop, exceptions logged) after every
    reconnection once the subscription is live again: ``recovered`` is false when it had to
    be created anew, the sign that the server lost its state (a restart, or a gap longer than
    its recovery window) — a softphone's registration may be gone too.
    """

    def __init__(
        self,
        rest: ApiSession,
        event_filters: Sequence[str],
        *,
        timing: Timing | None = None,
        backoff: Backoff | None = None,
        max_pending: int = 10_000,
        connector: Connector = websockets_connector,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        message_ids: Callable[[], str] = lambda: str(uuid.uuid4()),
        on_reconnected: Callable[[bool], None] | None = None,
    ) -> None:
        self._rest = rest
        self._on_reconnected = on_reconnected
        self._filters = tuple(event_filters)
        self._applied: tuple[str, ...] = ()
        self._timing = timing or Timing()
        self._backoff = backoff or Backoff()
        self._connector = connector
        self._sleep, self._rng, self._ids = sleep, rng, message_ids
        self._state = wsg.GatewayState()
        self.stats = SubscriptionStats(frames=self._state.counters)
        self.subscription: JsonObject | None = None
        """The last SubscriptionInfo the server sent (``id``, ``eventFilters`` …)."""
        self.connection_details: JsonObject = {}
        """The body of the last ConnectionDetails (``recoveryTimeout``, ``idleTimeout`` …)."""
        self._connection: GatewayConnection | None = None
        self._inbox: Inbox[JsonObject] = Inbox(max_pending)
        self._lock = asyncio.Lock()
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def subscription_id(self) -> str | None:
        return None if self.subscription is None else text_field(self.subscription, "id")

    @property
    def event_filters(self) -> tuple[str, ...]:
        return self._filters

    @property
    def connected(self) -> bool:
        """True while a socket is up and subscribed."""
        return self._connection is not None

    # -- public API -----------------------------------------------------------------------------

    async def start(self) -> Self:
        """Connect and subscribe; returns once the subscription exists.

        Raises:
            ApiError: wstoken or the subscription was refused (403 SUB-406 for a filter the
                user may not subscribe to, 400 SUB-508 for an invalid filter …).
            ConnectionFailed, ConnectionLost, TimeoutError: the gateway could not be reached.
        """
        if self._task is not None:
            raise RuntimeError("already started")
        self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name="callwatch-wsg-subscription")
        try:
            await asyncio.shield(self._ready)
        except BaseException:
            await self._stop_task()
            raise
        return self

    async def close(self) -> None:
        """Delete the subscription (best effort), close the socket, end the iteration."""
        if self._inbox.ended:
            return
        connection, subscription_id = self._connection, self.subscription_id
        if connection is not None and subscription_id is not None:
            try:
                path = f"{SUBSCRIPTION_PATH}/{subscription_id}"
                await connection.request("DELETE", path, timeout=self._timing.close_timeout)
            except (ClientError, TimeoutError) as exc:
                logger.info("x subscription %s not deleted: %s", subscription_id, exc)
        self._state.forget_session()
        await self._stop_task()
        self._end(None)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[JsonObject]:
        return self

    async def __anext__(self) -> JsonObject:
        """The next notification envelope ``{uuid, event, timestamp, subscriptionId, body}``.

        Raises:
            StopAsyncIteration: after :meth:`close` (queued notifications come first).
            ApiError: the subscription could not be restored (see the module docstring).
        """
        return await self._inbox.get()

    async def update_filters(self, event_filters: Sequence[str]) -> None:
        """Replace the event filters (PUT; a subscription the server lost is re-created).

        While the socket is down the new filters are applied when it is back (should the server
        refuse them then, the iteration ends with that error).

        Raises:
            ApiError: the server refused the filters (the old ones stay in force).
        """
        previous, self._filters = self._filters, tuple(event_filters)
        connection = self._connection
        if connection is None or self.subscription is None:
            return
        try:
            await self._apply_filters(connection)
        except (ConnectionLost, TimeoutError):
            logger.info("= socket lost during update; the filters apply on reconnect")
        except ApiError:
            self._filters = previous
            raise

    # -- connection loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            floor = 0.0  # a 429's Retry-After: reconnecting earlier restarts the penalty
            try:
                served = await self._connect_once()
            except ApiError as error:
                if _fatal(error) or not self._started:
                    self._end(error)
                    return
                served = False
                if isinstance(error, RateLimited) and error.retry_after:
                    floor = error.retry_after
                logger.warning("! refused, will retry: %s", error)
            except _TRANSIENT as exc:
                if not self._started:
                    self._end(exc)
                    return
                served = False
                logger.info("x connection attempt failed: %r", exc)
            except Exception as exc:  # NotLoggedIn, or a bug: end the iteration, never hang it
                logger.exception("! subscription stopped")
                self._end(exc)
                return
            failures = 0 if served else failures + 1
            if failures:
                await self._sleep(max(floor, self._backoff.delay(failures, self._rng())))

    @property
    def _started(self) -> bool:
        return self._ready is not None and self._ready.done()

    async def _connect_once(self) -> bool:
        """One connection; True if it was subscribed before it ended."""
        token = await self._rest.ws_token()
        wsc = self._state.wsc if self.subscription is not None else None
        transport = await self._connector(token.url(None if wsc is None else wsc.token))
        self.stats.connections += 1
        connection = GatewayConnection(
            transport,
            self._state,
            deliver=self._deliver,
            timing=self._timing,
            message_ids=self._ids,
        )
        try:
            details = await connection.handshake()
            self.connection_details = details.details
            serving = asyncio.create_task(connection.serve())
            try:
                await self._bring_up(connection, details)
                if self._applied != self._filters:  # update_filters() ran during the bring-up
                    await self._apply_filters(connection)
                self._connection = connection
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)
                await serving
            finally:
                self._connection = None
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
            serving.result()
            return True
        finally:
            await connection.close()

    async def _bring_up(
        self, connection: GatewayConnection, details: wsg.ConnectionDetails
    ) -> None:
        if details.recovered and self.subscription is not None:
            self.stats.recoveries += 1
            logger.info("= session recovered; subscription %s continues", self.subscription_id)
            if self._applied != self._filters:
                await self._apply_filters(connection)
            self._reconnected(recovered=True)
            return
        again = self.subscription is not None
        if again:
            self.stats.resubscriptions += 1
            state, code = details.recovery_state, details.recovery_error
            logger.warning("! recovery %s (%s): subscribing again", state, code)
        async with self._lock:
            await self._create(connection)
        if again:
            self._reconnected(recovered=False)

    def _reconnected(self, *, recovered: bool) -> None:
        if self._on_reconnected is not None:
            try:
                self._on_reconnected(recovered)
            except Exception:  # the caller's hook must not take the subscription down
                logger.exception("! on_reconnected hook failed")

    async def _apply_filters(self, connection: GatewayConnection) -> None:
        async with self._lock:
            filters = self._filters
            path = f"{SUBSCRIPTION_PATH}/{self.subscription_id}"
            try:
                self.subscription = await connection.request_object("PUT", path, _body(filters))
            except ApiError as error:
                if error.status != 404:
                    raise
                logger.info("= subscription gone on the server: creating it again")
                await self._create(connection)
                return
            self._applied = filters

    async def _create(self, connection: GatewayConnection) -> None:
        """POST a subscription (the caller holds the lock)."""
        filters = self._filters
        self.subscription = None  # its notifications may overtake the reply: accept them all
        self.subscription = await connection.request_object(
            "POST", SUBSCRIPTION_PATH, _body(filters)
        )
        self._applied = filters

    def _deliver(self, envelope: JsonObject) -> None:
        current, theirs = self.subscription_id, envelope.get("subscriptionId")
        if current is not None and theirs is not None and theirs != current:
            self.stats.stale += 1
            return
        if not self._inbox.put(envelope):
            self.stats.dropped = self._inbox.dropped
            logger.warning("x notification dropped: %d waiting", len(self._inbox))

    def _end(self, failure: BaseException | None) -> None:
        if self._ready is not None and not self._ready.done():
            if failure is not None:
                self._ready.set_exception(failure)
                failure = None  # start() raises it; the iterator just ends
            else:
                self._ready.cancel()
        self._inbox.end(failure)

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _body(filters: tuple[str, ...]) -> JsonObject:
    return {"eventFilters": list(filters), "deliveryMode": {"transportType": "WebSocket"}}
