"""The client side of the WebSocket gateway (WSG) protocol, sans I/O.

Theory of operation (ringcentral-api.md §4). Every frame is a JSON text array ``[meta]`` or
``[meta, body]``; ``meta.type`` is ``ConnectionDetails``, ``ClientRequest``,
``ServerNotification``, ``Heartbeat`` or ``Error``. :func:`parse_server_frame` turns any text
into exactly one frozen event and never raises: what it cannot use (not JSON, not an array,
``meta`` not an object, an unknown type, a binary frame) is an :class:`OddFrame` naming why —
the Python SDK's receive loop dies on such frames (ringcentral-python issue #101), ours counts
them.

:class:`GatewayState` is the per-subscription memory across connections:

- ``wsc``: the session context for recovery. The ConnectionDetails of each connection sets it
  (a failed recovery starts a new session at sequence 1); afterwards a frame's ``wsc`` replaces
  it only with a higher sequence — it may arrive on any frame type (extensible issue #9);
- recent notification ``uuid``s (bounded), so a notification replayed twice is delivered once;
- counters of what arrived.

Builders: :func:`client_request` (``[meta]`` or ``[meta, body]``, never a ``null`` body — WSG-808
in RingCentral.Net issue #57) and :func:`heartbeat`.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Final, TypeAlias

from callwatch.client.wire import JsonObject, JsonValue

__all__ = [
    "ConnectionDetails",
    "FrameCounters",
    "GatewayError",
    "GatewayState",
    "HeartbeatFrame",
    "NotificationFrame",
    "OddFrame",
    "RequestReply",
    "Wsc",
    "WsgEvent",
    "client_request",
    "heartbeat",
    "parse_server_frame",
]

MAX_FRAME_CHARS: Final = 4 * 1024 * 1024
"""Longest frame parsed; a notification is a few KB (rule 8)."""
RECENT_UUIDS: Final = 1024
"""Notification ids remembered for de-duplication (ten recovery buffers)."""
SUCCESSFUL: Final = "Successful"


@dataclass(frozen=True, slots=True)
class Wsc:
    """A session context token and the sequence it recovers from."""

    token: str
    sequence: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionDetails:
    """The first frame of a connection."""

    details: JsonObject
    """``recoveryTimeout``, ``idleTimeout``, ``absoluteTimeout`` … as the server announced."""
    wsc: Wsc | None
    recovery_state: str | None
    """``Successful``, ``Failed``, or None when the connection did not ask to recover."""
    recovery_error: str | None

    @property
    def recovered(self) -> bool:
        return self.recovery_state == SUCCESSFUL


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReply:
    """The answer to one ClientRequest."""

    message_id: str
    status: int
    headers: dict[str, str]
    body: JsonValue
    """None when the reply had no body (DELETE's 204)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationFrame:
    """A ServerNotification; ``envelope`` is ``{uuid, event, timestamp, subscriptionId, …}``."""

    envelope: JsonObject
    duplicate: bool = False
    """True when this ``uuid`` was already delivered (set by :class:`GatewayState`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatFrame:
    message_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayError:
    """An Error frame: a refused connection, a malformed request, an idle/absolute timeout."""

    message_id: str | None
    status: int
    error_code: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OddFrame:
    """A frame the protocol does not define; ``reason`` says what is wrong with it."""

    reason: str


WsgEvent: TypeAlias = (
    ConnectionDetails | RequestReply | NotificationFrame | HeartbeatFrame | GatewayError | OddFrame
)


def parse_server_frame(data: str | bytes) -> tuple[WsgEvent, Wsc | None]:
    """One frame from the gateway as an event, and the ``wsc`` its meta carried. Never raises."""
    if isinstance(data, bytes):
        return OddFrame(reason="binary frame"), None
    if len(data) > MAX_FRAME_CHARS:
        return OddFrame(reason=f"frame longer than {MAX_FRAME_CHARS} characters"), None
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return OddFrame(reason="not JSON"), None
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        return OddFrame(reason="not an array [meta] or [meta, body]"), None
    meta = value[0]
    if not isinstance(meta, dict):
        return OddFrame(reason="meta is not an object"), None
    body: JsonValue = value[1] if len(value) == 2 else None
    return _event(meta, body), _wsc(meta.get("wsc"))


def _event(meta: JsonObject, body: JsonValue) -> WsgEvent:
    kind = meta.get("type")
    message_id = _text(meta.get("messageId"))
    status = meta.get("status")
    code = status if isinstance(status, int) and not isinstance(status, bool) else None
    if kind == "ServerNotification":
        if not isinstance(body, dict):
            return OddFrame(reason="notification without an envelope object")
        return NotificationFrame(envelope=body)
    if kind == "ClientRequest":
        if message_id is None or code is None:
            return OddFrame(reason="reply without messageId or status")
        return RequestReply(
            message_id=message_id, status=code, headers=_headers(meta.get("headers")), body=body
        )
    if kind == "ConnectionDetails":
        details = body if isinstance(body, dict) else {}
        return ConnectionDetails(
            details=details,
            wsc=_wsc(meta.get("wsc")),
            recovery_state=_text(details.get("recoveryState")),
            recovery_error=_text(details.get("recoveryErrorCode")),
        )
    if kind == "Heartbeat":
        return HeartbeatFrame(message_id=message_id)
    if kind == "Error":
        error = body if isinstance(body, dict) else {}
        return GatewayError(
            message_id=message_id,
            status=code or 0,
            error_code=_text(error.get("errorCode")),
            message=_text(error.get("message")) or "gateway error",
        )
    return OddFrame(reason=f"unknown type {str(kind)[:40]!r}")


def client_request(message_id: str, method: str, path: str, body: JsonValue = None) -> str:
    """A ClientRequest frame (``[meta]`` when there is no body)."""
    meta: JsonObject = {
        "type": "ClientRequest",
        "messageId": message_id,
        "method": method,
        "path": path,
    }
    return json.dumps([meta] if body is None else [meta, body], separators=(",", ":"))


def heartbeat(message_id: str) -> str:
    """A Heartbeat frame (the server answers with the same messageId)."""
    return json.dumps([{"type": "Heartbeat", "messageId": message_id}], separators=(",", ":"))


@dataclass(slots=True)
class FrameCounters:
    """What a subscription received, by kind."""

    frames: int = 0
    notifications: int = 0
    duplicates: int = 0
    replies: int = 0
    heartbeats: int = 0
    errors: int = 0
    odd: int = 0


class GatewayState:
    """Recovery context, de-duplication and counters (see the module docstring)."""

    def __init__(self, *, recent: int = RECENT_UUIDS) -> None:
        self.wsc: Wsc | None = None
        """The context to recover with after losing the socket."""
        self.counters = FrameCounters()
        self._recent: deque[str] = deque(maxlen=recent)
        self._recent_set: set[str] = set()

    def receive(self, data: str | bytes) -> WsgEvent:
        """Parse one frame, update ``wsc``, counters and duplicates; the event."""
        event, wsc = parse_server_frame(data)
        self.counters.frames += 1
        if isinstance(event, ConnectionDetails):
            self.wsc = event.wsc or self.wsc
        elif wsc is not None and (self.wsc is None or wsc.sequence > self.wsc.sequence):
            self.wsc = wsc
        if isinstance(event, NotificationFrame):
            return self._notification(event)
        self._count(event)
        return event

    def forget_session(self) -> None:
        """Drop ``wsc`` (the server called it malformed, or the subscription was deleted)."""
        self.wsc = None

    def _notification(self, event: NotificationFrame) -> NotificationFrame:
        uuid = _text(event.envelope.get("uuid"))
        if uuid is not None and uuid in self._recent_set:
            self.counters.duplicates += 1
            return NotificationFrame(envelope=event.envelope, duplicate=True)
        if uuid is not None:
            if len(self._recent) == self._recent.maxlen:
                self._recent_set.discard(self._recent[0])
            self._recent.append(uuid)
            self._recent_set.add(uuid)
        self.counters.notifications += 1
        return event

    def _count(self, event: WsgEvent) -> None:
        counters = self.counters
        if isinstance(event, RequestReply):
            counters.replies += 1
        elif isinstance(event, HeartbeatFrame):
            counters.heartbeats += 1
        elif isinstance(event, GatewayError):
            counters.errors += 1
        elif isinstance(event, OddFrame):
            counters.odd += 1


def _wsc(value: object) -> Wsc | None:
    if not isinstance(value, dict):
        return None
    token, sequence = value.get("token"), value.get("sequence")
    if not isinstance(token, str) or not token:
        return None
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        return None
    return Wsc(token=token, sequence=sequence)


def _headers(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int)}


def _text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
