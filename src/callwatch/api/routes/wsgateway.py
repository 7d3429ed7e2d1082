"""The WebSocket gateway: ``POST /restapi/oauth/wstoken`` and the socket at ``/ws``
(ringcentral-api.md §2.3, §4).

``wstoken`` takes a bearer token (Auth rate-limit group, app permission ``WebSocket`` — or
``WebSocketsSubscriptions``, the name DOCS use) and ignores any body, so the Python SDK's empty
POST with a JSON content type works. It answers a single-use ``ws_access_token``, its
``expires_in`` and the gateway ``uri``: ``ws``/``wss`` + the request's base URL (or
``api.public_url``) + ``/ws``, never with a query string (clients append ``?access_token=``).

The socket takes ``?access_token=<ws token>`` and optionally ``&wsc=<token>`` to recover a
session. A refused connection gets one Error frame (``OAU-123``/``OAU-128``/``OAU-129`` for the
access token, ``WSG-400`` for a malformed wsc token, ``CMN-201`` when the node is full) and is
closed with 1008. Otherwise the first frame is ConnectionDetails, then any replayed
notifications, and :func:`~callwatch.events.wsconnection.serve_connection` runs the rest. This
module is the adapter: it moves frames between Starlette and the events package.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request, WebSocket
from starlette.websockets import WebSocketDisconnect

from callwatch.api.deps import ApiServices, Services, guard
from callwatch.api.errors import PermissionRequired
from callwatch.api.ratelimit import RateGroup
from callwatch.api.routes.subscriptions import notifications_of, owner_of
from callwatch.api.schemas.subscriptions import WsTokenResponse
from callwatch.api.wstunnel import SubscriptionTunnel
from callwatch.events import wsframes
from callwatch.events.errors import SubscriptionError
from callwatch.events.service import NotificationService
from callwatch.events.subscriptions import Owner
from callwatch.events.websocket import Connected, WsAuthError, connection_details_body
from callwatch.events.wsconnection import (
    ConnectionLimits,
    Outbox,
    TransportClosed,
    serve_connection,
)

GATEWAY_PATH: Final = "/ws"
POLICY_VIOLATION: Final = 1008
WEBSOCKET_PERMISSIONS: Final = ("WebSocket", "WebSocketsSubscriptions")

router = APIRouter(tags=["WebSocket"])


def _ws_owner(request: Request, services: Services) -> Owner:
    principal = guard(RateGroup.AUTH, None)(request, services)
    if not any(p in principal.scopes for p in WEBSOCKET_PERMISSIONS):
        raise PermissionRequired(WEBSOCKET_PERMISSIONS[0], app=True)
    notifications_of(services)
    return owner_of(principal, services)


WsOwner = Annotated[Owner, Depends(_ws_owner)]


@router.post("/restapi/oauth/wstoken", response_model=WsTokenResponse, operation_id="authWsToken")
async def ws_token(request: Request, owner: WsOwner, services: Services) -> WsTokenResponse:
    """A single-use token for one WebSocket connection, and where to connect."""
    token, expires_in = notifications_of(services).gateway.issue(owner)
    return WsTokenResponse(
        ws_access_token=token, uri=gateway_uri(request, services), expires_in=expires_in
    )


def gateway_uri(request: Request, services: ApiServices) -> str:
    """``ws(s)://host[:port][/prefix]/ws`` from ``api.public_url`` or the request."""
    base = (services.settings.api.public_url or str(request.base_url)).rstrip("/")
    scheme, _, rest = base.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{GATEWAY_PATH}"


@router.websocket(GATEWAY_PATH)
async def gateway(websocket: WebSocket) -> None:
    """One gateway connection."""
    services = websocket.app.state.services
    assert isinstance(services, ApiServices)
    await websocket.accept()
    transport = StarletteTransport(websocket)
    notifications = services.notifications
    if notifications is None:
        await _refuse(transport, "CMN-201", "Service Temporary Unavailable", 503, "-")
        return
    try:
        owner = notifications.gateway.redeem(websocket.query_params.get("access_token"))
        connected = notifications.gateway.connect(owner, websocket.query_params.get("wsc"))
    except WsAuthError as exc:
        await _refuse(transport, exc.code, exc.message, exc.status, notifications.message_id())
        return
    except SubscriptionError as exc:
        await _refuse(transport, exc.code, exc.message, exc.status, notifications.message_id())
        return
    await _serve(transport, notifications, services, connected)


async def _serve(
    transport: StarletteTransport,
    notifications: NotificationService,
    services: ApiServices,
    connected: Connected,
) -> None:
    settings = notifications.settings
    session = connected.session
    outbox = Outbox(
        f"ws:{session.key[:8]}",
        max_notifications=settings.ws_outbox_size,
        max_control=settings.ws_max_active_requests,
    )
    outbox.put_nowait(
        wsframes.connection_details(
            message_id=notifications.message_id(),
            request_id=notifications.message_id(),
            wsc=session.wsc(connected.details_sequence),
            details=connection_details_body(connected, settings),
        )
    )
    for frame in connected.replay:
        outbox.offer(frame)
    session.attach(outbox)
    tunnel = SubscriptionTunnel(
        notifications=notifications,
        session=session,
        clock=services.clock,
        request_ids=notifications.message_id,
    )
    limits = ConnectionLimits(
        idle_timeout=settings.ws_idle_timeout,
        absolute_timeout=settings.ws_absolute_timeout,
        message_ids=notifications.message_id,
    )
    try:
        await serve_connection(transport=transport, outbox=outbox, handler=tunnel, limits=limits)
    finally:
        notifications.gateway.disconnect(session, outbox)


async def _refuse(
    transport: StarletteTransport, code: str, message: str, status: int, message_id: str
) -> None:
    with contextlib.suppress(TransportClosed):
        frame = wsframes.error(message_id=message_id, status=status, code=code, message=message)
        await transport.send(frame)
    await transport.close(POLICY_VIOLATION)


class StarletteTransport:
    """A Starlette WebSocket as a :class:`~callwatch.events.wsconnection.FrameTransport`."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def receive(self) -> str | bytes:
        message = await self._websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise TransportClosed()
        text = message.get("text")
        if isinstance(text, str):
            return text
        data = message.get("bytes")
        return data if isinstance(data, bytes) else b""

    async def send(self, text: str) -> None:
        try:
            await self._websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosed() from exc

    async def close(self, code: int) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._websocket.close(code)
