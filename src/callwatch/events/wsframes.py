"""WebSocket gateway (WSG) frames: parse what clients send, build what the server sends (pure).

Theory of operation (ringcentral-api.md §4). Every frame is a JSON text holding an array
``[meta]`` or ``[meta, body]``; ``meta`` is an object with ``type`` (ConnectionDetails,
ClientRequest, ServerNotification, Heartbeat, Error), ``messageId``, and for server frames
``status``, ``headers`` and optionally ``wsc{token, sequence}``.

Clients send ``ClientRequest`` (``method``, ``path``, optional ``headers``/``query``, optional
body) and ``Heartbeat``. :func:`parse_client_frame` returns one of those or raises
:class:`FrameError` — never another exception, whatever the text (hypothesis-tested). A body of
JSON ``null`` counts as no body (RingCentral answered WSG-808 to that; being lenient costs
nothing and RingCentral.Net once sent it).

Builders always return a JSON array whose first element is an object and always give ``meta``
a ``headers`` object: the Python SDK 0.9.2 dies on any other frame (ringcentral-api.md §5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from callwatch.events.notifications import JsonObject, JsonValue, Notification

MAX_FRAME_CHARS: Final = 65_536
"""Longest client frame parsed (the WebSocket server enforces its own byte limit too)."""
MAX_MESSAGE_ID: Final = 128
MAX_PATH: Final = 2048
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
MALFORMED: Final = "WSG-808"
"""RingCentral's code for a malformed frame (RingCentral.Net issue #57)."""
_SEPARATORS: Final = (",", ":")


class FrameError(ValueError):
    """A client frame callwatch cannot act on."""

    def __init__(self, message: str, *, message_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_id = message_id
        """The frame's messageId when it could be read (echoed in the Error frame)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRequest:
    """A REST request tunnelled over the socket."""

    message_id: str
    method: str
    path: str
    """The path without a query string."""
    body: JsonValue = None
    """The parsed JSON body; None when absent (or ``null``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    message_id: str


ClientFrame = ClientRequest | Heartbeat


@dataclass(frozen=True, slots=True, kw_only=True)
class Wsc:
    """The session context a frame carries for recovery."""

    token: str
    sequence: int

    def to_json(self) -> JsonObject:
        return {"token": self.token, "sequence": self.sequence}


def parse_client_frame(text: str) -> ClientFrame:
    """Parse one text frame from a client.

    Raises:
        FrameError: not a JSON array ``[meta]`` / ``[meta, body]`` of a known client type.
    """
    if len(text) > MAX_FRAME_CHARS:
        raise FrameError(f"Message is larger than {MAX_FRAME_CHARS} characters")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("Message is not valid JSON") from None
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        raise FrameError("Message must be a JSON array [meta] or [meta, body]")
    meta = value[0]
    if not isinstance(meta, dict):
        raise FrameError("Message meta must be a JSON object")
    message_id = _message_id(meta)
    kind = meta.get("type")
    if kind == "Heartbeat":
        return Heartbeat(message_id=message_id)
    if kind != "ClientRequest":
        raise FrameError(f"Unsupported message type {kind!r}", message_id=message_id)
    body = value[1] if len(value) == 2 else None
    return ClientRequest(
        message_id=message_id,
        method=_method(meta, message_id),
        path=_path(meta, message_id),
        body=body,
    )


def _message_id(meta: dict[str, object]) -> str:
    message_id = meta.get("messageId")
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_MESSAGE_ID:
        raise FrameError(f"messageId must be a string of 1 to {MAX_MESSAGE_ID} characters")
    return message_id


def _method(meta: dict[str, object], message_id: str) -> str:
    method = meta.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise FrameError("method must be GET, POST, PUT, PATCH or DELETE", message_id=message_id)
    return method.upper()


def _path(meta: dict[str, object], message_id: str) -> str:
    path = meta.get("path")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > MAX_PATH:
        raise FrameError("path must be an absolute path", message_id=message_id)
    return path.partition("?")[0]


# -- server frames -------------------------------------------------------------------------


def encode(meta: JsonObject, *body: object) -> str:
    """``[meta]`` or ``[meta, body]`` as compact JSON."""
    return json.dumps([meta, *body], separators=_SEPARATORS)


def connection_details(*, message_id: str, request_id: str, wsc: Wsc, details: JsonObject) -> str:
    """The first frame of every connection."""
    meta: JsonObject = {
        "type": "ConnectionDetails",
        "messageId": message_id,
        "status": 200,
        "headers": {"RCRequestId": request_id},
        "wsc": wsc.to_json(),
    }
    return encode(meta, details)


def client_reply(
    *, message_id: str, status: int, headers: dict[str, str], body: object = None
) -> str:
    """The reply to a ClientRequest (``[meta]`` alone when there is no body)."""
    meta: JsonObject = {
        "type": "ClientRequest",
        "messageId": message_id,
        "status": status,
        "headers": {**headers},
    }
    return encode(meta) if body is None else encode(meta, body)


def server_notification(*, wsc: Wsc, notification: Notification) -> str:
    """A notification; ``messageId`` is the envelope's ``uuid``."""
    uuid = notification.uuid
    meta: JsonObject = {
        "type": "ServerNotification",
        "messageId": uuid,
        "status": 200,
        "headers": {"RCRequestId": uuid, "Content-Type": "application/json"},
        "wsc": wsc.to_json(),
    }
    return f"[{json.dumps(meta, separators=_SEPARATORS)},{notification.to_json()}]"


def heartbeat(message_id: str) -> str:
    """The answer to a client Heartbeat (same messageId)."""
    return encode({"type": "Heartbeat", "messageId": message_id, "status": 200, "headers": {}})


def error(*, message_id: str, status: int, code: str, message: str) -> str:
    """An Error frame: ``[meta, {errorCode, message}]``."""
    meta: JsonObject = {"type": "Error", "messageId": message_id, "status": status, "headers": {}}
    return encode(meta, {"errorCode": code, "message": message})
