"""Extension and account presence (ringcentral-api.md §1 rows 16–18, §2.8).

``detailedTelephonyState=true`` adds ``activeCalls``; ``sipData=true`` adds each call's
``sipData`` and only counts together with ``detailedTelephonyState``. Routes are ``async`` so
call control is asked on the event loop it lives on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from callwatch.api.deps import (
    AccountPresenceRead,
    BaseUrl,
    PresenceEdit,
    PresenceRead,
    RequestUri,
)
from callwatch.api.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, paginate
from callwatch.api.schemas.common import ERROR_RESPONSES, ErrorResponse
from callwatch.api.schemas.presence import (
    AccountPresence,
    PresenceInfo,
    PresenceUpdateRequest,
    presence_info,
)

router = APIRouter(
    prefix="/restapi/v1.0/account/{accountId}",
    tags=["Presence"],
    responses={
        **ERROR_RESPONSES,
        503: {"model": ErrorResponse, "description": "Presence unavailable (CMN-201)"},
    },
)

Detailed = Annotated[bool, Query(alias="detailedTelephonyState")]
SipData = Annotated[bool, Query(alias="sipData")]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(alias="perPage", ge=1, le=MAX_PER_PAGE)]


@router.get(
    "/presence",
    response_model=AccountPresence,
    response_model_exclude_none=True,
    operation_id="readAccountPresence",
)
async def read_account_presence(
    context: AccountPresenceRead,
    base_url: BaseUrl,
    uri: RequestUri,
    detailed: Detailed = False,
    sip_data: SipData = False,
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
) -> AccountPresence:
    """Presence of every extension of the account, paged."""
    states = context.calls.account_presence(context.caller)
    items, page_info = paginate(states, page=page, per_page=per_page, uri=uri)
    return AccountPresence(
        uri=uri,
        records=[
            presence_info(state, base_url, detailed=detailed, sip_data=detailed and sip_data)
            for state in items
        ],
        paging=page_info.paging,
        navigation=page_info.navigation,
    )


@router.get(
    "/extension/{extensionId}/presence",
    response_model=PresenceInfo,
    response_model_exclude_none=True,
    operation_id="readUserPresenceStatus",
)
async def read_presence(
    context: PresenceRead,
    base_url: BaseUrl,
    detailed: Detailed = False,
    sip_data: SipData = False,
) -> PresenceInfo:
    """One extension's presence."""
    state = context.calls.presence(context.caller, context.extension.id)
    return presence_info(state, base_url, detailed=detailed, sip_data=detailed and sip_data)


@router.put(
    "/extension/{extensionId}/presence",
    response_model=PresenceInfo,
    response_model_exclude_none=True,
    operation_id="updateUserPresenceStatus",
)
async def update_presence(
    body: PresenceUpdateRequest, context: PresenceEdit, base_url: BaseUrl
) -> PresenceInfo:
    """Set user status, DND, message and presence flags; answers the new presence."""
    state = context.calls.set_presence(context.caller, context.extension.id, body.to_update())
    return presence_info(state, base_url)
