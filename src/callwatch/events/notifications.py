"""Notification bodies and the envelope, exactly as RingCentral sends them (pure).

Theory of operation. A :class:`Notification` is the envelope ``{uuid, event, timestamp,
subscriptionId, ownerId, body}`` (ringcentral-api.md §3.1) around a body built from one domain
event and JSON-encoded once (:class:`EncodedBody`), however many subscribers receive it:

- telephony sessions (§3.3, DOCS ``code-samples/events/extension-telephony-sessions.json``):
  ``sequence`` (the session's, shared by every party), ``sessionId``, ``telephonySessionId``,
  ``serverId``, ``eventTime``, ``origin{type}``, ``accountId``, ``parties[]`` and, for an
  extension-level filter, ``extensionId``. Party items carry ``status{code, reason?, rcc:false}``,
  ``park:{}``, ``missedCall``, ``standAlone``, ``muted``, ``queueCall`` and ``from``/``to`` with
  ``phoneNumber`` (the number, else the extension number — as the REST CallParty does),
  ``name``, ``extensionId`` and ``deviceId``; ``sipData{callId, toTag, fromTag}`` only when the
  filter asks for it.
- presence (§3.4, DOCS ``…/extension-presence.json``, ``…/detailed-extension-presence-with-
  sip.json``): the presence fields, plus ``activeCalls`` and ``totalActiveCalls`` when detailed.

Ids of accounts and extensions are strings on the wire; absent optional fields are omitted.
Field spellings are shared with the REST schemas of :mod:`callwatch.api.schemas` (tests pin
them against each other); this module cannot import them, since ``api`` sits above ``events``.

:class:`CallMemory` remembers which parties of live sessions were ever answered, so that
``missedCall`` (an inbound party that ended unanswered) can be told from the party's last state.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Final, TypeAlias

from callwatch.pbx.presence import ActiveCall, PresenceState
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    Party,
    PartyStatus,
    SipData,
    TelephonySession,
)

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

MEETING_STATUS: Final = "Disconnected"
"""callwatch has no meetings."""
USELESS_URI: Final = "do-not-use-me-I-am-useless"
"""What RingCentral literally puts in ``sipData.remoteUri`` / ``localUri`` of active calls."""
MAX_REMEMBERED_SESSIONS: Final = 100_000
"""Live sessions :class:`CallMemory` tracks before forgetting the oldest (rule 8)."""


def format_time(moment: datetime) -> str:
    """RingCentral's date-time form: UTC, milliseconds, ``Z`` (``2019-07-09T16:17:27.975Z``)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A notification body and its JSON text, encoded once per event and filter variant and
    shared by every subscriber's envelope."""

    value: JsonObject
    text: str

    @classmethod
    def of(cls, body: JsonObject) -> EncodedBody:
        return cls(body, json.dumps(body, separators=(",", ":")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One notification: the envelope of ringcentral-api.md §3.1 around a shared body."""

    uuid: str
    event: str
    """The concrete filter URI that fired, ids expanded."""
    timestamp: str
    subscription_id: str
    owner_id: str
    body: EncodedBody

    def to_json(self) -> str:
        """The envelope as compact JSON, splicing the pre-encoded body."""
        return (
            f'{{"uuid":{_string(self.uuid)},"event":{_string(self.event)},'
            f'"timestamp":{_string(self.timestamp)},'
            f'"subscriptionId":{_string(self.subscription_id)},'
            f'"ownerId":{_string(self.owner_id)},"body":{self.body.text}}}'
        )

    def to_dict(self) -> JsonObject:
        """The envelope as a JSON object (``json.loads(to_json())`` gives the same)."""
        return {
            "uuid": self.uuid,
            "event": self.event,
            "timestamp": self.timestamp,
            "subscriptionId": self.subscription_id,
            "ownerId": self.owner_id,
            "body": self.body.value,
        }


def _string(value: str) -> str:
    return encode_basestring_ascii(value)


def session_body(
    session: TelephonySession,
    parties: tuple[Party, ...],
    *,
    sequence: int,
    event_time: datetime,
    extension_id: int | None,
    sip_data: bool,
    answered: frozenset[str],
) -> JsonObject:
    """A telephony-session notification body.

    Args:
        parties: the parties to show (an extension's own, or all for account-level filters).
        sequence: the session's sequence number of the change.
        extension_id: the filter's extension, shown as ``extensionId`` (None: account-level).
        sip_data: include each party's ``sipData``.
        answered: ids of the session's parties that were ever answered (``missedCall``).
    """
    body: JsonObject = {
        "sequence": sequence,
        "sessionId": session.session_id,
        "telephonySessionId": session.id,
        "serverId": session.server_id,
        "eventTime": format_time(event_time),
        "origin": {"type": session.origin},
        "accountId": str(session.account_id),
        "parties": [
            party_item(p, sip_data=sip_data, missed=is_missed(p, answered)) for p in parties
        ],
    }
    if extension_id is not None:
        body["extensionId"] = str(extension_id)
    return body


def party_item(party: Party, *, sip_data: bool, missed: bool) -> JsonObject:
    """One party of a telephony-session body (TelephonySessionsEventPartyInfo)."""
    item: JsonObject = {"accountId": str(party.account_id)}
    if party.extension_id is not None:
        item["extensionId"] = str(party.extension_id)
    item.update(
        {
            "id": party.id,
            "direction": party.direction.value,
            "to": endpoint_info(party.to),
            "from": endpoint_info(party.from_),
            "status": _status(party),
            "park": {},
            "queueCall": False,
            "missedCall": missed,
            "standAlone": party.stand_alone,
            "muted": party.muted,
        }
    )
    if sip_data and party.sip is not None:
        item["sipData"] = _party_sip(party.sip)
    return item


def endpoint_info(end: Endpoint) -> JsonObject:
    """``from`` / ``to`` of a party: the number (else the extension number), name and ids."""
    info: JsonObject = {}
    number = end.phone_number or end.extension_number
    if number is not None:
        info["phoneNumber"] = number
    if end.name is not None:
        info["name"] = end.name
    if end.extension_id is not None:
        info["extensionId"] = str(end.extension_id)
    if end.device_id is not None:
        info["deviceId"] = end.device_id
    return info


def presence_body(state: PresenceState, *, detailed: bool, sip_data: bool) -> JsonObject:
    """An extension presence notification body; ``sip_data`` counts only when ``detailed``."""
    body: JsonObject = {
        "extensionId": str(state.extension_id),
        "telephonyStatus": state.telephony_status.value,
        "sequence": state.sequence,
        "presenceStatus": state.presence_status.value,
        "userStatus": state.user_status.value,
        "dndStatus": state.dnd_status.value,
        "meetingStatus": MEETING_STATUS,
        "allowSeeMyPresence": state.allow_see_my_presence,
        "ringOnMonitoredCall": state.ring_on_monitored_call,
        "pickUpCallsOnHold": state.pick_up_calls_on_hold,
        "acceptCallQueueCalls": state.accept_call_queue_calls,
    }
    if state.dnd_status_personal is not None:
        body["dndStatusPersonal"] = state.dnd_status_personal.value
    if detailed:
        body["activeCalls"] = [active_call_item(c, sip_data=sip_data) for c in state.active_calls]
        body["totalActiveCalls"] = state.total_active_calls
    return body


def active_call_item(call: ActiveCall, *, sip_data: bool) -> JsonObject:
    """One ``activeCalls`` entry of a detailed presence body (ActiveCallInfo)."""
    item: JsonObject = {
        "id": call.id,
        "direction": call.direction.value,
        "queueCall": False,
    }
    optional: JsonObject = {
        "from": call.from_number,
        "fromName": call.from_name,
        "to": call.to_number,
        "toName": call.to_name,
    }
    item.update({key: value for key, value in optional.items() if value is not None})
    item.update(
        {
            "telephonyStatus": call.telephony_status.value,
            "sessionId": call.session_id,
            "startTime": format_time(call.start_time),
            "partyId": call.party_id,
            "telephonySessionId": call.telephony_session_id,
        }
    )
    if sip_data and call.sip_data is not None:
        item["sipData"] = {
            **_party_sip(call.sip_data),
            "remoteUri": USELESS_URI,
            "localUri": USELESS_URI,
        }
    return item


def is_missed(party: Party, answered: frozenset[str]) -> bool:
    """An inbound party that ended without ever being answered."""
    return (
        party.direction is Direction.INBOUND
        and party.status is PartyStatus.DISCONNECTED
        and party.id not in answered
    )


def _status(party: Party) -> JsonObject:
    status: JsonObject = {"code": party.status.value}
    if party.reason is not None:
        status["reason"] = party.reason
    status["rcc"] = False
    return status


def _party_sip(sip: SipData) -> JsonObject:
    data: JsonObject = {"callId": sip.call_id, "fromTag": sip.from_tag}
    if sip.to_tag is not None:
        data["toTag"] = sip.to_tag
    return data


class CallMemory:
    """Which parties of each live session were ever answered (for ``missedCall``)."""

    def __init__(self, *, max_sessions: int = MAX_REMEMBERED_SESSIONS) -> None:
        self._answered: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._max_sessions = max_sessions

    def observe(self, session: TelephonySession) -> frozenset[str]:
        """Take the new state of ``session``; return its parties answered so far.

        A session that is no longer active is forgotten after this call.
        """
        before = self._answered.pop(session.id, frozenset())
        now_answered = frozenset(
            p.id for p in session.parties if p.status in (PartyStatus.ANSWERED, PartyStatus.HOLD)
        )
        answered = before | now_answered
        if session.active:
            self._answered[session.id] = answered
            if len(self._answered) > self._max_sessions:
                self._answered.popitem(last=False)
        return answered

    def __len__(self) -> int:
        return len(self._answered)
