"""``POST /restapi/v1.0/client-info/sip-provision`` (ringcentral-api.md §2.6)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from callwatch.api.schemas.common import ApiModel
from callwatch.api.schemas.devices import DeviceResource, device_resource, hostport
from callwatch.api.sip_provisioning import Provisioned

if TYPE_CHECKING:
    from callwatch.api.deps import SipListeners

SIP_ERROR_CODES = ["408", "502", "503", "504"]
POLLING_INTERVAL = 3600
MAX_TRANSPORTS = 8


class SipTransport(StrEnum):
    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"
    WSS = "WSS"


class SipInfoRequest(ApiModel):
    transport: SipTransport

    @field_validator("transport", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ProvisionDeviceRequest(ApiModel):
    id: str | None = None
    computer_name: str | None = Field(default=None, max_length=256)
    serial: str | None = Field(default=None, max_length=256)
    app_external_id: str | None = None


class SipProvisionRequest(ApiModel):
    """Every field is optional; known callers send ``{"sipInfo":[{"transport":"WSS"}]}``."""

    device: ProvisionDeviceRequest | None = None
    sip_info: list[SipInfoRequest] = Field(default_factory=list, max_length=MAX_TRANSPORTS)
    soft_phone_line_reassignment: str | None = None


class SipInfoResponse(ApiModel):
    username: str
    password: str
    authorization_types: list[str]
    authorization_id: str
    domain: str
    outbound_proxy: str
    transport: str


class SipFlags(ApiModel):
    voip_feature_enabled: bool = True
    voip_country_blocked: bool = False
    outbound_calls_enabled: bool = True


class SipProvisionResponse(ApiModel):
    device: DeviceResource
    sip_info: list[SipInfoResponse]
    sip_flags: SipFlags
    sip_error_codes: list[str]
    polling_interval: int


def transport_port(sip: SipListeners, transport: str) -> int:
    """The listening port of ``transport`` (callers only ask for available transports)."""
    ports = {"UDP": sip.udp_port, "TCP": sip.tcp_port, "TLS": sip.tls_port}
    if transport == "WSS" and sip.ws_port is not None:
        return sip.ws_port
    return ports[transport]


def sip_provision_response(
    result: Provisioned, *, sip: SipListeners, online: bool, base_url: str
) -> SipProvisionResponse:
    """Map a provisioning result; ``authorizationId`` is the device id for every transport."""
    device = result.device
    infos = [
        SipInfoResponse(
            username=device.sip_username,
            password=device.sip_password,
            authorization_types=["SipDigest"],
            authorization_id=device.authorization_id,
            domain=sip.domain,
            outbound_proxy=hostport(sip.host, transport_port(sip, transport)),
            transport=transport,
        )
        for transport in result.transports
    ]
    return SipProvisionResponse(
        device=device_resource(device, owner=result.owner, online=online, base_url=base_url),
        sip_info=infos,
        sip_flags=SipFlags(),
        sip_error_codes=list(SIP_ERROR_CODES),
        polling_interval=POLLING_INTERVAL,
    )
