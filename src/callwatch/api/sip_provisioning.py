"""``POST /client-info/sip-provision``: which device and transports a softphone gets.

The device is the caller's own SoftPhone device (ringcentral-api.md §2.6): the one named by
``device.id`` in the request if it is the caller's, else the caller's first SoftPhone device,
else a new "Softphone - Digital Line" (sku DV-1) created on the spot. Its ``id`` is also the SIP
authorization id, so the device id a legacy softphone reports is the one supervise accepts.

Transports: the requested ones (default: all) that this server listens on. UDP, TCP and TLS
always exist; WSS only when the SIP stack has a WebSocket listener (``ws_port`` not None).
Unavailable transports are left out; if none of the requested ones is available the request is
refused with 400 CMN-101 ``sipInfo`` rather than answered with an empty ``sipInfo`` list that
every client would index into.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callwatch.api.errors import InvalidParameter, ResourceNotFound
from callwatch.api.tokens import Principal
from callwatch.ids import IdGenerator
from callwatch.store.provisioning import create_device
from callwatch.store.repo import Device, Extension, Store

if TYPE_CHECKING:
    from callwatch.api.deps import SipListeners

TRANSPORTS = ("UDP", "TCP", "TLS", "WSS")
SOFTPHONE_NAME = "Softphone - Digital Line"
SOFTPHONE_SKU = "DV-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionRequest:
    """What the client asked for (all optional)."""

    device_id: str | None = None
    computer_name: str | None = None
    serial: str | None = None
    transports: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Provisioned:
    """The device to register and the transports to describe."""

    device: Device
    owner: Extension
    transports: tuple[str, ...]


class SipProvisioningService:
    """Picks (or creates) the caller's softphone device and the transports to offer."""

    def __init__(self, *, store: Store, ids: IdGenerator, sip: SipListeners) -> None:
        self._store = store
        self._ids = ids
        self._sip = sip

    def provision(self, principal: Principal, request: ProvisionRequest) -> Provisioned:
        """Resolve ``request`` for the token owner.

        Raises:
            InvalidParameter: none of the requested transports is available.
        """
        transports = self._transports(request.transports)
        owner = self._store.extensions.get(principal.extension_id)
        if owner is None:
            raise ResourceNotFound("extensionId")
        device = self._device(owner, request)
        return Provisioned(device=device, owner=owner, transports=transports)

    def available_transports(self) -> tuple[str, ...]:
        """Transports this server listens on, read now (ports are chosen at start-up)."""
        if self._sip.ws_port is None:
            return TRANSPORTS[:3]
        return TRANSPORTS

    def _transports(self, requested: Sequence[str]) -> tuple[str, ...]:
        available = self.available_transports()
        chosen = tuple(dict.fromkeys(t for t in (requested or available) if t in available))
        if not chosen:
            raise InvalidParameter(
                "sipInfo",
                f"None of the requested transports is available; this server offers "
                f"{', '.join(available)}",
            )
        return chosen

    def _device(self, owner: Extension, request: ProvisionRequest) -> Device:
        devices = self._store.devices.list_for_extension(owner.id)
        for device in devices:
            if request.device_id is not None and device.id == request.device_id:
                return device
        for device in devices:
            if device.type == "SoftPhone":
                return device
        return create_device(
            self._store,
            ids=self._ids,
            extension=owner,
            type="SoftPhone",
            name=SOFTPHONE_NAME,
            sku=SOFTPHONE_SKU,
            serial=request.serial,
            computer_name=request.computer_name or "",
        )
