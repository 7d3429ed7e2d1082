"""callwatch.events.notifications: envelope and bodies field by field, missedCall memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from callwatch.api.schemas.presence import active_call_info
from callwatch.api.schemas.telephony import call_party, party_info
from callwatch.events.notifications import (
    USELESS_URI,
    CallMemory,
    EncodedBody,
    Notification,
    active_call_item,
    endpoint_info,
    format_time,
    is_missed,
    party_item,
    presence_body,
    session_body,
)
from callwatch.pbx.presence import PresenceState, PresenceTracker, PresenceUpdate
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    PartyRole,
    PartyStatus,
    SipData,
    TelephonySession,
    add_party,
    disconnect_all,
    new_session,
    set_status,
)

ACCOUNT, AGENT = 626018159, 70313721590
T0 = datetime(2026, 1, 1, 9, 30, 0, 123456, tzinfo=UTC)
CUSTOMER = Endpoint(phone_number="+16505550123", name="Customer")
AGENT_END = Endpoint(extension_id=AGENT, extension_number="108", name="Alice", device_id="87")
SIP = SipData(call_id="c@h", from_tag="ft", to_tag="tt")


def _call() -> TelephonySession:
    session = new_session(hex_id="ab" * 16, session_id="402936341008", account_id=ACCOUNT, now=T0)
    session, _, _ = add_party(
        session, role=PartyRole.CALLER, direction=Direction.OUTBOUND, from_=CUSTOMER,
        to=AGENT_END, now=T0,
    )  # fmt: skip
    session, _, _ = add_party(
        session, role=PartyRole.CALLEE, direction=Direction.INBOUND, from_=CUSTOMER,
        to=AGENT_END, now=T0, extension_id=AGENT, device_id="87", sip=SIP,
    )  # fmt: skip
    return session


def test_format_time_is_utc_with_milliseconds() -> None:
    assert format_time(T0) == "2026-01-01T09:30:00.123Z"
    assert format_time(datetime(2026, 1, 1, 12, tzinfo=UTC).astimezone()) == (
        "2026-01-01T12:00:00.000Z"
    )


def test_envelope() -> None:
    body = {"sequence": 1, "name": 'Zoë "Q"'}
    note = Notification(
        uuid="123", event="/restapi/v1.0/account/1/presence", timestamp=format_time(T0),
        subscription_id="sub", owner_id="42", body=EncodedBody.of(body),
    )  # fmt: skip
    assert note.to_dict() == {
        "uuid": "123", "event": "/restapi/v1.0/account/1/presence",
        "timestamp": "2026-01-01T09:30:00.123Z", "subscriptionId": "sub", "ownerId": "42",
        "body": body,
    }  # fmt: skip
    assert json.loads(note.to_json()) == note.to_dict()


class TestSessionBody:
    def test_extension_level(self) -> None:
        session = _call()
        body = session_body(
            session, (session.parties[1],), sequence=2, event_time=T0, extension_id=AGENT,
            sip_data=False, answered=frozenset(),
        )  # fmt: skip
        assert body == {
            "sequence": 2,
            "sessionId": "402936341008",
            "telephonySessionId": session.id,
            "serverId": "callwatch.TAM",
            "eventTime": "2026-01-01T09:30:00.123Z",
            "origin": {"type": "Call"},
            "accountId": str(ACCOUNT),
            "extensionId": str(AGENT),
            "parties": [
                {
                    "accountId": str(ACCOUNT),
                    "extensionId": str(AGENT),
                    "id": session.parties[1].id,
                    "direction": "Inbound",
                    "to": {"phoneNumber": "108", "name": "Alice", "extensionId": str(AGENT),
                           "deviceId": "87"},
                    "from": {"phoneNumber": "+16505550123", "name": "Customer"},
                    "status": {"code": "Setup", "rcc": False},
                    "park": {},
                    "queueCall": False,
                    "missedCall": False,
                    "standAlone": False,
                    "muted": False,
                }
            ],
        }  # fmt: skip

    def test_account_level_has_no_extension_id_and_every_party(self) -> None:
        session = _call()
        body = session_body(
            session, session.parties, sequence=2, event_time=T0, extension_id=None,
            sip_data=False, answered=frozenset(),
        )  # fmt: skip
        assert "extensionId" not in body
        parties = body["parties"]
        assert isinstance(parties, list) and len(parties) == 2
        assert parties[0] == party_item(session.parties[0], sip_data=False, missed=False)
        assert isinstance(parties[0], dict) and "extensionId" not in parties[0]

    def test_sip_data_only_when_asked(self) -> None:
        party = _call().parties[1]
        assert "sipData" not in party_item(party, sip_data=False, missed=False)
        assert party_item(party, sip_data=True, missed=False)["sipData"] == {
            "callId": "c@h", "fromTag": "ft", "toTag": "tt"
        }  # fmt: skip

    def test_reason_appears_with_the_status(self) -> None:
        session = _call()
        session, _ = set_status(
            session, session.parties[1].id, PartyStatus.DISCONNECTED, now=T0, reason="NoAnswer"
        )
        item = party_item(session.parties[1], sip_data=False, missed=True)
        assert item["status"] == {"code": "Disconnected", "reason": "NoAnswer", "rcc": False}
        assert item["missedCall"] is True

    def test_shared_fields_match_the_rest_call_party(self) -> None:
        """Events and GET session spell party fields the same way."""
        party = _call().parties[1]
        rest = call_party(party).model_dump(by_alias=True, exclude_none=True)
        item = party_item(party, sip_data=False, missed=False)
        for field in ("id", "accountId", "extensionId", "direction", "from", "to", "status",
                      "muted", "standAlone"):  # fmt: skip
            assert item[field] == rest[field], field
        assert endpoint_info(CUSTOMER) == party_info(CUSTOMER).model_dump(
            by_alias=True, exclude_none=True
        )


def _presence(detailed_call: bool = True) -> PresenceState:
    tracker = PresenceTracker()
    tracker.state(account_id=ACCOUNT, extension_id=AGENT, extension_number="108")
    session = _call()
    if detailed_call:
        session, _ = set_status(session, session.parties[1].id, PartyStatus.ANSWERED, now=T0)
    events = tracker.on_session(session, now=T0)
    return events[-1].presence


class TestPresenceBody:
    def test_plain(self) -> None:
        state = _presence()
        body = presence_body(state, detailed=False, sip_data=True)
        assert body == {
            "extensionId": str(AGENT),
            "telephonyStatus": "CallConnected",
            "sequence": 1,
            "presenceStatus": "Busy",
            "userStatus": "Available",
            "dndStatus": "TakeAllCalls",
            "meetingStatus": "Disconnected",
            "allowSeeMyPresence": True,
            "ringOnMonitoredCall": False,
            "pickUpCallsOnHold": False,
            "acceptCallQueueCalls": True,
        }

    def test_detailed_with_and_without_sip(self) -> None:
        state = _presence()
        detailed = presence_body(state, detailed=True, sip_data=False)
        assert detailed["totalActiveCalls"] == 1
        calls = detailed["activeCalls"]
        assert isinstance(calls, list) and len(calls) == 1
        call = calls[0]
        assert isinstance(call, dict)
        assert call == {
            "id": _call().id, "direction": "Inbound", "queueCall": False,
            "from": "+16505550123", "fromName": "Customer", "to": "108", "toName": "Alice",
            "telephonyStatus": "CallConnected", "sessionId": "402936341008",
            "startTime": "2026-01-01T09:30:00.123Z", "partyId": _call().parties[1].id,
            "telephonySessionId": _call().id,
        }  # fmt: skip
        with_sip = presence_body(state, detailed=True, sip_data=True)
        sip_calls = with_sip["activeCalls"]
        assert isinstance(sip_calls, list) and isinstance(sip_calls[0], dict)
        assert sip_calls[0]["sipData"] == {
            "callId": "c@h", "fromTag": "ft", "toTag": "tt", "remoteUri": USELESS_URI,
            "localUri": USELESS_URI,
        }  # fmt: skip

    def test_active_call_matches_the_rest_presence(self) -> None:
        state = _presence()
        call = state.active_calls[0]
        rest = active_call_info(call, sip_data=True).model_dump(by_alias=True, exclude_none=True)
        assert active_call_item(call, sip_data=True) == rest

    def test_dnd_personal_only_when_set(self) -> None:
        tracker = PresenceTracker()
        state, _ = tracker.update(
            PresenceUpdate(dnd_status_personal="DoNotAcceptAnyCalls"),
            account_id=ACCOUNT, extension_id=AGENT, extension_number="108", now=T0,
        )  # fmt: skip
        assert presence_body(state, detailed=False, sip_data=False)["dndStatusPersonal"] == (
            "DoNotAcceptAnyCalls"
        )


class TestMissedCall:
    def test_inbound_party_ended_unanswered(self) -> None:
        memory = CallMemory()
        session = _call()
        assert memory.observe(session) == frozenset()
        session, _ = disconnect_all(session, now=T0, reason="Cancelled")
        answered = memory.observe(session)
        assert is_missed(session.parties[1], answered)
        assert not is_missed(session.parties[0], answered)  # the caller's party is Outbound
        assert len(memory) == 0  # ended sessions are forgotten

    def test_answered_then_ended_is_not_missed(self) -> None:
        memory = CallMemory()
        session = _call()
        session, _ = set_status(session, session.parties[1].id, PartyStatus.ANSWERED, now=T0)
        memory.observe(session)
        later = T0 + timedelta(seconds=30)
        session, _ = disconnect_all(session, now=later)
        assert not is_missed(session.parties[1], memory.observe(session))

    def test_memory_is_bounded(self) -> None:
        memory = CallMemory(max_sessions=2)
        for index in range(5):
            session = new_session(
                hex_id=f"{index:032x}", session_id=str(index), account_id=ACCOUNT, now=T0
            )
            session, _, _ = add_party(
                session, role=PartyRole.CALLER, direction=Direction.OUTBOUND, from_=CUSTOMER,
                to=AGENT_END, now=T0,
            )  # fmt: skip
            memory.observe(session)
        assert len(memory) == 2
