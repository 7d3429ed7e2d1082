"""Device resources and device SIP info (ringcentral-api.md §2.5; SPEC DeviceResource)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from callwatch.api.schemas.common import ApiModel, Navigation, Paging
from callwatch.api.schemas.extensions import account_uri, extension_uri
from callwatch.store.repo import Device, Extension

if TYPE_CHECKING:
    from callwatch.api.deps import SipListeners

PROXY_REGION = "NA"


class DeviceExtensionRef(ApiModel):
    id: int
    uri: str
    extension_number: str


class DeviceResource(ApiModel):
    """A device; ``id`` is a string, ``status`` follows SIP registration."""

    id: str
    uri: str
    sku: str
    type: str
    name: str
    serial: str
    status: str
    """``Online`` while the device is registered, else ``Offline``."""
    computer_name: str | None = None
    """SoftPhone devices only."""
    extension: DeviceExtensionRef | None = None
    line_pooling: str = "None"


class DeviceList(ApiModel):
    uri: str
    records: list[DeviceResource]
    paging: Paging
    navigation: Navigation


class OutboundProxy(ApiModel):
    region: str
    proxy: str
    """``host:port`` for UDP/TCP."""
    proxy_tls: str = Field(alias="proxyTLS")
    """``host:port`` for TLS (note the upper-case alias)."""


class SipInfoResource(ApiModel):
    """``GET …/device/{deviceId}/sip-info``; ``userName`` has a capital N here."""

    domain: str
    outbound_proxies: list[OutboundProxy]
    user_name: str
    password: str
    authorization_id: str


def hostport(host: str, port: int) -> str:
    """``host:port``, bracketing IPv6 literals (RFC 3986 §3.2.2)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def device_uri(base_url: str, device: Device) -> str:
    return f"{account_uri(base_url, device.account_id)}/device/{device.id}"


def device_resource(
    device: Device, *, owner: Extension | None, online: bool, base_url: str
) -> DeviceResource:
    """The REST form of ``device``."""
    extension = None
    if owner is not None:
        extension = DeviceExtensionRef(
            id=owner.id, uri=extension_uri(base_url, owner), extension_number=owner.number
        )
    return DeviceResource(
        id=device.id,
        uri=device_uri(base_url, device),
        sku=device.sku,
        type=device.type,
        name=device.name,
        serial=device.serial,
        status="Online" if online else "Offline",
        computer_name=device.computer_name if device.type == "SoftPhone" else None,
        extension=extension,
    )


def sip_info_resource(device: Device, sip: SipListeners) -> SipInfoResource:
    """The SIP credentials and proxies of ``device``; authorizationId is the device id."""
    proxy = OutboundProxy(
        region=PROXY_REGION,
        proxy=hostport(sip.host, sip.udp_port),
        proxy_tls=hostport(sip.host, sip.tls_port),
    )
    return SipInfoResource(
        domain=sip.domain,
        outbound_proxies=[proxy],
        user_name=device.sip_username,
        password=device.sip_password,
        authorization_id=device.authorization_id,
    )
