"""OAuth access/refresh token pairs: issue, authenticate, rotate, revoke.

Tokens are opaque random strings (``cwa_…`` access, ``cwr_…`` refresh) stored only as SHA-256
digests (:class:`~callwatch.store.repo.TokenRecord`). Expiry uses the injected clock's wall time
(POSIX seconds) so tokens survive restarts. A refresh rotates the pair: the old pair is revoked
and the new one keeps the session id; revoking any token of a session revokes the whole session
(ringcentral-api.md §2.1–2.2).

Bearer failures map to RingCentral codes: missing header OAU-123, other scheme OAU-134,
malformed token OAU-149, unknown or revoked token OAU-129, expired token OAU-128.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callwatch.api.errors import AuthenticationError
from callwatch.clock import Clock
from callwatch.ids import IdGenerator
from callwatch.store.passwords import sha256_hex
from callwatch.store.repo import Extension, TokenRecord, TokenRepo

ACCESS_PREFIX = "cwa_"
REFRESH_PREFIX = "cwr_"
_TOKEN_CHARS = 48
_TOKEN_SHAPE = re.compile(r"^cw[ar]_[A-Za-z0-9]{48}$")
_SESSION_DIGITS = 13
_ENDPOINT_CHARS = 22


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who a valid bearer token speaks for."""

    account_id: int
    extension_id: int
    client_id: str
    session_id: str
    scopes: tuple[str, ...]

    @property
    def rate_key(self) -> str:
        """The (user, app) key rate limits count under."""
        return f"{self.extension_id}:{self.client_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenLifetimes:
    """Requested lifetimes in seconds, already clamped by policy."""

    access: int
    refresh: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """A new token pair, as the token endpoint reports it."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_token_expires_in: int
    scopes: tuple[str, ...]
    session_id: str
    owner_id: int
    endpoint_id: str


class RefreshRejected(Exception):
    """A refresh token cannot be used; ``str()`` is the client-facing reason."""


class TokenIssuer:
    """Creates and checks token pairs over a :class:`~callwatch.store.repo.TokenRepo`."""

    def __init__(self, *, tokens: TokenRepo, clock: Clock, ids: IdGenerator) -> None:
        self._tokens = tokens
        self._clock = clock
        self._ids = ids

    def issue(
        self,
        *,
        extension: Extension,
        client_id: str,
        scopes: tuple[str, ...],
        lifetimes: TokenLifetimes,
        endpoint_id: str | None = None,
    ) -> IssuedToken:
        """Issue a pair opening a new session (and drop pairs whose refresh token expired)."""
        self._tokens.purge_expired(self._now())
        issued, record = self._new_pair(
            extension_id=extension.id,
            account_id=extension.account_id,
            client_id=client_id,
            scopes=scopes,
            lifetimes=lifetimes,
            session_id=self._ids.digits(_SESSION_DIGITS),
            endpoint_id=endpoint_id or self._ids.token(_ENDPOINT_CHARS),
        )
        self._tokens.create(record)
        return issued

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: bearer <token>`` header value.

        Raises:
            AuthenticationError: missing, malformed, unknown, revoked or expired token.
        """
        token = _bearer_token(authorization)
        record = self._tokens.find_by_access_hash(sha256_hex(token))
        if record is None:
            raise AuthenticationError("OAU-129", "Access token corrupted")
        if record.revoked:
            raise AuthenticationError("OAU-129", "Access token has been revoked")
        if record.access_expires_at <= self._now():
            raise AuthenticationError("OAU-128", "Access token expired")
        return Principal(
            account_id=record.account_id,
            extension_id=record.extension_id,
            client_id=record.client_id,
            session_id=record.session_id,
            scopes=record.scopes,
        )

    def refreshable(self, refresh_token: str, *, client_id: str) -> TokenRecord:
        """The live pair ``refresh_token`` belongs to.

        Raises:
            RefreshRejected: unknown, other client's, revoked or expired refresh token.
        """
        record = self._tokens.find_by_refresh_hash(sha256_hex(refresh_token))
        if record is None or record.client_id != client_id:
            raise RefreshRejected("Invalid token")
        if record.revoked:
            raise RefreshRejected("Token is revoked")
        if record.refresh_expires_at <= self._now():
            raise RefreshRejected("Token is expired")
        return record

    def rotate(self, old: TokenRecord, *, lifetimes: TokenLifetimes) -> IssuedToken:
        """Replace ``old`` by a new pair of the same session.

        Raises:
            RefreshRejected: ``old`` was revoked meanwhile (a concurrent refresh won).
        """
        issued, record = self._new_pair(
            extension_id=old.extension_id,
            account_id=old.account_id,
            client_id=old.client_id,
            scopes=old.scopes,
            lifetimes=lifetimes,
            session_id=old.session_id,
            endpoint_id=old.endpoint_id,
        )
        if not self._tokens.rotate(old, record):
            raise RefreshRejected("Token is revoked")
        return issued

    def revoke(self, token: str, *, client_id: str | None) -> bool:
        """Revoke the session of an access or refresh token; False if nothing was revoked."""
        digest = sha256_hex(token)
        record = self._tokens.find_by_access_hash(digest) or self._tokens.find_by_refresh_hash(
            digest
        )
        if record is None or (client_id is not None and record.client_id != client_id):
            return False
        return self._tokens.revoke_session(record.session_id) > 0

    def _new_pair(
        self,
        *,
        extension_id: int,
        account_id: int,
        client_id: str,
        scopes: tuple[str, ...],
        lifetimes: TokenLifetimes,
        session_id: str,
        endpoint_id: str,
    ) -> tuple[IssuedToken, TokenRecord]:
        access = ACCESS_PREFIX + self._ids.token(_TOKEN_CHARS)
        refresh = REFRESH_PREFIX + self._ids.token(_TOKEN_CHARS)
        now = self._now()
        record = TokenRecord(
            access_hash=sha256_hex(access),
            refresh_hash=sha256_hex(refresh),
            extension_id=extension_id,
            account_id=account_id,
            client_id=client_id,
            scopes=scopes,
            session_id=session_id,
            endpoint_id=endpoint_id,
            access_expires_at=now + lifetimes.access,
            refresh_expires_at=now + lifetimes.refresh,
        )
        issued = IssuedToken(
            access_token=access,
            refresh_token=refresh,
            expires_in=lifetimes.access,
            refresh_token_expires_in=lifetimes.refresh,
            scopes=scopes,
            session_id=session_id,
            owner_id=extension_id,
            endpoint_id=endpoint_id,
        )
        return issued, record

    def _now(self) -> float:
        return self._clock.utcnow().timestamp()


def _bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise AuthenticationError("OAU-123", "Authorization header is not specified")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError("OAU-134", "Invalid Authorization header: bearer expected")
    token = token.strip()
    if not _TOKEN_SHAPE.match(token):
        raise AuthenticationError("OAU-149", "Invalid token")
    return token
