"""``POST /restapi/v1.0/client-info/sip-provision`` (ringcentral-api.md §1 row 9, §2.6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from callwatch.api.deps import BaseUrl, HeavyVoip, Services
from callwatch.api.schemas.common import ERROR_RESPONSES
from callwatch.api.schemas.sip_provision import (
    SipProvisionRequest,
    SipProvisionResponse,
    sip_provision_response,
)
from callwatch.api.sip_provisioning import ProvisionRequest

router = APIRouter(prefix="/restapi/v1.0/client-info", tags=["SIP"], responses=ERROR_RESPONSES)


@router.post(
    "/sip-provision",
    response_model=SipProvisionResponse,
    response_model_exclude_none=True,
    operation_id="createSIPRegistration",
)
def create_sip_registration(
    principal: HeavyVoip,
    services: Services,
    base_url: BaseUrl,
    body: Annotated[SipProvisionRequest | None, Body()] = None,
) -> SipProvisionResponse:
    """SIP credentials of the caller's softphone device, one entry per requested transport."""
    result = services.sip_provisioning.provision(principal, _provision_request(body))
    online = services.device_status.is_online(result.device.id)
    return sip_provision_response(result, sip=services.sip, online=online, base_url=base_url)


def _provision_request(body: SipProvisionRequest | None) -> ProvisionRequest:
    if body is None:
        return ProvisionRequest()
    device = body.device
    return ProvisionRequest(
        device_id=device.id if device else None,
        computer_name=device.computer_name if device else None,
        serial=device.serial if device else None,
        transports=tuple(info.transport.value for info in body.sip_info),
    )
