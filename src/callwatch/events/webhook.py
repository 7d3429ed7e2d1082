"""WebHook delivery: the creation handshake and one ordered, retrying worker per subscription.

Theory of operation (ringcentral-api.md §3.5).

Handshake (:class:`WebhookValidator`): before a WebHook subscription exists, POST an empty body
to its address with a random ``Validation-Token`` header; the receiver must answer 200 within
``webhook_validation_timeout`` (3 s), echo the token in a ``Validation-Token`` header, and keep
headers plus body within ``webhook_validation_max_bytes`` (1 KB). Anything else is
:class:`~callwatch.events.errors.WebhookRejected` (400 SUB-525; SUB-524 for a TLS failure) and
no subscription is created.

Delivery (:class:`WebhookWorker`): each subscription has one worker task and one bounded queue
(a :class:`~callwatch.events.bus.Subscription`, so overflow is dropped, counted and logged for
that subscription only). The worker POSTs one envelope at a time — notifications of a
subscription are delivered in order — with ``Content-Type: application/json; charset=UTF-8``,
``User-Agent: RingCentral-Webhook/8.3``, ``Accept: application/json`` and, when the subscription
has one, ``Validation-Token: <verification token>``. A non-2xx answer, a timeout or an I/O error
is a failed attempt; the same envelope is retried after ``webhook_retry_base`` seconds, doubling
up to ``webhook_retry_max``. ``webhook_blacklist_after`` consecutive failed attempts blacklist
the subscription (the worker reports it and ends; what is queued is discarded). A success resets
the count. Response bodies are read to at most :data:`MAX_RESPONSE_BYTES` and ignored.

Isolation: workers share one HTTP client whose pool has no global connection cap (each worker
holds at most one request), so a dead or slow receiver only delays its own subscription.

Address policy (:mod:`callwatch.events.egress`): the handshake and every delivery attempt first
check the address with the :class:`~callwatch.events.egress.AddressGuard` (scheme, and every
address the host resolves to), and the shared client connects only through
:class:`~callwatch.events.egress.GuardedBackend`, which checks again and connects to the address
it checked (no DNS-rebinding window). A refused address at creation is 400 CMN-101
``deliveryMode.address`` ":class:`~callwatch.events.errors.AddressNotAllowed`", and nothing is
sent to it. At delivery time (DNS changed, policy tightened) it is a failed attempt like any
other — one warning naming the refused address, the retry delay, blacklisting after
``webhook_blacklist_after`` in a row with reason "WebHook address is not allowed" — and nothing
is POSTed. Redirects are never followed (a 3xx is a non-2xx answer), so a receiver cannot bounce
a request to an address the policy refuses.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

import httpx

from callwatch.events.bus import Subscription, SubscriptionClosed, SubscriptionStats
from callwatch.events.egress import AddressDenied, AddressGuard, GuardedTransport, denial
from callwatch.events.errors import AddressNotAllowed, InvalidSubscriptionField, WebhookRejected
from callwatch.events.notifications import Notification
from callwatch.events.settings import EventsSettings
from callwatch.events.tasks import TaskSet
from callwatch.ids import IdGenerator
from callwatch.store.repo import SubscriptionRecord

logger = logging.getLogger(__name__)

MAX_ADDRESS_LENGTH: Final = 2048
MAX_RESPONSE_BYTES: Final = 64 * 1024
"""Bytes of a delivery response read before the connection is dropped (rule 8)."""
CONTENT_TYPE: Final = "application/json; charset=UTF-8"
TOKEN_LENGTH: Final = 32

BlacklistHandler = Callable[[str, str], Awaitable[None]]
"""Called as ``handler(subscription_id, reason)`` when a worker gives up."""


def check_address(address: str | None) -> str:
    """A WebHook address: an absolute ``http`` or ``https`` URL without credentials.

    Plain http is accepted (self-hosted receivers on a private network); RingCentral itself
    demands https.

    Raises:
        InvalidSubscriptionField: 400 CMN-101 ``deliveryMode.address``.
    """
    parameter = "deliveryMode.address"
    if not address or len(address) > MAX_ADDRESS_LENGTH or any(c.isspace() for c in address):
        raise InvalidSubscriptionField(parameter)
    try:
        url = httpx.URL(address)
    except (httpx.InvalidURL, ValueError):
        raise InvalidSubscriptionField(parameter) from None
    if url.scheme not in ("http", "https") or not url.host or url.userinfo:
        raise InvalidSubscriptionField(parameter)
    return address


def new_http_client(
    guard: AddressGuard, *, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """The shared client of the delivery workers and the validator.

    It connects only to addresses ``guard`` allows, never follows redirects and ignores proxy
    settings from the environment. ``verify``: TLS trust (tests pass their own CA).
    """
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
    transport = GuardedTransport(guard, limits=limits, verify=verify)
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


class WebhookValidator:
    """The ``Validation-Token`` handshake of a new WebHook address."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        guard: AddressGuard,
        ids: IdGenerator,
        settings: EventsSettings,
    ) -> None:
        self._http = http
        self._guard = guard
        self._ids = ids
        self._timeout = settings.webhook_validation_timeout
        self._max_bytes = settings.webhook_validation_max_bytes
        self._user_agent = settings.webhook_user_agent

    async def validate(self, address: str) -> None:
        """Check that ``address`` answers the handshake.

        Raises:
            AddressNotAllowed: the address policy refuses it (nothing was sent).
            WebhookRejected: no answer in time, wrong status, token not echoed, too large a
                response, or a connection/TLS failure.
        """
        token = self._ids.token(TOKEN_LENGTH)
        try:
            async with asyncio.timeout(self._timeout):
                await self._guard.check(httpx.URL(address))
                await self._exchange(address, token)
        except TimeoutError:
            raise WebhookRejected(f"no response within {self._timeout:g} s") from None
        except AddressDenied as exc:
            raise _refused(address, exc) from None
        except httpx.HTTPError as exc:
            denied = denial(exc)
            if denied is not None:
                raise _refused(address, denied) from None
            raise WebhookRejected(_describe(exc), tls=_is_tls_error(exc)) from None

    async def _exchange(self, address: str, token: str) -> None:
        headers = {
            "Validation-Token": token,
            "Content-Type": CONTENT_TYPE,
            "User-Agent": self._user_agent,
            "Accept": "application/json",
        }
        request = self._http.build_request(
            "POST", address, headers=headers, content=b"", timeout=self._timeout
        )
        response = await self._http.send(request, stream=True)
        try:
            size = sum(len(name) + len(value) + 4 for name, value in response.headers.raw)
            size += await _read_bounded(response, self._max_bytes + 1 - size)
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise WebhookRejected(f"HTTP status {response.status_code} instead of 200")
        if response.headers.get("validation-token") != token:
            raise WebhookRejected("the Validation-Token header was not echoed")
        if size > self._max_bytes:
            raise WebhookRejected(f"response larger than {self._max_bytes} bytes")


