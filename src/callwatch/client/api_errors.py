"""Errors of the REST and notification clients, built from RingCentral's error body.

Every non-2xx answer of a RingCentral-compatible server — over HTTP or tunnelled over the
WebSocket gateway — becomes an :class:`ApiError` subclass chosen by status, carrying the body's
``errorCode``, ``message``, ``errors[]`` and ``parameterName`` (ringcentral-api.md §2.12: the
spec shape ``{errors:[…]}``, the legacy shape with the first error repeated at top level, and
the OAuth shape ``{error, error_description, errors:[…]}`` are all understood)::

    ClientError
    ├── ApiError               any non-2xx answer (status, error_code, message, errors, …)
    │   ├── BadRequest         400
    │   ├── AuthError          401; also the token endpoint's 4xx refusals (OAU-140 is a 400)
    │   ├── Forbidden          403 (alias PermissionError_)
    │   ├── NotFound           404
    │   ├── Conflict           409
    │   ├── RateLimited        429, with ``retry_after`` seconds
    │   └── ServerError        5xx
    ├── NotLoggedIn            a call that needs a token before any login
    ├── ResponseError          a 2xx answer that is not what the API promises (not JSON, …)
    └── ConnectionFailed       the server could not be reached (the httpx error is the cause)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ApiError",
    "AuthError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "ErrorDetail",
    "Forbidden",
    "NotFound",
    "NotLoggedIn",
    "PermissionError_",
    "RateLimited",
    "ResponseError",
    "ServerError",
    "api_error",
    "parse_retry_after",
]

MAX_ERROR_BODY: Final = 16_384
"""Characters of an error body kept on the exception (rule 8)."""
EXPIRED_TOKEN: Final = "OAU-128"


class ClientError(Exception):
    """Base class of everything the callwatch clients raise on purpose."""


class NotLoggedIn(ClientError):
    """The client has no token: call ``login_jwt`` or ``login_password`` first."""


class ResponseError(ClientError):
    """A successful answer whose content breaks the API contract."""


class ConnectionFailed(ClientError):
    """The server could not be reached or the connection broke mid-request."""


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One item of ``errors[]``."""

    error_code: str | None
    message: str | None
    parameter_name: str | None = None
    parameter_value: str | None = None


class ApiError(ClientError):
    """A non-2xx answer with RingCentral's error body."""

    def __init__(
        self,
        status: int,
        error_code: str | None,
        message: str,
        errors: tuple[ErrorDetail, ...] = (),
        parameter_name: str | None = None,
        *,
        body: str = "",
        oauth_error: str | None = None,
    ) -> None:
        label = f"HTTP {status}" + (f" {error_code}" if error_code else "")
        super().__init__(f"{label}: {message}")
        self.status = status
        """The HTTP status (or the ``status`` of a WebSocket reply)."""
        self.error_code = error_code
        """``errorCode`` (top level, else the first of ``errors[]``), e.g. ``CMN-102``."""
        self.message = message
        """``message`` (else ``error_description``, else the first error's message)."""
        self.errors = errors
        """Every item of ``errors[]``."""
        self.parameter_name = parameter_name
        """``parameterName`` (top level, else the first error's)."""
        self.body = body
        """The raw body (truncated to :data:`MAX_ERROR_BODY` characters)."""
        self.oauth_error = oauth_error
        """RFC 6749 ``error`` of the token endpoint (``invalid_grant`` …), else None."""

    @property
    def token_expired(self) -> bool:
        """True for 401 "access token expired" (OAU-128), the one 401 a refresh cures."""
        return self.status == 401 and (
            self.error_code == EXPIRED_TOKEN or "expired" in self.message.lower()
        )


class BadRequest(ApiError):
    """400: a parameter or body the server refused."""


class AuthError(ApiError):
    """401, or any refusal of the token endpoint (bad credentials are a 400 there)."""


class Forbidden(ApiError):
    """403: missing app/user permission, or not allowed to act on that resource."""


PermissionError_ = Forbidden


class NotFound(ApiError):
    """404: unknown resource (``parameter_name`` names which)."""


class Conflict(ApiError):
    """409: the resource's state refuses the operation."""


class RateLimited(ApiError):
    """429: the rate-limit group is exhausted; wait ``retry_after`` seconds."""

    def __init__(
        self,
        status: int,
        error_code: str | None,
        message: str,
        errors: tuple[ErrorDetail, ...] = (),
        parameter_name: str | None = None,
        *,
        body: str = "",
        oauth_error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            status, error_code, message, errors, parameter_name, body=body, oauth_error=oauth_error
        )
        self.retry_after = retry_after
        """``Retry-After`` in seconds, None when the server did not send one."""


class ServerError(ApiError):
    """5xx."""


_BY_STATUS: Final[Mapping[int, type[ApiError]]] = {
    400: BadRequest,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def api_error(
    status: int,
    body: str | bytes | object,
    *,
    reason: str = "",
    retry_after: str | None = None,
    oauth: bool = False,
) -> ApiError:
    """The typed error of a non-2xx answer.

    Args:
        status: HTTP status (or a WebSocket reply's ``status``).
        body: the raw body text, or an already parsed JSON value (WebSocket replies).
        reason: the reason phrase, used when the body has no message.
        retry_after: the ``Retry-After`` header value, if any.
        oauth: the answer came from the token endpoint (:class:`AuthError` below 500).
    """
    raw, parsed = _raw_and_parsed(body)
    top = parsed if isinstance(parsed, dict) else {}
    details = _details(top.get("errors"))
    first = details[0] if details else ErrorDetail(None, None)
    code = _text(top.get("errorCode")) or first.error_code
    message = (
        _text(top.get("message"))
        or _text(top.get("error_description"))
        or first.message
        or _text(top.get("description"))
        or reason
        or f"HTTP {status}"
    )
    parameter = _text(top.get("parameterName")) or first.parameter_name
    oauth_error = _text(top.get("error"))
    if status == 429:  # even at the token endpoint: the caller must wait, not re-login
        wait = parse_retry_after(retry_after)
        return RateLimited(
            status,
            code,
            message,
            details,
            parameter,
            body=raw,
            oauth_error=oauth_error,
            retry_after=wait,
        )
    cls = AuthError if oauth and status < 500 else _class_of(status)
    return cls(status, code, message, details, parameter, body=raw, oauth_error=oauth_error)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (the delta-seconds form; an HTTP date is not used by RC)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _class_of(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


def _raw_and_parsed(body: str | bytes | object) -> tuple[str, object]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return body[:MAX_ERROR_BODY], json.loads(body)
        except (ValueError, RecursionError):
            return body[:MAX_ERROR_BODY], None
    try:
        return json.dumps(body)[:MAX_ERROR_BODY], body
    except (TypeError, ValueError, RecursionError):
        return repr(body)[:MAX_ERROR_BODY], None


def _details(value: object) -> tuple[ErrorDetail, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        ErrorDetail(
            error_code=_text(item.get("errorCode")),
            message=_text(item.get("message")),
            parameter_name=_text(item.get("parameterName")),
            parameter_value=_text(item.get("parameterValue")),
        )
        for item in value
        if isinstance(item, dict)
    )


def _text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
