"""Call supervision: ``supervise`` at session level and per party (ringcentral-api.md §2.10).

Both answer 201 with the new supervisor party once the supervisor's device has answered. The
body may use any spelling in use (``supervisorDeviceId`` or legacy ``deviceId``;
``agentExtensionNumber``, ``agentExtensionId`` or legacy ``extensionNumber``), which
:func:`callwatch.pbx.supervision.parse_request` normalises; every refusal is a RingCentral error
body (codes in the README's API notes) and sends nothing to the device.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from callwatch.api.deps import CallControlAccess
from callwatch.api.schemas.common import ERROR_RESPONSES, ApiModel, ErrorResponse
from callwatch.api.schemas.telephony import CallParty, call_party
from callwatch.pbx.sessions import Party

router = APIRouter(
    prefix="/restapi/v1.0/account/{accountId}/telephony/sessions",
    tags=["Call Control"],
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorResponse, "description": "Refused by the call's or device's state"},
        503: {"model": ErrorResponse, "description": "Call control unavailable (CMN-201)"},
    },
)

SessionId = Annotated[str, Path(alias="telephonySessionId", max_length=128)]
PartyId = Annotated[str, Path(alias="partyId", max_length=128)]
SuperviseBody = Annotated[
    dict[str, Any],
    Body(
        examples=[
            {
                "mode": "Listen",
                "supervisorDeviceId": "60727004",
                "agentExtensionNumber": "108",
                "autoAnswer": True,
            }
        ],
    ),
]


class Owner(ApiModel):
    """``owner`` (deprecated by RingCentral, still sent)."""

    account_id: str
    extension_id: str | None = None


class SupervisorParty(CallParty):
    """SuperviseCallSessionResponse / PartySuperviseResponse."""

    owner: Owner


def _response(party: Party) -> SupervisorParty:
    base = call_party(party)
    owner = Owner(account_id=base.account_id, extension_id=base.extension_id)
    return SupervisorParty(**base.model_dump(), owner=owner)


@router.post(
    "/{telephonySessionId}/supervise",
    status_code=201,
    response_model=SupervisorParty,
    response_model_exclude_none=True,
    operation_id="superviseCallSession",
)
async def supervise_session(
    session_id: SessionId, body: SuperviseBody, context: CallControlAccess
) -> SupervisorParty:
    """Listen to a whole call: one INVITE to the supervisor's device, one stream per party."""
    party = await context.calls.supervise(context.caller, session_id, body)
    return _response(party)


@router.post(
    "/{telephonySessionId}/parties/{partyId}/supervise",
    status_code=201,
    response_model=SupervisorParty,
    response_model_exclude_none=True,
    operation_id="superviseCallParty",
)
async def supervise_party(
    session_id: SessionId, party_id: PartyId, body: SuperviseBody, context: CallControlAccess
) -> SupervisorParty:
    """Listen to one party (dual channel: call once per party, one INVITE each)."""
    party = await context.calls.supervise(context.caller, session_id, body, party_id=party_id)
    return _response(party)
