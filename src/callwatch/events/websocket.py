"""WebSocket gateway sessions: single-use access tokens, numbered notifications, recovery.

Theory of operation (ringcentral-api.md §4).

Tokens. ``POST /restapi/oauth/wstoken`` calls :meth:`WsGateway.issue`: a random
``ws_access_token`` valid for ``ws_token_ttl`` seconds and usable once
(:meth:`WsGateway.redeem`). At most ``ws_max_pending_tokens`` unused tokens are kept.

Sessions. A connection opens a :class:`WsSession` (or recovers one). A session holds at most one
subscription (a second create replaces the first — the caller retires the old one) and numbers
what it sends: the ConnectionDetails of a new session is sequence 1, every notification takes
the next number. Each numbered frame carries ``wsc{token, sequence}`` where the token is
``<session key>.<sequence>``: the client keeps the token of the highest sequence it saw and,
after losing the socket, reconnects with ``&wsc=<token>``. The last ``ws_recovery_buffer_size``
notification frames are kept (also while no socket is attached), so recovery replays exactly
those after the client's sequence, in order.

Recovery (:meth:`WsGateway.connect` with a wsc token), within ``ws_recovery_timeout`` of the
socket loss:

- token not of the form ``<key>.<sequence>``, or a sequence the session never reached: the
  connection is refused with an Error frame WSG-400 "Malformed WebSocket session context token"
  (as RingCentral does);
- unknown session or window passed: ``recoveryState:"Failed"``, ``recoveryErrorCode``
  ``WSG-1001`` (our code), and a fresh session;
- another OAuth session: Failed ``WSG-1003`` (observed on RingCentral);
- a session without subscription: Failed ``WSG-1005`` (observed on RingCentral);
- more missed notifications than the buffer holds: Failed ``WSG-1002`` (our code);
- otherwise ``recoveryState:"Successful"``: the session, its subscription and the replay.

A failed recovery ends the old session (and its subscription). A session whose socket is gone
ends when the window passes, or at once if it has no subscription.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from callwatch.clock import Clock
from callwatch.events.errors import Unavailable
from callwatch.events.notifications import JsonObject, Notification, format_time
from callwatch.events.settings import EventsSettings
from callwatch.events.subscriptions import Owner
from callwatch.events.wsframes import Wsc, server_notification
from callwatch.ids import IdGenerator

logger = logging.getLogger(__name__)

TOKEN_CHARS: Final = 48
SESSION_KEY_CHARS: Final = 32
_WSC = re.compile(r"([A-Za-z0-9]{32})\.([0-9]{1,18})")
SUCCESSFUL: Final = "Successful"
FAILED: Final = "Failed"


class WsAuthError(Exception):
    """A connection is refused: sent as an Error frame, then the socket closes."""

    def __init__(self, code: str, message: str, *, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class FrameSink(Protocol):
    """The outgoing queue of the socket attached to a session."""

    def offer(self, frame: str) -> bool:
        """Queue a notification frame; False if it was dropped (queue full or closed)."""
        ...

    def close(self) -> None:
        """Close the socket after what is queued (the session moved to another socket)."""
        ...


class WsSession:
    """One client's notification stream; a :class:`~callwatch.events.registry.NotificationSink`."""

    def __init__(self, *, key: str, owner: Owner, created: datetime, buffer_size: int) -> None:
        self.key = key
        self.owner = owner
        self.created = created
        self.sequence = 0
        self.subscription_id: str | None = None
        self._buffer: deque[tuple[int, str]] = deque(maxlen=buffer_size)
        self._socket: FrameSink | None = None
        self.expiry: asyncio.TimerHandle | None = None

    def token(self, sequence: int) -> str:
        """The wsc token that recovers this session from ``sequence``."""
        return f"{self.key}.{sequence}"

    def wsc(self, sequence: int) -> Wsc:
        return Wsc(token=self.token(sequence), sequence=sequence)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def deliver(self, notification: Notification) -> None:
        """Number, frame and buffer a notification; send it if a socket is attached."""
        sequence = self.next_sequence()
        frame = server_notification(wsc=self.wsc(sequence), notification=notification)
        self._buffer.append((sequence, frame))
        if self._socket is not None:
            self._socket.offer(frame)

    def retire(self, subscription_id: str) -> None:
        if self.subscription_id == subscription_id:
            self.subscription_id = None

    def replay_after(self, sequence: int) -> list[str] | None:
        """Buffered frames numbered after ``sequence``; None if some were already evicted."""
        missed = [frame for number, frame in self._buffer if number > sequence]
        first = self._buffer[0][0] if self._buffer else self.sequence + 1
        if missed and first > sequence + 1:
            return None
        if not missed and self.sequence > sequence:
            return None  # notifications after `sequence` exist but none is buffered
        return missed

    @property
    def attached(self) -> bool:
        return self._socket is not None

    def attach(self, socket: FrameSink) -> None:
        """Send to ``socket`` from now on (closing a previous one)."""
        if self._socket is not None and self._socket is not socket:
            self._socket.close()
        self._socket = socket

    def detach(self, socket: FrameSink) -> bool:
        """Stop sending to ``socket``; False if another socket had taken over."""
        if self._socket is not socket:
            return False
        self._socket = None
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """The outcome of :meth:`WsGateway.connect`."""

    session: WsSession
    details_sequence: int
    """The ``wsc.sequence`` of the ConnectionDetails frame."""
    recovery_state: str | None = None
    recovery_error: str | None = None
    replay: tuple[str, ...] = ()


@dataclass(slots=True)
class _Pending:
    owner: Owner
    expires_at: float