class WebhookWorker:
    """Delivers one subscription's notifications, in order (a :class:`NotificationSink`)."""

    def __init__(
        self,
        *,
        record: SubscriptionRecord,
        http: httpx.AsyncClient,
        guard: AddressGuard,
        settings: EventsSettings,
        on_blacklist: BlacklistHandler,
    ) -> None:
        self.subscription_id = record.id
        self._address = record.address or ""
        self._guard = guard
        self._headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": settings.webhook_user_agent,
            "Accept": "application/json",
        }
        if record.verification_token:
            self._headers["Validation-Token"] = record.verification_token
        self._http = http
        self._settings = settings
        self._on_blacklist = on_blacklist
        self._queue: Subscription[Notification] = Subscription(
            f"webhook:{record.id}", maxsize=settings.webhook_queue_size
        )
        self._failures = 0
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        """Notifications the receiver accepted."""
        self.failed_attempts = 0

    def deliver(self, notification: Notification) -> None:
        """Queue a notification; dropped and counted if the queue is full."""
        self._queue.offer(notification)

    def retire(self, subscription_id: str) -> None:
        """Stop: discard what is queued and cancel the worker task."""
        self._stop()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    def stats(self) -> SubscriptionStats:
        return self._queue.stats()

    async def run(self) -> None:
        """Deliver until retired or blacklisted."""
        async for notification in self._queue:
            body = notification.to_json().encode()
            if not await self._deliver(body):
                return

    async def _deliver(self, body: bytes) -> bool:
        while True:
            failure = await self._attempt(body)
            if failure is None:
                self._failures = 0
                self.sent += 1
                return True
            reason, detail = failure
            self._failures += 1
            self.failed_attempts += 1
            logger.warning(
                "! webhook %s: attempt failed (%d in a row): %s",
                self.subscription_id,
                self._failures,
                detail,
            )
            if self._failures >= self._settings.webhook_blacklist_after:
                self._stop()
                await self._on_blacklist(self.subscription_id, reason)
                return False
            await asyncio.sleep(self._backoff())

    async def _attempt(self, body: bytes) -> tuple[str, str] | None:
        """One checked POST; None on success, else the failure as ``(reason, detail)``.

        ``reason`` is what blacklistedData.reason says; ``detail`` is for the log (for a refused
        address it names the addresses, which the subscriber is not told).
        """
        try:
            await self._check()
            request = self._http.build_request(
                "POST",
                self._address,
                headers=self._headers,
                content=body,
                timeout=self._settings.webhook_timeout,
            )
            response = await self._http.send(request, stream=True)
            try:
                await _read_bounded(response, MAX_RESPONSE_BYTES)
            finally:
                await response.aclose()
        except AddressDenied as exc:
            return _denied(exc)
        except httpx.HTTPError as exc:
            denied = denial(exc)
            if denied is not None:
                return _denied(denied)
            reason = f"I/O operation is failed. Details: [{_describe(exc)}]"
            return reason, reason
        if 200 <= response.status_code < 300:
            return None
        reason = f"WebHook responded with HTTP status {response.status_code}"
        return reason, reason

    async def _check(self) -> None:
        """The address policy, applied to what the address resolves to now."""
        try:
            async with asyncio.timeout(self._settings.webhook_timeout):
                await self._guard.check(httpx.URL(self._address))
        except TimeoutError:
            raise httpx.ConnectTimeout("resolving the address timed out") from None

    def _stop(self) -> None:
        self._queue.close()
        discarded = 0
        try:
            while self._queue.get_nowait() is not None:
                discarded += 1
        except SubscriptionClosed:
            pass
        if discarded:
            logger.info(
                "x webhook %s: %d queued notifications discarded", self.subscription_id, discarded
            )

    def _backoff(self) -> float:
        delay = self._settings.webhook_retry_base * 2 ** (self._failures - 1)
        return float(min(delay, self._settings.webhook_retry_max))


