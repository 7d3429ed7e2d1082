"""An authenticated HTTP session with a RingCentral-compatible server (the base of the REST client).

Theory of operation
-------------------
One :class:`ApiSession` holds one ``httpx.AsyncClient`` and one OAuth session.

Authentication (ringcentral-api.md §2.1–2.3): :meth:`ApiSession.login_jwt` /
:meth:`ApiSession.login_password` post a form to ``/restapi/oauth/token`` with HTTP Basic client
authentication. Before each request the token is refreshed if it is due
(:meth:`~callwatch.client.auth.Token.due`, on the injected clock); concurrent requests share one
refresh (a lock, then a re-check). A 401 ``OAU-128`` (expired — e.g. the server's clock ran
ahead of ours) triggers one refresh and one retry. The server rotates the pair on refresh; the
OAuth session stays the same, which WebSocket recovery relies on. If the refresh token itself is
refused and the login was by JWT, the session logs in again with the JWT (a new OAuth session);
otherwise :class:`~callwatch.client.api_errors.AuthError` is raised.

Errors (§2.12): every non-2xx answer is raised as a typed
:class:`~callwatch.client.api_errors.ApiError`. A 429 waits ``Retry-After`` seconds and retries,
at most ``RetryPolicy.max_attempts`` attempts in all; a ``Retry-After`` above
``RetryPolicy.max_wait`` is raised at once — retrying early would restart RingCentral's penalty.
Time and sleeping are injected (``clock``, ``sleep``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self, TypeAlias

import httpx

from callwatch.client.api_errors import (
    ApiError,
    AuthError,
    ConnectionFailed,
    NotLoggedIn,
    RateLimited,
    ResponseError,
    api_error,
)
from callwatch.client.auth import (
    DEFAULT_REFRESH_MARGIN,
    Token,
    WsToken,
    jwt_grant,
    password_grant,
    refresh_grant,
)
from callwatch.client.wire import JsonObject, JsonValue, decode_object, object_field, objects_field
from callwatch.clock import Clock, SystemClock

__all__ = ["ApiSession", "Params", "RetryPolicy", "Sleep"]

logger = logging.getLogger(__name__)

TOKEN_PATH: Final = "/restapi/oauth/token"
REVOKE_PATH: Final = "/restapi/oauth/revoke"
WSTOKEN_PATH: Final = "/restapi/oauth/wstoken"
USER_AGENT: Final = "callwatch-client/0.1 (python)"
MAX_PAGES: Final = 1000
"""Pages followed by a collection read before giving up (rule 8)."""

Params: TypeAlias = Mapping[str, str | int | bool | Sequence[str]]
Sleep: TypeAlias = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """What the client does with 429 Too Many Requests."""

    max_attempts: int = 3
    """Attempts per request in all (1 = never retry)."""
    max_wait: float = 60.0
    """A longer ``Retry-After`` is raised as :class:`RateLimited` without waiting."""
    default_wait: float = 60.0
    """Wait when a 429 carries no ``Retry-After`` (JSSDK's default)."""

    def wait_for(self, error: RateLimited, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to raise ``error``."""
        wait = self.default_wait if error.retry_after is None else error.retry_after
        if attempt >= self.max_attempts or wait > self.max_wait:
            return None
        return wait


class ApiSession:
    """An authenticated session (see the module docstring).

    Args:
        server_url: ``https://platform.ringcentral.com`` or ``http://127.0.0.1:8080``.
        client_id, client_secret: the app's credentials (no secret: a public app).
        clock: monotonic time for token deadlines.
        sleep: how 429 waits are slept (tests advance a fake clock instead).
        retry: the 429 policy.
        refresh_margin: refresh this many seconds before expiry (at most a tenth of the TTL).
        timeout: per-request timeout in seconds.
        transport: an httpx transport (tests: ``httpx.MockTransport``).
    """

    def __init__(
        self,
        server_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._retry = retry or RetryPolicy()
        self._margin = refresh_margin
        self._http = httpx.AsyncClient(
            base_url=self.server_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "X-User-Agent": USER_AGENT},
        )
        self._token: Token | None = None
        self._jwt: str | None = None
        self._auth_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- authentication -------------------------------------------------------------------------

    @property
    def token(self) -> Token | None:
        """The current token pair (None before login and after revoke)."""
        return self._token

    @property
    def owner_id(self) -> str | None:
        """The logged-in user's extension id."""
        return None if self._token is None else self._token.owner_id

    async def login_jwt(self, jwt: str) -> Token:
        """Log in with a JWT credential; later refresh failures re-login with it.

        Raises:
            AuthError: the server refused the credential or the app.
        """
        token = await self._grant(jwt_grant(jwt))
        self._jwt = jwt
        return token

    async def login_password(
        self, username: str, password: str, extension: str | None = None
    ) -> Token:
        """Log in with a user's number (or e-mail), password and optional extension number.

        Raises:
            AuthError: wrong credentials, or the password grant is not allowed for the app.
        """
        self._jwt = None
        return await self._grant(password_grant(username, password, extension))

    async def refresh(self) -> Token:
        """Refresh the token pair now (the server rotates both tokens).

        Raises:
            NotLoggedIn: no token yet.
            AuthError: the refresh was refused and no JWT is available to log in again.
        """
        async with self._auth_lock:
            return await self._refresh_locked(self._require_token())

    async def revoke(self) -> None:
        """Revoke the OAuth session (both tokens); the client is logged out even if it fails."""
        token, self._token, self._jwt = self._token, None, None
        if token is None:
            return
        form = {"token": token.refresh_token or token.access_token}
        await self._send_with_retries(lambda: self._post_form(REVOKE_PATH, form), oauth=True)

    async def close(self) -> None:
        """Close the HTTP connections (the session is not revoked: see :meth:`revoke`)."""
        await self._http.aclose()

    async def ws_token(self) -> WsToken:
        """A single-use WebSocket gateway token and the gateway URL (§2.3)."""
        return WsToken.parse(await self.post(WSTOKEN_PATH))

    # -- generic requests -----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: JsonValue = None,
    ) -> JsonValue:
        """Send an authenticated request; the parsed JSON answer (None for an empty body).

        ``path`` is absolute (``/restapi/v1.0/account/~``) or relative to ``/restapi/v1.0``.

        Raises:
            ApiError: a subclass per status (see :mod:`callwatch.client.api_errors`).
            NotLoggedIn, ConnectionFailed, ResponseError.
        """
        url = path if path.startswith("/") else f"/restapi/v1.0/{path}"
        token = await self._current_token()
        try:
            response = await self._send_with_retries(
                lambda: self._call(method, url, token, params, json), oauth=False
            )
        except ApiError as error:
            if not error.token_expired:
                raise
            token = await self._after_rejection(token)
            response = await self._send_with_retries(
                lambda: self._call(method, url, token, params, json), oauth=False
            )
        return _decode(response)

    async def get(self, path: str, params: Params | None = None) -> JsonObject:
        """GET ``path``; the JSON object answered."""
        return _as_object(await self.request("GET", path, params=params))

    async def post(
        self, path: str, body: JsonValue = None, params: Params | None = None
    ) -> JsonObject:
        """POST ``body`` as JSON; the JSON object answered (``{}`` for an empty answer)."""
        return _as_object(await self.request("POST", path, params=params, json=body))

    async def put(
        self, path: str, body: JsonValue = None, params: Params | None = None
    ) -> JsonObject:
        """PUT ``body`` as JSON; the JSON object answered."""
        return _as_object(await self.request("PUT", path, params=params, json=body))

    async def patch(
        self, path: str, body: JsonValue = None, params: Params | None = None
    ) -> JsonObject:
        """PATCH ``body`` as JSON; the JSON object answered."""
        return _as_object(await self.request("PATCH", path, params=params, json=body))

    async def delete(self, path: str, params: Params | None = None) -> JsonObject | None:
        """DELETE ``path``; None for the usual 204."""
        answer = await self.request("DELETE", path, params=params)
        return None if answer is None else _as_object(answer)

    async def records(self, path: str, params: Params | None = None) -> list[JsonObject]:
        """Every ``records[]`` item of a paged collection, following ``navigation.nextPage``."""
        found: list[JsonObject] = []
        for page in range(1, MAX_PAGES + 1):
            body = await self.get(path, {**(params or {}), "page": page})
            found.extend(objects_field(body, "records"))
            if not object_field(body, "navigation").get("nextPage"):
                return found
        raise ResponseError(f"{path} has more than {MAX_PAGES} pages")

    # -- internals ------------------------------------------------------------------------------

    def _require_token(self) -> Token:
        if self._token is None:
            raise NotLoggedIn("log in first (login_jwt or login_password)")
        return self._token

    async def _current_token(self) -> Token:
        token = self._require_token()
        if not token.due(self._clock.monotonic()):
            return token
        async with self._auth_lock:
            token = self._require_token()
            if token.due(self._clock.monotonic()):
                token = await self._refresh_locked(token)
            return token

    async def _after_rejection(self, used: Token) -> Token:
        """A fresh token after the server called ``used`` expired (refresh once, shared)."""
        async with self._auth_lock:
            current = self._require_token()
            if current is not used:
                return current  # another request refreshed meanwhile
            return await self._refresh_locked(current)

    async def _refresh_locked(self, token: Token) -> Token:
        if token.refresh_token is not None and token.refreshable(self._clock.monotonic()):
            try:
                return await self._grant(refresh_grant(token.refresh_token))
            except AuthError:
                if self._jwt is None:
                    self._token = None
                    raise
                logger.info("= refresh refused; logging in again with the JWT")
        elif self._jwt is None:
            self._token = None
            raise AuthError(401, "OAU-211", "The refresh token has expired: log in again")
        return await self._grant(jwt_grant(self._jwt))

    async def _grant(self, form: dict[str, str]) -> Token:
        response = await self._send_with_retries(
            lambda: self._post_form(TOKEN_PATH, form), oauth=True
        )
        body = decode_object(response.content, what="token response")
        self._token = Token.parse(body, now=self._clock.monotonic(), margin=self._margin)
        logger.debug("= token for extension %s, %ss", self._token.owner_id, self._token.expires_in)
        return self._token

    async def _send_with_retries(
        self, send: Callable[[], Awaitable[httpx.Response]], *, oauth: bool
    ) -> httpx.Response:
        for attempt in range(1, self._retry.max_attempts + 1):
            response = await self._transmit(send)
            if response.is_success:
                return response
            error = api_error(
                response.status_code,
                response.content,
                reason=response.reason_phrase,
                retry_after=response.headers.get("Retry-After"),
                oauth=oauth,
            )
            wait = self._retry.wait_for(error, attempt) if isinstance(error, RateLimited) else None
            if wait is None:
                raise error
            logger.info("x 429 on %s; retrying in %ss", response.request.url.path, wait)
            await self._sleep(wait)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    @staticmethod
    async def _transmit(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        try:
            return await send()
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc

    async def _post_form(self, path: str, form: dict[str, str]) -> httpx.Response:
        if self._client_secret is None:
            return await self._http.post(path, data={**form, "client_id": self._client_id})
        auth = httpx.BasicAuth(self._client_id, self._client_secret)
        return await self._http.post(path, data=form, auth=auth)

    async def _call(
        self, method: str, url: str, token: Token, params: Params | None, body: JsonValue
    ) -> httpx.Response:
        headers = {"Authorization": token.authorization, "Accept": "application/json"}
        logger.debug("> %s %s", method, url)
        return await self._http.request(
            method, url, params=dict(params or {}), json=body, headers=headers
        )


def _decode(response: httpx.Response) -> JsonValue:
    if not response.content:
        return None
    return decode_object(response.content, what=f"answer of {response.request.url.path}")


def _as_object(value: JsonValue) -> JsonObject:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResponseError("the answer is not a JSON object")
    return value