class WsGateway:
    """Tokens and sessions of the WebSocket gateway."""

    def __init__(
        self,
        *,
        clock: Clock,
        ids: IdGenerator,
        settings: EventsSettings,
        on_session_end: Callable[[WsSession], None],
    ) -> None:
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._on_session_end = on_session_end
        self._tokens: dict[str, _Pending] = {}
        self._sessions: dict[str, WsSession] = {}

    def issue(self, owner: Owner) -> tuple[str, int]:
        """A new single-use ``ws_access_token`` and its lifetime in seconds.

        Raises:
            Unavailable: too many unused tokens are pending (503 CMN-201).
        """
        now = self._clock.monotonic()
        if len(self._tokens) >= self._settings.ws_max_pending_tokens:
            self._tokens = {t: p for t, p in self._tokens.items() if p.expires_at > now}
            if len(self._tokens) >= self._settings.ws_max_pending_tokens:
                raise Unavailable("too many pending WebSocket tokens")
        token = self._ids.token(TOKEN_CHARS)
        ttl = self._settings.ws_token_ttl
        self._tokens[token] = _Pending(owner, now + ttl)
        return token, ttl

    def redeem(self, token: str | None) -> Owner:
        """Use a token once.

        Raises:
            WsAuthError: missing (OAU-123), unknown or used (OAU-129), expired (OAU-128).
        """
        if not token:
            raise WsAuthError("OAU-123", "Parameter [access_token] is not specified", status=401)
        pending = self._tokens.pop(token, None)
        if pending is None:
            raise WsAuthError("OAU-129", "Access token corrupted or already used", status=401)
        if pending.expires_at <= self._clock.monotonic():
            raise WsAuthError("OAU-128", "Access token expired", status=401)
        return pending.owner

    def connect(self, owner: Owner, wsc: str | None) -> Connected:
        """Open a new session, or recover the one ``wsc`` names.

        Raises:
            WsAuthError: malformed wsc token (WSG-400).
            Unavailable: the node holds ``ws_max_sessions`` sessions.
        """
        if wsc is None:
            return self._fresh(owner)
        match = _WSC.fullmatch(wsc)
        if match is None:
            raise _malformed()
        key, sequence = match.group(1), int(match.group(2))
        session = self._sessions.get(key)
        if session is None:
            return self._fresh(owner, failure="WSG-1001")
        if sequence > session.sequence:
            raise _malformed()
        failure = self._recovery_failure(session, owner)
        if failure == "WSG-1003":
            return self._fresh(owner, failure=failure)  # not theirs: leave it alone
        replay = None if failure else session.replay_after(sequence)
        if replay is None:
            self._end(session)
            return self._fresh(owner, failure=failure or "WSG-1002")
        session.owner = owner
        self._cancel_expiry(session)
        return Connected(
            session=session,
            details_sequence=sequence,
            recovery_state=SUCCESSFUL,
            replay=tuple(replay),
        )

    def disconnect(self, session: WsSession, socket: FrameSink) -> None:
        """The socket of ``session`` is gone: keep the session for the recovery window."""
        if not session.detach(socket) or self._sessions.get(session.key) is not session:
            return
        if session.subscription_id is None:
            self._end(session)
            return
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(self._settings.ws_recovery_timeout, self._end, session)

    def close(self) -> None:
        """End every session (server shutdown)."""
        for session in list(self._sessions.values()):
            self._end(session)
        self._tokens.clear()

    def __len__(self) -> int:
        return len(self._sessions)

    def _fresh(self, owner: Owner, *, failure: str | None = None) -> Connected:
        if len(self._sessions) >= self._settings.ws_max_sessions:
            raise Unavailable("too many WebSocket sessions")
        session = WsSession(
            key=self._ids.token(SESSION_KEY_CHARS),
            owner=owner,
            created=self._clock.utcnow(),
            buffer_size=self._settings.ws_recovery_buffer_size,
        )
        self._sessions[session.key] = session
        return Connected(
            session=session,
            details_sequence=session.next_sequence(),
            recovery_state=None if failure is None else FAILED,
            recovery_error=failure,
        )

    def _recovery_failure(self, session: WsSession, owner: Owner) -> str | None:
        theirs = session.owner
        if (theirs.session_id, theirs.extension_id, theirs.client_id) != (
            owner.session_id,
            owner.extension_id,
            owner.client_id,
        ):
            return "WSG-1003"
        if session.subscription_id is None:
            return "WSG-1005"
        return None

    def _end(self, session: WsSession) -> None:
        self._cancel_expiry(session)
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
            self._on_session_end(session)

    @staticmethod
    def _cancel_expiry(session: WsSession) -> None:
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None


def connection_details_body(connected: Connected, settings: EventsSettings) -> JsonObject:
    """The body of the ConnectionDetails frame."""
    body: JsonObject = {
        "creationTime": format_time(connected.session.created),
        "maxConnectionsPerSession": settings.ws_max_connections_per_session,
        "recoveryBufferSize": settings.ws_recovery_buffer_size,
        "recoveryTimeout": int(settings.ws_recovery_timeout),
        "idleTimeout": int(settings.ws_idle_timeout),
        "absoluteTimeout": int(settings.ws_absolute_timeout),
        "maxActiveRequests": settings.ws_max_active_requests,
    }
    if connected.recovery_state is not None:
        body["recoveryState"] = connected.recovery_state
    if connected.recovery_error is not None:
        body["recoveryErrorCode"] = connected.recovery_error
    return body


def _malformed() -> WsAuthError:
    return WsAuthError("WSG-400", "Malformed WebSocket session context token", status=400)
