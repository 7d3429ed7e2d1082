"""Device reads and device SIP info (ringcentral-api.md §1 rows 6–8, §2.5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from callwatch.api.deps import ApiServices, BaseUrl, LightRead, RequestUri, Services
from callwatch.api.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, paginate
from callwatch.api.schemas.common import ERROR_RESPONSES
from callwatch.api.schemas.devices import (
    DeviceList,
    DeviceResource,
    SipInfoResource,
    device_resource,
    sip_info_resource,
)
from callwatch.store.repo import Device, Extension

router = APIRouter(
    prefix="/restapi/v1.0/account/{accountId}", tags=["Devices"], responses=ERROR_RESPONSES
)

AccountId = Annotated[str, Path(alias="accountId", description="account id or ~")]
ExtensionId = Annotated[str, Path(alias="extensionId", description="extension id or ~")]
DeviceId = Annotated[str, Path(alias="deviceId")]


@router.get(
    "/extension/{extensionId}/device",
    response_model=DeviceList,
    response_model_exclude_none=True,
    operation_id="listExtensionDevices",
)
def list_extension_devices(
    account_id: AccountId,
    extension_id: ExtensionId,
    principal: LightRead,
    services: Services,
    base_url: BaseUrl,
    uri: RequestUri,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=MAX_PER_PAGE)] = DEFAULT_PER_PAGE,
) -> DeviceList:
    """Devices of an extension, each with its live Online/Offline status."""
    owner, devices = services.directory.extension_devices(principal, account_id, extension_id)
    items, page_info = paginate(devices, page=page, per_page=per_page, uri=uri)
    return DeviceList(
        uri=uri,
        records=[_resource(services, device, owner, base_url) for device in items],
        paging=page_info.paging,
        navigation=page_info.navigation,
    )


@router.get(
    "/device/{deviceId}",
    response_model=DeviceResource,
    response_model_exclude_none=True,
    operation_id="readDevice",
)
def read_device(
    account_id: AccountId,
    device_id: DeviceId,
    principal: LightRead,
    services: Services,
    base_url: BaseUrl,
) -> DeviceResource:
    """One device of the account."""
    device = services.directory.device(principal, account_id, device_id)
    return _resource(services, device, services.directory.owner(device), base_url)


@router.get(
    "/device/{deviceId}/sip-info", response_model=SipInfoResource, operation_id="readDeviceSipInfo"
)
def read_device_sip_info(
    account_id: AccountId, device_id: DeviceId, principal: LightRead, services: Services
) -> SipInfoResource:
    """SIP credentials and outbound proxies of a device (authorizationId == device id)."""
    device = services.directory.device(principal, account_id, device_id)
    return sip_info_resource(device, services.sip)


def _resource(
    services: ApiServices, device: Device, owner: Extension | None, base_url: str
) -> DeviceResource:
    online = services.device_status.is_online(device.id)
    return device_resource(device, owner=owner, online=online, base_url=base_url)
