"""``/restapi/oauth/token`` and ``/restapi/oauth/revoke`` (ringcentral-api.md §2.1–2.2)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from callwatch.api.deps import Services
from callwatch.api.oauth_forms import RevokeForm, TokenForm
from callwatch.api.schemas.common import OAuthErrorResponse
from callwatch.api.schemas.oauth import TokenResponse, token_response

router = APIRouter(
    prefix="/restapi/oauth",
    tags=["OAuth"],
    responses={status: {"model": OAuthErrorResponse} for status in (400, 401, 403, 415, 429)},
)


@router.post("/token", response_model=TokenResponse, operation_id="getToken")
def get_token(form: TokenForm, services: Services, response: Response) -> TokenResponse:
    """Issue a token pair: password, JWT bearer or refresh-token grant (form-encoded)."""
    issued = services.oauth.token(form)
    response.headers["Cache-Control"] = "no-store"
    return token_response(issued)


@router.post("/revoke", response_class=Response, operation_id="revokeToken")
def revoke_token(form: RevokeForm, services: Services) -> Response:
    """Revoke the whole session of an access or refresh token; 200 with an empty body."""
    services.oauth.revoke(form)
    return Response(status_code=200)
