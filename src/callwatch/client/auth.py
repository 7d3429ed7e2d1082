"""OAuth 2.0 pieces of the REST client (pure): grants as form bodies, and the token pair.

The token endpoint (ringcentral-api.md §2.1) takes ``application/x-www-form-urlencoded`` bodies
and HTTP Basic client authentication. A :class:`Token` keeps the pair with deadlines on the
client's monotonic clock, computed when the answer arrived from ``expires_in`` and
``refresh_token_expires_in`` — never from the server's wall clock, so clock skew between the
client and the server cannot make a token look fresh when it is not.

Refresh policy: a token is due for refresh :func:`refresh_lead` seconds before it expires —
``min(margin, expires_in / 10)``, so a one-hour token is refreshed a minute early and a
one-minute token six seconds early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from callwatch.client.wire import JsonObject, int_field, optional_text, text_field

__all__ = [
    "JWT_BEARER",
    "Token",
    "WsToken",
    "jwt_grant",
    "password_grant",
    "refresh_grant",
    "refresh_lead",
]

JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_REFRESH_MARGIN: Final = 60.0
"""Seconds before expiry a long-lived access token is refreshed."""


def jwt_grant(jwt: str) -> dict[str, str]:
    """The form of a JWT ("personal credential") login."""
    return {"grant_type": JWT_BEARER, "assertion": jwt}


def password_grant(username: str, password: str, extension: str | None = None) -> dict[str, str]:
    """The form of a password login; ``extension`` is the short number (PYSDK's form)."""
    form = {"grant_type": "password", "username": username, "password": password}
    if extension:
        form["extension"] = extension
    return form


def refresh_grant(refresh_token: str) -> dict[str, str]:
    """The form of a refresh (the server rotates the pair)."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


def refresh_lead(expires_in: float, margin: float = DEFAULT_REFRESH_MARGIN) -> float:
    """Seconds before expiry at which a token of lifetime ``expires_in`` is refreshed."""
    return max(0.0, min(margin, expires_in / 10))


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """An access/refresh token pair with deadlines on the client's monotonic clock."""

    access_token: str
    token_type: str
    """``bearer`` as RingCentral sends it."""
    expires_in: int
    """Lifetime of the access token in seconds, as granted."""
    expires_at: float
    """Monotonic time at which the access token expires."""
    refresh_at: float
    """Monotonic time from which the client refreshes before use."""
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    """Monotonic time at which the refresh token expires (None: unknown)."""
    scope: tuple[str, ...] = ()
    """App permissions granted (``CallControl``, ``WebSocket`` …)."""
    owner_id: str | None = None
    """The extension id of the logged-in user."""
    session_id: str | None = None
    """The OAuth session; a refresh keeps it (WebSocket recovery needs the same one)."""

    @classmethod
    def parse(
        cls, body: JsonObject, *, now: float, margin: float = DEFAULT_REFRESH_MARGIN
    ) -> Token:
        """The pair of a token endpoint answer received at monotonic time ``now``.

        Raises:
            ResponseError: ``access_token`` or ``expires_in`` missing or mistyped.
        """
        expires_in = int_field(body, "expires_in")
        refresh_in = body.get("refresh_token_expires_in")
        scope = optional_text(body, "scope") or ""
        return cls(
            access_token=text_field(body, "access_token"),
            token_type=optional_text(body, "token_type") or "bearer",
            expires_in=expires_in,
            expires_at=now + expires_in,
            refresh_at=now + expires_in - refresh_lead(expires_in, margin),
            refresh_token=optional_text(body, "refresh_token"),
            refresh_expires_at=(
                None if refresh_in is None else now + int_field(body, "refresh_token_expires_in")
            ),
            scope=tuple(scope.split()),
            owner_id=optional_text(body, "owner_id"),
            session_id=optional_text(body, "session_id"),
        )

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value (``Bearer``: RFC 6750's spelling)."""
        return f"Bearer {self.access_token}"

    def due(self, now: float) -> bool:
        """True when the access token should be refreshed before its next use."""
        return now >= self.refresh_at

    def refreshable(self, now: float) -> bool:
        """True when a refresh token exists and has not expired."""
        if self.refresh_token is None:
            return False
        return self.refresh_expires_at is None or now < self.refresh_expires_at


@dataclass(frozen=True, slots=True, kw_only=True)
class WsToken:
    """``POST /restapi/oauth/wstoken`` (ringcentral-api.md §2.3): a single-use socket token."""

    uri: str
    """The gateway URL (``wss://…/ws``), without a query string."""
    token: str
    expires_in: int

    @classmethod
    def parse(cls, body: JsonObject) -> WsToken:
        """Raises ResponseError when a field is missing."""
        return cls(
            uri=text_field(body, "uri"),
            token=text_field(body, "ws_access_token"),
            expires_in=int_field(body, "expires_in", 0),
        )

    def url(self, wsc: str | None = None) -> str:
        """``uri?access_token=…`` (and ``&wsc=…`` to recover a session), as the SDKs build it."""
        url = f"{self.uri}?access_token={quote(self.token, safe='')}"
        return url if wsc is None else f"{url}&wsc={quote(wsc, safe='')}"
