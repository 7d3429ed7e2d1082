"""Domain events the pbx publishes (frozen; built by keyword). The notifications layer turns
them into RingCentral telephony-session and presence notifications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callwatch.pbx.presence import PresenceState
    from callwatch.pbx.sessions import TelephonySession


@dataclass(frozen=True, slots=True)
class PartyStatusChanged:
    """A party of ``session`` was added or changed; ``session`` is the state after it."""

    session: TelephonySession
    party_id: str
    sequence: int
    event_time: datetime


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """An extension's presence changed (telephony status, user status, DND or active calls)."""

    presence: PresenceState
    sequence: int
    event_time: datetime


@dataclass(frozen=True, slots=True)
class DeviceStatusChanged:
    """A device turned Online (registered) or Offline."""

    account_id: int
    extension_id: int
    device_id: str
    online: bool
    event_time: datetime


DomainEvent = PartyStatusChanged | PresenceChanged | DeviceStatusChanged
