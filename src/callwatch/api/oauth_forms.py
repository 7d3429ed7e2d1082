"""HTTP-level parsing of the token and revoke requests (ringcentral-api.md §2.1–2.2).

The body must be ``application/x-www-form-urlencoded`` (415 otherwise; the revoke endpoint also
accepts an empty body with ``token`` in the query). The client is taken from HTTP Basic
(``client_secret_basic``) or from the ``client_id``/``client_secret`` fields; Basic wins, and a
different ``client_id`` in the body is refused. A field sent twice is OAU-111. The request is
counted in the Auth rate-limit group under its client id (or the caller's IP without one).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request

from callwatch.api.deps import Services
from callwatch.api.errors import ApiError, OAuthError
from callwatch.api.oauth_service import RevokeRequest, TokenRequest
from callwatch.api.ratelimit import RateGroup, remember_decision

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 32


async def read_token_request(request: Request, services: Services) -> TokenRequest:
    """The parsed token request (a FastAPI dependency)."""
    fields = await _form_fields(request, allow_empty=False)
    client_id, client_secret = _client(request, fields)
    _count(request, services, client_id)
    return TokenRequest(
        grant_type=fields.get("grant_type"),
        client_id=client_id,
        client_secret=client_secret,
        username=fields.get("username"),
        password=fields.get("password"),
        extension=fields.get("extension"),
        assertion=fields.get("assertion"),
        refresh_token=fields.get("refresh_token"),
        scope=fields.get("scope"),
        endpoint_id=fields.get("endpoint_id"),
        access_token_ttl=fields.get("access_token_ttl"),
        refresh_token_ttl=fields.get("refresh_token_ttl"),
    )


async def read_revoke_request(request: Request, services: Services) -> RevokeRequest:
    """The parsed revoke request (a FastAPI dependency)."""
    fields = await _form_fields(request, allow_empty=True)
    client_id, client_secret = _client(request, fields)
    _count(request, services, client_id)
    token = fields.get("token") or request.query_params.get("token")
    return RevokeRequest(token=token, client_id=client_id, client_secret=client_secret)


TokenForm = Annotated[TokenRequest, Depends(read_token_request)]
RevokeForm = Annotated[RevokeRequest, Depends(read_revoke_request)]


async def _form_fields(request: Request, *, allow_empty: bool) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    _check_length(request)
    if media_type != FORM_MEDIA_TYPE:
        if allow_empty and not await request.body():
            return {}
        raise OAuthError(
            "invalid_request",
            "CMN-104",
            f"Unsupported Media Type: the body must be {FORM_MEDIA_TYPE}",
            status_code=415,
        )
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if name in fields:
            raise OAuthError(
                "invalid_request",
                "OAU-111",
                "Request parameter duplication detected",
                parameter_name=name,
            )
        if not isinstance(value, str):
            raise OAuthError("invalid_request", "CMN-104", "Files are not accepted here")
        fields[name] = value
    return fields


def _check_length(request: Request) -> None:
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise ApiError("Request body is too large", error_code="CMN-104", status_code=413)


def _client(request: Request, fields: dict[str, str]) -> tuple[str | None, str | None]:
    basic = _basic_credentials(request.headers.get("authorization"))
    if basic is None:
        return fields.get("client_id"), fields.get("client_secret")
    body_id = fields.get("client_id")
    if body_id is not None and body_id != basic[0]:
        raise OAuthError("invalid_client", "OAU-146", "Invalid client credentials", status_code=401)
    return basic


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError(
            "invalid_client", "OAU-123", "Invalid Authorization header value", status_code=401
        ) from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthError(
            "invalid_client", "OAU-123", "Invalid Authorization header value", status_code=401
        )
    return client_id, secret


def _count(request: Request, services: Services, client_id: str | None) -> None:
    client = request.client.host if request.client else "unknown"
    key = f"client:{client_id}" if client_id else f"ip:{client}"
    decision = services.limiter.hit(key, RateGroup.AUTH)
    remember_decision(request.scope, decision)
    decision.raise_if_refused()
