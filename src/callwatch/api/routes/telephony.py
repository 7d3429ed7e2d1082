"""Telephony sessions and parties: read, hold, unhold, mute, remove, drop
(ringcentral-api.md §1 rows 20–26, §2.9). Light group, CallControl permission.

Routes are ``async`` so call control is asked on the event loop it lives on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from callwatch.api.deps import CallControlAccess
from callwatch.api.errors import ResourceNotFound
from callwatch.api.schemas.common import ERROR_RESPONSES, ErrorResponse
from callwatch.api.schemas.telephony import (
    CallParty,
    CallSession,
    HoldRequest,
    PartyUpdateRequest,
    call_party,
    call_session,
)
from callwatch.pbx.sessions import Party, TelephonySession

MAX_ID_LENGTH = 128
"""Longest session or party id accepted in a path (ours are 34 and 37 characters)."""

router = APIRouter(
    prefix="/restapi/v1.0/account/{accountId}/telephony/sessions",
    tags=["Call Control"],
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorResponse, "description": "The party's state does not allow it"},
        503: {"model": ErrorResponse, "description": "Call control unavailable (CMN-201)"},
    },
)

SessionId = Annotated[str, Path(alias="telephonySessionId", max_length=MAX_ID_LENGTH)]
PartyId = Annotated[str, Path(alias="partyId", max_length=MAX_ID_LENGTH)]


@router.get(
    "/{telephonySessionId}",
    response_model=CallSession,
    response_model_exclude_none=True,
    operation_id="readCallSessionStatus",
)
async def read_session(session_id: SessionId, context: CallControlAccess) -> CallSession:
    """A live call and all its parties."""
    return call_session(context.calls.get_session(context.caller, session_id))


@router.delete("/{telephonySessionId}", status_code=204, operation_id="deleteCallSession")
async def drop_session(session_id: SessionId, context: CallControlAccess) -> Response:
    """Hang up every party of the call."""
    await context.calls.drop_session(context.caller, session_id)
    return Response(status_code=204)


@router.get(
    "/{telephonySessionId}/parties/{partyId}",
    response_model=CallParty,
    response_model_exclude_none=True,
    operation_id="readCallPartyStatus",
)
async def read_party(
    session_id: SessionId, party_id: PartyId, context: CallControlAccess
) -> CallParty:
    """One party of a live call."""
    session = context.calls.get_session(context.caller, session_id)
    return call_party(_party(session, party_id))


@router.patch(
    "/{telephonySessionId}/parties/{partyId}",
    response_model=CallParty,
    response_model_exclude_none=True,
    operation_id="updateCallParty",
)
async def update_party(
    session_id: SessionId, party_id: PartyId, body: PartyUpdateRequest, context: CallControlAccess
) -> CallParty:
    """Mute/unmute a party or change its stand-alone flag."""
    flags = body.flags()
    party = await context.calls.update_party(
        context.caller, session_id, party_id, muted=flags.muted, stand_alone=flags.stand_alone
    )
    return call_party(party)


@router.delete(
    "/{telephonySessionId}/parties/{partyId}", status_code=204, operation_id="deleteCallParty"
)
async def delete_party(
    session_id: SessionId, party_id: PartyId, context: CallControlAccess
) -> Response:
    """Remove a party; for a supervisor party this stops supervising."""
    await context.calls.delete_party(context.caller, session_id, party_id)
    return Response(status_code=204)


@router.post(
    "/{telephonySessionId}/parties/{partyId}/hold",
    response_model=CallParty,
    response_model_exclude_none=True,
    operation_id="holdCallParty",
)
async def hold(
    session_id: SessionId,
    party_id: PartyId,
    context: CallControlAccess,
    body: HoldRequest | None = None,
) -> CallParty:
    """Put a party on hold (``proto`` is accepted; callwatch always re-INVITEs)."""
    return call_party(await context.calls.hold(context.caller, session_id, party_id))


@router.post(
    "/{telephonySessionId}/parties/{partyId}/unhold",
    response_model=CallParty,
    response_model_exclude_none=True,
    operation_id="unholdCallParty",
)
async def unhold(
    session_id: SessionId,
    party_id: PartyId,
    context: CallControlAccess,
    body: HoldRequest | None = None,
) -> CallParty:
    """Take a party off hold."""
    return call_party(await context.calls.unhold(context.caller, session_id, party_id))


def _party(session: TelephonySession, party_id: str) -> Party:
    try:
        return session.party(party_id)
    except KeyError:
        raise ResourceNotFound("partyId") from None
