"""Telephony sessions and parties (ringcentral-api.md §2.9; SPEC CallSessionObject, CallParty).

RingCentral sends ids of accounts and extensions as strings here, ``status.rcc`` always, ``park``
as an empty object and ``recordings`` as an empty list; absent optional fields are omitted (the
routes serialize with ``response_model_exclude_none``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import Field

from callwatch.api.schemas.common import ApiModel
from callwatch.pbx.sessions import Endpoint, Party, TelephonySession


def format_time(moment: datetime) -> str:
    """RingCentral's date-time form: UTC, milliseconds, ``Z`` (``2019-07-09T16:17:27.975Z``)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class CallStatus(ApiModel):
    """CallStatusInfo."""

    code: str
    reason: str | None = None
    rcc: bool = False


class PartyInfo(ApiModel):
    """``from`` / ``to`` of a party."""

    phone_number: str | None = None
    """The phone number, else the extension number."""
    name: str | None = None
    extension_id: str | None = None
    device_id: str | None = None


class ParkInfo(ApiModel):
    id: str | None = None


class Recording(ApiModel):
    id: str
    active: bool


class CallParty(ApiModel):
    """A party of a telephony session (also the body of hold/unhold/PATCH responses)."""

    id: str
    account_id: str
    extension_id: str | None = None
    """Omitted for a party no extension owns (an external caller)."""
    status: CallStatus
    muted: bool
    stand_alone: bool
    direction: str
    from_: PartyInfo = Field(alias="from")
    to: PartyInfo
    park: ParkInfo = Field(default_factory=ParkInfo)
    recordings: list[Recording] = Field(default_factory=list)


class Origin(ApiModel):
    type: str


class CallSession(ApiModel):
    """CallSessionObject (``voiceCallToken`` is for conferences only and never sent)."""

    id: str
    origin: Origin
    creation_time: str
    parties: list[CallParty]


class PartyFlags(ApiModel):
    """The changeable flags of a party."""

    muted: bool | None = None
    stand_alone: bool | None = None


class PartyUpdateRequest(PartyFlags):
    """PATCH party body: SPEC's ``{"party": {...}}`` or the flat form; nested values win."""

    party: PartyFlags | None = None

    def flags(self) -> PartyFlags:
        """The requested flags, merged from both forms."""
        nested = self.party or PartyFlags()
        return PartyFlags(
            muted=self.muted if nested.muted is None else nested.muted,
            stand_alone=self.stand_alone if nested.stand_alone is None else nested.stand_alone,
        )


class HoldProtocol(StrEnum):
    """HoldCallPartyRequest ``proto``; callwatch always holds with a re-INVITE (Auto)."""

    AUTO = "Auto"
    RC = "RC"
    BROADWORKS = "BroadWorks"
    DISCONNECT_HOLDER = "DisconnectHolder"
    BROADWORKS_OR_DISCONNECT_HOLDER = "BroadWorksOrDisconnectHolder"


class HoldRequest(ApiModel):
    """Optional body of hold/unhold."""

    proto: HoldProtocol = HoldProtocol.AUTO


def call_session(session: TelephonySession) -> CallSession:
    """The CallSessionObject of ``session``."""
    return CallSession(
        id=session.id,
        origin=Origin(type=session.origin),
        creation_time=format_time(session.creation_time),
        parties=[call_party(party) for party in session.parties],
    )


def call_party(party: Party) -> CallParty:
    """The CallParty of ``party``."""
    return CallParty(
        id=party.id,
        account_id=str(party.account_id),
        extension_id=_string(party.extension_id),
        status=CallStatus(code=party.status.value, reason=party.reason),
        muted=party.muted,
        stand_alone=party.stand_alone,
        direction=party.direction.value,
        from_=party_info(party.from_),
        to=party_info(party.to),
    )


def party_info(endpoint: Endpoint) -> PartyInfo:
    """PartyInfo of one end of a party."""
    return PartyInfo(
        phone_number=endpoint.phone_number or endpoint.extension_number,
        name=endpoint.name,
        extension_id=_string(endpoint.extension_id),
        device_id=endpoint.device_id,
    )


def _string(value: int | None) -> str | None:
    return None if value is None else str(value)
