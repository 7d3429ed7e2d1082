"""Extension and account presence (ringcentral-api.md §2.8; SPEC GetPresenceInfo,
AccountPresenceInfo, PresenceInfoRequest, ActiveCallInfo)."""

from __future__ import annotations

from pydantic import Field

from callwatch.api.schemas.common import ApiModel, Navigation, Paging
from callwatch.api.schemas.extensions import account_uri
from callwatch.api.schemas.telephony import format_time
from callwatch.pbx.presence import ActiveCall, PresenceState, PresenceUpdate

MEETING_STATUS = "Disconnected"
"""callwatch has no meetings."""
USELESS_URI = "do-not-use-me-I-am-useless"
"""What RingCentral literally puts in ``sipData.remoteUri`` / ``localUri``."""


class PresenceExtensionRef(ApiModel):
    id: int
    uri: str
    extension_number: str


class ActiveCallSipData(ApiModel):
    call_id: str
    to_tag: str | None = None
    from_tag: str
    remote_uri: str = USELESS_URI
    local_uri: str = USELESS_URI


class ActiveCallInfo(ApiModel):
    """One of the latest active calls (``detailedTelephonyState=true``)."""

    id: str
    direction: str
    from_: str | None = Field(default=None, alias="from")
    from_name: str | None = None
    to: str | None = None
    to_name: str | None = None
    start_time: str
    telephony_status: str
    sip_data: ActiveCallSipData | None = None
    """Only with ``sipData=true``."""
    session_id: str
    telephony_session_id: str
    party_id: str
    queue_call: bool = False


class PresenceInfo(ApiModel):
    """GetPresenceInfo (also the PUT response)."""

    uri: str
    extension: PresenceExtensionRef
    presence_status: str
    telephony_status: str
    user_status: str
    dnd_status: str
    dnd_status_personal: str | None = None
    message: str | None = None
    allow_see_my_presence: bool
    caller_id_visibility: str
    ring_on_monitored_call: bool
    pick_up_calls_on_hold: bool
    accept_call_queue_calls: bool
    meeting_status: str = MEETING_STATUS
    active_calls: list[ActiveCallInfo] | None = None
    """Only with ``detailedTelephonyState=true``."""


class AccountPresence(ApiModel):
    """AccountPresenceInfo: a page of presence records."""

    uri: str
    records: list[PresenceInfo]
    paging: Paging
    navigation: Navigation


class PresenceUpdateRequest(ApiModel):
    """PresenceInfoRequest; enum values are checked by the pbx (400 CMN-101 naming the field)."""

    user_status: str | None = None
    dnd_status: str | None = None
    dnd_status_personal: str | None = None
    message: str | None = None
    allow_see_my_presence: bool | None = None
    ring_on_monitored_call: bool | None = None
    pick_up_calls_on_hold: bool | None = None
    caller_id_visibility: str | None = None
    accept_call_queue_calls: bool | None = None

    def to_update(self) -> PresenceUpdate:
        """The pbx's form of this request."""
        return PresenceUpdate(
            user_status=self.user_status,
            dnd_status=self.dnd_status,
            dnd_status_personal=self.dnd_status_personal,
            message=self.message,
            allow_see_my_presence=self.allow_see_my_presence,
            ring_on_monitored_call=self.ring_on_monitored_call,
            pick_up_calls_on_hold=self.pick_up_calls_on_hold,
            caller_id_visibility=self.caller_id_visibility,
            accept_call_queue_calls=self.accept_call_queue_calls,
        )


def presence_uri(base_url: str, state: PresenceState) -> str:
    """The canonical URI of an extension's presence."""
    return f"{_extension_uri(base_url, state)}/presence"


def presence_info(
    state: PresenceState, base_url: str, *, detailed: bool = False, sip_data: bool = False
) -> PresenceInfo:
    """The presence record of ``state``.

    Args:
        detailed: include ``activeCalls`` (``detailedTelephonyState=true``).
        sip_data: include each call's ``sipData`` (only together with ``detailed``).
    """
    calls = [active_call_info(c, sip_data=sip_data) for c in state.active_calls]
    return PresenceInfo(
        uri=presence_uri(base_url, state),
        extension=PresenceExtensionRef(
            id=state.extension_id,
            uri=_extension_uri(base_url, state),
            extension_number=state.extension_number,
        ),
        presence_status=state.presence_status.value,
        telephony_status=state.telephony_status.value,
        user_status=state.user_status.value,
        dnd_status=state.dnd_status.value,
        dnd_status_personal=_value(state.dnd_status_personal),
        message=state.message,
        allow_see_my_presence=state.allow_see_my_presence,
        caller_id_visibility=state.caller_id_visibility.value,
        ring_on_monitored_call=state.ring_on_monitored_call,
        pick_up_calls_on_hold=state.pick_up_calls_on_hold,
        accept_call_queue_calls=state.accept_call_queue_calls,
        active_calls=calls if detailed else None,
    )


def active_call_info(call: ActiveCall, *, sip_data: bool) -> ActiveCallInfo:
    """ActiveCallInfo of one active call."""
    sip = call.sip_data if sip_data else None
    return ActiveCallInfo(
        id=call.id,
        direction=call.direction.value,
        from_=call.from_number,
        from_name=call.from_name,
        to=call.to_number,
        to_name=call.to_name,
        start_time=format_time(call.start_time),
        telephony_status=call.telephony_status.value,
        sip_data=None
        if sip is None
        else ActiveCallSipData(call_id=sip.call_id, to_tag=sip.to_tag, from_tag=sip.from_tag),
        session_id=call.session_id,
        telephony_session_id=call.telephony_session_id,
        party_id=call.party_id,
    )


def _extension_uri(base_url: str, state: PresenceState) -> str:
    return f"{account_uri(base_url, state.account_id)}/extension/{state.extension_id}"


def _value(member: str | None) -> str | None:
    return None if member is None else str(member)
