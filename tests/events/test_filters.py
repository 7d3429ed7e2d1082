"""callwatch.events.filters: parse, serialize, resolve and match event filters (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.events.filters import (
    MAX_FILTER_LENGTH,
    EventFilter,
    FilterKind,
    InvalidFilter,
    SessionChange,
    match_presence,
    match_session,
    parse_filters,
)
from callwatch.pbx.presence import PresenceTracker
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    PartyRole,
    PartyStatus,
    TelephonySession,
    add_party,
    new_session,
    set_status,
)

ACCOUNT, AGENT, SUPERVISOR, OTHER = 626018159, 70313721590, 41948757491, 11111111111
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PREFIX = "/restapi/v1.0/account/~"


class TestParse:
    @pytest.mark.parametrize(
        ("text", "kind", "extension_level"),
        [
            (f"{PREFIX}/telephony/sessions", FilterKind.TELEPHONY_SESSIONS, False),
            (f"{PREFIX}/extension/~/telephony/sessions", FilterKind.TELEPHONY_SESSIONS, True),
            (f"{PREFIX}/extension/{AGENT}/presence", FilterKind.PRESENCE, True),
            (f"{PREFIX}/presence", FilterKind.PRESENCE, False),
            ("/account/~/extension/~/presence", FilterKind.PRESENCE, True),
        ],
    )
    def test_shapes(self, text: str, kind: FilterKind, extension_level: bool) -> None:
        parsed = EventFilter.parse(text)
        assert parsed.kind is kind
        assert parsed.extension_level is extension_level
        assert parsed.account_id is None

    def test_explicit_ids(self) -> None:
        parsed = EventFilter.parse(f"/restapi/v1.0/account/{ACCOUNT}/extension/{AGENT}/presence")
        assert (parsed.account_id, parsed.extension_id) == (ACCOUNT, AGENT)
        assert parsed.resolved

    def test_telephony_parameters(self) -> None:
        parsed = EventFilter.parse(
            f"{PREFIX}/telephony/sessions?statusCode=Answered&direction=Inbound"
            "&phoneNumber=%2B16505550100&missedCall=FALSE&sipData=true&withRecordings=false"
        )
        assert parsed.status_code == "Answered"
        assert parsed.direction == "Inbound"
        assert parsed.phone_number == "+16505550100"
        assert (parsed.missed_call, parsed.sip_data, parsed.with_recordings) == (False, True, False)

    def test_plus_stays_a_plus(self) -> None:
        parsed = EventFilter.parse(f"{PREFIX}/telephony/sessions?phoneNumber=+16505550100")
        assert parsed.phone_number == "+16505550100"

    def test_presence_parameters(self) -> None:
        parsed = EventFilter.parse(
            f"{PREFIX}/extension/~/presence?detailedTelephonyState=true&sipData=true"
        )
        assert (parsed.detailed, parsed.sip_data) == (True, True)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "path must start"),
            ("/restapi/v1.0/extension/~/presence", "path must start"),
            (f"{PREFIX}/message-store", "unsupported event"),
            (f"{PREFIX}/extension/~/presence/line", "unsupported event"),
            ("/restapi/v1.0/account/abc/presence", "account id"),
            ("/restapi/v1.0/account/~/extension/-1/presence", "extension id"),
            ("/restapi/v1.0/account/99999999999999999999/presence", "account id"),
            (f"{PREFIX}/telephony/sessions?statusCode=Ringing", "statusCode"),
            (f"{PREFIX}/telephony/sessions?direction=inbound", "direction"),
            (f"{PREFIX}/telephony/sessions?phoneNumber=abc", "phoneNumber"),
            (f"{PREFIX}/telephony/sessions?sipData=yes", "sipData must be true or false"),
            (f"{PREFIX}/telephony/sessions?sipData", "has no value"),
            (f"{PREFIX}/telephony/sessions?sipData=true&sipData=true", "repeated"),
            (f"{PREFIX}/telephony/sessions?detailedTelephonyState=true", "not supported"),
            (f"{PREFIX}/presence?statusCode=Answered", "not supported"),
            (f"{PREFIX}/presence?foo=1", "not supported"),
            (f"{PREFIX}/presence?sipData=%FF", "percent-encoded"),
            (f"{PREFIX}/presence?" + "x" * MAX_FILTER_LENGTH, "longer than"),
        ],
    )
    def test_invalid(self, text: str, message: str) -> None:
        with pytest.raises(InvalidFilter, match=message):
            EventFilter.parse(text)

    @given(st.text(max_size=300))
    @settings(max_examples=400)
    def test_any_text_gives_a_filter_or_invalid_filter(self, text: str) -> None:
        try:
            parsed = EventFilter.parse(text)
        except InvalidFilter:
            return
        assert EventFilter.parse(parsed.serialize()) == parsed

    @given(
        st.sampled_from(["/restapi/v1.0/account/~", "/account/626018159"]),
        st.sampled_from(["", "/extension/~", "/extension/70313721590"]),
        st.sampled_from(["telephony/sessions", "presence"]),
        st.lists(
            st.sampled_from(["statusCode=Hold", "sipData=true", "direction=Outbound"]),
            unique=True,
        ),
    )
    def test_round_trip(self, account: str, extension: str, kind: str, params: list[str]) -> None:
        allowed = params if kind == "telephony/sessions" else [p for p in params if "sip" in p]
        text = f"{account}{extension}/{kind}" + ("?" + "&".join(allowed) if allowed else "")
        parsed = EventFilter.parse(text)
        assert EventFilter.parse(parsed.serialize()) == parsed
        assert parsed.serialize().startswith("/restapi/v1.0/account/")

    def test_serialize_is_canonical(self) -> None:
        parsed = EventFilter.parse(
            "/account/~/telephony/sessions?sipData=TRUE&statusCode=Answered&phoneNumber=%2B1650"
        )
        assert parsed.serialize() == (
            "/restapi/v1.0/account/~/telephony/sessions"
            "?statusCode=Answered&phoneNumber=+1650&sipData=true"
        )

    def test_parse_filters_splits_good_and_bad(self) -> None:
        parsed, invalid = parse_filters([f"{PREFIX}/presence", "nonsense"])
        assert len(parsed) == 1
        assert invalid == ["nonsense"]


class TestResolve:
    def test_tilde_becomes_the_subscribers_ids(self) -> None:
        parsed = EventFilter.parse(f"{PREFIX}/extension/~/telephony/sessions?sipData=true")
        resolved = parsed.resolve(account_id=ACCOUNT, extension_id=SUPERVISOR)
        assert resolved.serialize() == (
            f"/restapi/v1.0/account/{ACCOUNT}/extension/{SUPERVISOR}/telephony/sessions"
            "?sipData=true"
        )

    def test_explicit_ids_are_kept(self) -> None:
        parsed = EventFilter.parse(f"{PREFIX}/extension/{AGENT}/presence")
        resolved = parsed.resolve(account_id=ACCOUNT, extension_id=SUPERVISOR)
        assert resolved.extension_id == AGENT

    def test_account_level_has_no_extension(self) -> None:
        resolved = EventFilter.parse(f"{PREFIX}/presence").resolve(
            account_id=ACCOUNT, extension_id=SUPERVISOR
        )
        assert resolved.extension_id is None
        assert resolved.serialize() == f"/restapi/v1.0/account/{ACCOUNT}/presence"


def _call() -> TelephonySession:
    session = new_session(hex_id="ab" * 16, session_id="1234", account_id=ACCOUNT, now=T0)
    customer = Endpoint(phone_number="+16505550123", name="Customer")
    agent = Endpoint(extension_id=AGENT, extension_number="108", name="Alice")
    session, _, _ = add_party(
        session, role=PartyRole.CALLER, direction=Direction.OUTBOUND, from_=customer, to=agent,
        now=T0,
    )  # fmt: skip
    session, _, _ = add_party(
        session, role=PartyRole.CALLEE, direction=Direction.INBOUND, from_=customer, to=agent,
        now=T0, extension_id=AGENT,
    )  # fmt: skip
    return session


def _resolved(text: str) -> EventFilter:
    return EventFilter.parse(text).resolve(account_id=ACCOUNT, extension_id=SUPERVISOR)


def _change(session: TelephonySession, index: int, *, missed: bool = False) -> SessionChange:
    return SessionChange(session=session, party=session.parties[index], missed=missed)


class TestMatchSession:
    def test_extension_filter_gets_only_its_parties(self) -> None:
        session = _call()
        wanted = _resolved(f"{PREFIX}/extension/{AGENT}/telephony/sessions")
        assert match_session(wanted, _change(session, 1)) == (session.parties[1],)
        assert match_session(wanted, _change(session, 0)) is None

    def test_own_extension_filter_ignores_other_extensions(self) -> None:
        assert match_session(_resolved(f"{PREFIX}/extension/~/telephony/sessions"), _change(
            _call(), 1
        )) is None  # fmt: skip

    def test_account_filter_gets_all_parties(self) -> None:
        session = _call()
        wanted = _resolved(f"{PREFIX}/telephony/sessions")
        assert match_session(wanted, _change(session, 0)) == session.parties

    def test_other_account_never_matches(self) -> None:
        wanted = EventFilter.parse(f"/restapi/v1.0/account/1/extension/{AGENT}/telephony/sessions")
        assert match_session(wanted, _change(_call(), 1)) is None

    def test_status_code(self) -> None:
        session = _call()
        answered = _resolved(f"{PREFIX}/telephony/sessions?statusCode=Answered")
        assert match_session(answered, _change(session, 1)) is None
        session, _ = set_status(session, session.parties[1].id, PartyStatus.ANSWERED, now=T0)
        assert match_session(answered, _change(session, 1)) is not None

    def test_direction(self) -> None:
        inbound = _resolved(f"{PREFIX}/telephony/sessions?direction=Inbound")
        assert match_session(inbound, _change(_call(), 1)) is not None
        assert match_session(inbound, _change(_call(), 0)) is None

    @pytest.mark.parametrize(
        ("number", "matches"), [("+16505550123", True), ("16505550123", True), ("108", True),
                                ("+15550000000", False)],
    )  # fmt: skip
    def test_phone_number(self, number: str, matches: bool) -> None:
        wanted = _resolved(f"{PREFIX}/telephony/sessions?phoneNumber={number}")
        assert (match_session(wanted, _change(_call(), 1)) is not None) is matches

    def test_missed_call(self) -> None:
        missed = _resolved(f"{PREFIX}/telephony/sessions?missedCall=true")
        not_missed = _resolved(f"{PREFIX}/telephony/sessions?missedCall=false")
        assert match_session(missed, _change(_call(), 1, missed=True)) is not None
        assert match_session(missed, _change(_call(), 1)) is None
        assert match_session(not_missed, _change(_call(), 1)) is not None

    def test_with_recordings(self) -> None:
        recorded = _resolved(f"{PREFIX}/telephony/sessions?withRecordings=true")
        unrecorded = _resolved(f"{PREFIX}/telephony/sessions?withRecordings=false")
        assert match_session(recorded, _change(_call(), 1)) is None
        assert match_session(unrecorded, _change(_call(), 1)) is not None

    def test_unresolved_or_wrong_kind_is_a_bug(self) -> None:
        with pytest.raises(ValueError, match="not resolved"):
            match_session(EventFilter.parse(f"{PREFIX}/telephony/sessions"), _change(_call(), 1))
        with pytest.raises(ValueError, match="not a telephony"):
            match_session(_resolved(f"{PREFIX}/presence"), _change(_call(), 1))


class TestMatchPresence:
    def test_extension_and_account(self) -> None:
        tracker = PresenceTracker()
        state = tracker.state(account_id=ACCOUNT, extension_id=AGENT, extension_number="108")
        assert match_presence(_resolved(f"{PREFIX}/extension/{AGENT}/presence"), state)
        assert not match_presence(_resolved(f"{PREFIX}/extension/~/presence"), state)
        assert match_presence(_resolved(f"{PREFIX}/presence"), state)
        other = replace(state, account_id=1)
        assert not match_presence(_resolved(f"{PREFIX}/presence"), other)
