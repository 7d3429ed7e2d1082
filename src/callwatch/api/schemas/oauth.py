"""Token endpoint response (ringcentral-api.md §2.1; SPEC TokenInfo) — snake_case on the wire."""

from __future__ import annotations

from pydantic import BaseModel

from callwatch.api.tokens import IssuedToken


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str
    session_id: str
    refresh_token: str
    refresh_token_expires_in: int
    owner_id: str
    """The extension id, as a string."""
    endpoint_id: str


def token_response(issued: IssuedToken) -> TokenResponse:
    return TokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes),
        session_id=issued.session_id,
        refresh_token=issued.refresh_token,
        refresh_token_expires_in=issued.refresh_token_expires_in,
        owner_id=str(issued.owner_id),
        endpoint_id=issued.endpoint_id,
    )