class WebhookPool:
    """Starts and owns the delivery workers."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        guard: AddressGuard,
        settings: EventsSettings,
        tasks: TaskSet,
    ) -> None:
        self._http = http
        self._guard = guard
        self._settings = settings
        self._tasks = tasks
        self._workers: dict[str, WebhookWorker] = {}

    def start(self, record: SubscriptionRecord, *, on_blacklist: BlacklistHandler) -> WebhookWorker:
        """A running worker for ``record`` (which must have an address)."""
        worker = WebhookWorker(
            record=record,
            http=self._http,
            guard=self._guard,
            settings=self._settings,
            on_blacklist=on_blacklist,
        )
        self._workers[record.id] = worker
        worker.task = self._tasks.spawn(self._run(worker), name=f"webhook:{record.id}")
        return worker

    def stats(self) -> tuple[SubscriptionStats, ...]:
        """Queue counters of every live worker."""
        return tuple(worker.stats() for worker in self._workers.values())

    async def _run(self, worker: WebhookWorker) -> None:
        try:
            await worker.run()
        finally:
            if self._workers.get(worker.subscription_id) is worker:
                del self._workers[worker.subscription_id]


async def _read_bounded(response: httpx.Response, limit: int) -> int:
    """Read up to ``limit`` bytes of the body (more means: stop reading); return the count."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size >= limit:
            break
    return size


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "Read timed out" if isinstance(exc, httpx.ReadTimeout) else "Connect timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _refused(address: str, denied: AddressDenied) -> AddressNotAllowed:
    logger.info("x webhook address %s refused: %s", address, denied)
    return AddressNotAllowed(denied.public)


def _denied(denied: AddressDenied) -> tuple[str, str]:
    reason = f"WebHook {denied.public}"
    return reason, f"{reason}: {denied}"
