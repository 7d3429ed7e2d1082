"""WebHook subscriptions (REST) and a receiver for their deliveries (§2.11, §3.5).

- :func:`create_webhook` / :class:`WebhookSubscription`: create, read, update, renew, delete a
  ``WebHook`` subscription through any :class:`~callwatch.client.api_session.ApiSession`.
- :class:`WebhookReceiver`: a Starlette app (:attr:`WebhookReceiver.app`, mountable in any ASGI
  server) that answers the creation handshake — a POST with a ``Validation-Token`` header and
  no body is answered 200 echoing that header, with an empty body, well inside RingCentral's
  3 s / 1 KB rule (pain point 7.9) — and queues each delivered envelope for ``async for``. With
  a ``verification_token``, deliveries whose ``Validation-Token`` differs are refused with 403
  and counted. :meth:`WebhookReceiver.start` serves the app with uvicorn on ``host:port``
  (127.0.0.1, any free port by default) without touching the process's signal handlers.

The receiver answers every delivery at once; envelopes wait in a bounded inbox (overflow is
dropped and counted) so a slow consumer never makes the server retry or blacklist the hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from callwatch.client.api_session import ApiSession
from callwatch.client.inbox import Inbox
from callwatch.client.wire import JsonObject, text_field

__all__ = ["ReceiverStats", "WebhookReceiver", "WebhookSubscription", "create_webhook"]

logger = logging.getLogger(__name__)

SUBSCRIPTION_PATH: Final = "/restapi/v1.0/subscription"
TOKEN_HEADER: Final = "Validation-Token"
MAX_DELIVERY_BYTES: Final = 1024 * 1024
"""Largest delivery body accepted (a notification is a few KB; rule 8)."""


async def create_webhook(
    rest: ApiSession,
    event_filters: Sequence[str],
    address: str,
    *,
    verification_token: str | None = None,
    expires_in: int | None = None,
) -> WebhookSubscription:
    """Create a WebHook subscription delivering to ``address``.

    The server validates ``address`` first (the ``Validation-Token`` handshake), so the
    receiver must already be listening.

    Raises:
        BadRequest: SUB-525 (the handshake failed), SUB-508 (invalid filters) …
        Forbidden: a filter the user may not subscribe to.
    """
    mode: JsonObject = {"transportType": "WebHook", "address": address}
    if verification_token is not None:
        mode["verificationToken"] = verification_token
    body: JsonObject = {"eventFilters": list(event_filters), "deliveryMode": mode}
    if expires_in is not None:
        body["expiresIn"] = expires_in
    return WebhookSubscription(rest, await rest.post(SUBSCRIPTION_PATH, body))


class WebhookSubscription:
    """A WebHook subscription on the server; :attr:`info` is the last SubscriptionInfo."""

    def __init__(self, rest: ApiSession, info: JsonObject) -> None:
        self._rest = rest
        self.info = info
        self.id = text_field(info, "id")

    @property
    def _path(self) -> str:
        return f"{SUBSCRIPTION_PATH}/{self.id}"

    async def read(self) -> JsonObject:
        """GET it again (``status`` becomes ``Blacklisted`` after repeated delivery failures)."""
        self.info = await self._rest.get(self._path)
        return self.info

    async def update(self, event_filters: Sequence[str], *, expires_in: int | None = None) -> None:
        """New event filters (and lifetime)."""
        body: JsonObject = {"eventFilters": list(event_filters)}
        if expires_in is not None:
            body["expiresIn"] = expires_in
        self.info = await self._rest.put(self._path, body)

    async def renew(self) -> JsonObject:
        """Extend it by its ``expiresIn`` from now."""
        self.info = await self._rest.post(f"{self._path}/renew")
        return self.info

    async def delete(self) -> None:
        """Cancel it: nothing more is delivered."""
        await self._rest.delete(self._path)


@dataclass(slots=True)
class ReceiverStats:
    handshakes: int = 0
    deliveries: int = 0
    rejected: int = 0
    """Requests refused: wrong verification token, not a JSON object, too large."""
    dropped: int = 0


class WebhookReceiver:
    """Receives WebHook deliveries (module docstring); ``async for envelope in receiver``."""

    def __init__(
        self,
        *,
        verification_token: str | None = None,
        path: str = "/webhook",
        host: str = "127.0.0.1",
        port: int = 0,
        max_pending: int = 10_000,
    ) -> None:
        self._token = verification_token
        self._path = path
        self._host, self._port = host, port
        self._inbox: Inbox[JsonObject] = Inbox(max_pending)
        self.stats = ReceiverStats()
        self.app = Starlette(routes=[Route(path, self._handle, methods=["POST"])])
        """The ASGI app, to mount in an existing server instead of :meth:`start`."""
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.url = ""
        """``http://host:port/path`` once started."""

    async def start(self) -> Self:
        """Listen on ``host:port`` (port 0: any free port; see :attr:`url`)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self._host, self._port))
        sock.listen(64)
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, ws="none"
        )
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="callwatch-webhook-receiver")
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not server.ready.is_set():
            ready.cancel()
            sock.close()
            await task  # raises what stopped uvicorn
            raise RuntimeError("the webhook receiver stopped during startup")
        self._server, self._task, self._socket = server, task, sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}{self._path}"
        return self

    async def close(self) -> None:
        """Stop listening; the iteration ends after what is queued."""
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is not None and task is not None:
            server.should_exit = True
            await task
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._inbox.end()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[JsonObject]:
        return self

    async def __anext__(self) -> JsonObject:
        """The next envelope ``{uuid, event, timestamp, subscriptionId, ownerId, body}``."""
        return await self._inbox.get()

    async def _handle(self, request: Request) -> Response:
        token = request.headers.get(TOKEN_HEADER)
        body = await _read_limited(request)
        if body is None:
            return self._reject(413, "delivery too large")
        if not body.strip():
            if token is None:
                return self._reject(400, "neither a handshake nor a delivery")
            self.stats.handshakes += 1
            return _answer(token)
        if self._token is not None and token != self._token:
            return self._reject(403, "wrong Validation-Token")
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            envelope = None
        if not isinstance(envelope, dict):
            return self._reject(400, "delivery is not a JSON object")
        self.stats.deliveries += 1
        if not self._inbox.put(envelope):
            self.stats.dropped = self._inbox.dropped
            logger.warning("x delivery dropped: %d waiting", len(self._inbox))
        return _answer(token)

    def _reject(self, status: int, reason: str) -> Response:
        self.stats.rejected += 1
        logger.info("x webhook request refused (%d): %s", status, reason)
        return Response(status_code=status)


def _answer(token: str | None) -> Response:
    headers = {} if token is None else {TOKEN_HEADER: token}
    return Response(status_code=200, headers=headers, media_type="application/json")


async def _read_limited(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_DELIVERY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that tells when it listens and leaves signal handling to the host app."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()
