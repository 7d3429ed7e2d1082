"""Tests for callwatch.pbx.sessions: ids, sequences, the party status table, events (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from callwatch.pbx.events import PartyStatusChanged
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    IllegalTransition,
    PartyRole,
    PartyStatus,
    SipData,
    TelephonySession,
    add_party,
    disconnect_all,
    new_session,
    set_status,
    update_party,
)

HEX = "a7d5f98a6e0d3e218735a44d0be1a120"
T0 = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
ACCOUNT = 626018159
CALLER = Endpoint(phone_number="+16505550123", name="External Caller")
AGENT = Endpoint(extension_id=108, extension_number="108", name="Alice Agent", device_id="87")
SUPERVISOR = Endpoint(extension_id=101, extension_number="101", name="Sam Supervisor")

S = PartyStatus
ALLOWED: dict[PartyStatus, set[PartyStatus]] = {
    S.SETUP: {S.PROCEEDING, S.ANSWERED, S.DISCONNECTED, S.GONE},
    S.PROCEEDING: {S.ANSWERED, S.DISCONNECTED, S.GONE},
    S.ANSWERED: {S.HOLD, S.DISCONNECTED, S.GONE},
    S.HOLD: {S.ANSWERED, S.DISCONNECTED, S.GONE},
    S.DISCONNECTED: set(),
    S.GONE: set(),
}
"""The diagram of the module docstring, written out independently of ``_TRANSITIONS``."""
TERMINAL = {S.DISCONNECTED, S.GONE}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def session() -> TelephonySession:
    return new_session(hex_id=HEX, session_id="2874620016", account_id=ACCOUNT, now=T0)


def call(*statuses: PartyStatus) -> TelephonySession:
    """A session with one caller/callee pair per status (caller first), parties in ``statuses``."""
    current = session()
    for index, status in enumerate(statuses):
        role = PartyRole.CALLER if index % 2 == 0 else PartyRole.CALLEE
        current, _, _ = add_party(
            current,
            role=role,
            direction=Direction.OUTBOUND if role is PartyRole.CALLER else Direction.INBOUND,
            from_=CALLER,
            to=AGENT,
            now=at(index),
            status=status,
            extension_id=None if role is PartyRole.CALLER else 108,
        )
    return current


def walk(path: list[PartyStatus]) -> tuple[TelephonySession, list[PartyStatusChanged]]:
    current = call(path[0])
    events = []
    for step, status in enumerate(path[1:], 1):
        current, event = set_status(current, current.parties[0].id, status, now=at(step))
        assert event is not None
        events.append(event)
    return current, events


class TestNewSession:
    def test_ids_and_initial_state(self) -> None:
        s = session()
        assert s.id == f"s-{HEX}"
        assert s.hex_id == HEX
        assert s.session_id == "2874620016"
        assert s.account_id == ACCOUNT
        assert s.creation_time == T0
        assert (s.origin, s.server_id) == ("Call", "callwatch.TAM")
        assert s.parties == ()
        assert s.sequence == 0
        assert not s.active


class TestAddParty:
    def test_party_ids_count_from_one_and_sequence_rises(self) -> None:
        s0 = session()
        s1, caller, _ = add_party(
            s0,
            role=PartyRole.CALLER,
            direction=Direction.OUTBOUND,
            from_=CALLER,
            to=AGENT,
            now=at(1),
            sip=SipData(call_id="c1@192.0.2.10", from_tag="ft1"),
        )
        s2, callee, _ = add_party(
            s1,
            role=PartyRole.CALLEE,
            direction=Direction.INBOUND,
            from_=CALLER,
            to=AGENT,
            now=at(2),
            extension_id=108,
            device_id="87",
            reason="Ringing",
        )
        assert (caller.id, callee.id) == (f"p-{HEX}-1", f"p-{HEX}-2")
        assert [p.id for p in s2.parties] == [caller.id, callee.id]
        assert (s0.sequence, s1.sequence, s2.sequence) == (0, 1, 2)
        assert s0.parties == ()  # sessions are immutable
        assert caller.status is PartyStatus.SETUP
        assert caller.start_time == at(1)
        assert caller.account_id == ACCOUNT
        assert (callee.extension_id, callee.device_id, callee.reason) == (108, "87", "Ringing")
        assert s2.parties_of(108) == [callee]
        assert s2.party(caller.id) == caller
        assert s2.active

    def test_event_carries_the_session_after_the_change(self) -> None:
        s1, party, event = add_party(
            session(),
            role=PartyRole.SUPERVISOR,
            direction=Direction.INBOUND,
            from_=SUPERVISOR,
            to=AGENT,
            now=at(5),
            monitored=(f"p-{HEX}-2",),
        )
        assert event == PartyStatusChanged(
            session=s1, party_id=party.id, sequence=1, event_time=at(5)
        )
        assert event.session.party(party.id).monitored == (f"p-{HEX}-2",)

    def test_unknown_party(self) -> None:
        with pytest.raises(KeyError):
            call(S.SETUP).party(f"p-{HEX}-9")
        with pytest.raises(KeyError):
            set_status(call(S.SETUP), "p-nope-1", S.ANSWERED, now=T0)
        with pytest.raises(KeyError):
            update_party(call(S.SETUP), "p-nope-1", muted=True, now=T0)


class TestStatusTransitions:
    """CallStatusInfo.code moves: Setup → Proceeding → Answered ⇄ Hold, then a terminal status."""

    @pytest.mark.parametrize(
        ("source", "target"),
        [(a, b) for a, b in product(PartyStatus, PartyStatus) if a != b],
        ids=lambda s: str(s),
    )
    def test_transition_table(self, source: PartyStatus, target: PartyStatus) -> None:
        before = call(source)
        party_id = before.parties[0].id
        if target in ALLOWED[source]:
            after, event = set_status(before, party_id, target, now=at(9), reason="r")
            assert after.party(party_id).status is target
            assert after.party(party_id).reason == "r"
            assert after.sequence == before.sequence + 1
            assert event == PartyStatusChanged(
                session=after, party_id=party_id, sequence=after.sequence, event_time=at(9)
            )
        else:
            with pytest.raises(IllegalTransition, match=f"{source} → {target} is not allowed"):
                set_status(before, party_id, target, now=at(9))

    def test_the_usual_call_and_hold_cycle(self) -> None:
        path = [S.SETUP, S.PROCEEDING, S.ANSWERED, S.HOLD, S.ANSWERED, S.HOLD, S.DISCONNECTED]
        final, events = walk(path)
        assert [e.sequence for e in events] == [2, 3, 4, 5, 6, 7]
        assert [e.session.party(e.party_id).status for e in events] == path[1:]
        assert final.party(final.parties[0].id).status is S.DISCONNECTED
        assert not final.active

    @pytest.mark.parametrize("status", list(PartyStatus))
    def test_same_status_and_reason_is_a_no_op(self, status: PartyStatus) -> None:
        before = call(status)
        after, event = set_status(before, before.parties[0].id, status, now=at(1))
        assert event is None
        assert after is before

    @pytest.mark.parametrize("status", [S.SETUP, S.PROCEEDING, S.ANSWERED, S.HOLD])
    def test_reason_only_change(self, status: PartyStatus) -> None:
        """Answered → Answered/Supervising: same status, new reason, one event."""
        before = call(status)
        party_id = before.parties[0].id
        after, event = set_status(before, party_id, status, now=at(1), reason="Supervising")
        assert (after.party(party_id).status, after.party(party_id).reason) == (
            status,
            "Supervising",
        )
        assert event is not None and event.sequence == after.sequence == before.sequence + 1

    @pytest.mark.parametrize("status", sorted(TERMINAL))
    def test_terminal_party_keeps_its_status(self, status: PartyStatus) -> None:
        before, _ = walk([S.SETUP, S.ANSWERED, status])
        party_id = before.parties[0].id
        for target in PartyStatus:
            if target is status:
                continue
            with pytest.raises(IllegalTransition):
                set_status(before, party_id, target, now=at(5))
        after, _ = set_status(before, party_id, status, now=at(5), reason="Later")
        assert after.party(party_id).status is status

    def test_other_parties_are_untouched(self) -> None:
        before = call(S.SETUP, S.SETUP)
        caller, callee = before.parties
        after, _ = set_status(before, callee.id, S.PROCEEDING, now=at(1))
        assert after.parties[0] == caller
        assert after.party(callee.id) == replace(callee, status=S.PROCEEDING)


class TestUpdateParty:
    def test_visible_changes_raise_the_sequence(self) -> None:
        before = call(S.ANSWERED)
        party_id = before.parties[0].id
        muted, event = update_party(before, party_id, muted=True, now=at(1))
        assert muted.party(party_id).muted
        assert event is not None and event.sequence == muted.sequence == before.sequence + 1
        sip = SipData(call_id="c1@192.0.2.10", from_tag="ft1", to_tag="tt1")
        tagged, event = update_party(muted, party_id, sip=sip, stand_alone=True, now=at(2))
        assert (tagged.party(party_id).sip, tagged.party(party_id).stand_alone) == (sip, True)
        assert event is not None and event.session is tagged
        assert tagged.party(party_id).muted  # left as it was

    def test_device_of_the_answering_callee(self) -> None:
        """Forking: the callee party takes the device that answered (its own ``to`` end)."""
        before = call(S.SETUP, S.PROCEEDING)
        callee_id = before.parties[1].id
        after, event = update_party(before, callee_id, device_id="802396666666", now=at(1))
        callee = after.party(callee_id)
        assert (callee.device_id, callee.to.device_id) == ("802396666666", "802396666666")
        assert callee.to.extension_number == "108"
        assert event is not None and event.sequence == before.sequence + 1
        again, event = update_party(after, callee_id, device_id="802396666666", now=at(2))
        assert event is None and again is after

    def test_no_change_no_event(self) -> None:
        before = call(S.ANSWERED)
        party_id = before.parties[0].id
        sip = before.parties[0].sip
        for after, event in (
            update_party(before, party_id, now=at(1)),
            update_party(before, party_id, now=at(1), muted=False),
            update_party(before, party_id, now=at(1), stand_alone=False, sip=sip),
        ):
            assert event is None
            assert after is before


class TestDisconnectAll:
    def test_disconnects_active_parties_in_creation_order(self) -> None:
        before = call(S.ANSWERED, S.HOLD, S.GONE, S.SETUP, S.DISCONNECTED, S.PROCEEDING)
        after, events = disconnect_all(before, now=at(30), reason="BYE")
        ids = [p.id for p in before.parties]
        assert [e.party_id for e in events] == [ids[0], ids[1], ids[3], ids[5]]
        assert [e.sequence for e in events] == [7, 8, 9, 10]
        assert after.sequence == 10
        assert events[-1].session is after
        assert [p.status for p in after.parties] == [
            S.DISCONNECTED,
            S.DISCONNECTED,
            S.GONE,  # terminal parties keep their status and reason
            S.DISCONNECTED,
            S.DISCONNECTED,
            S.DISCONNECTED,
        ]
        assert [after.party(i).reason for i in ids] == ["BYE", "BYE", None, "BYE", None, "BYE"]
        assert not after.active

    def test_nothing_to_disconnect(self) -> None:
        before = call(S.GONE, S.DISCONNECTED)
        after, events = disconnect_all(before, now=at(1))
        assert events == []
        assert after is before
        assert disconnect_all(session(), now=at(1)) == (session(), [])


class PartyStatusMachine(RuleBasedStateMachine):
    """Random transitions: IllegalTransition exactly off the table, sequences only rise."""

    @initialize(count=st.integers(min_value=1, max_value=4))
    def start(self, count: int) -> None:
        self.session = call(*[S.SETUP] * count)
        self.model: dict[str, tuple[PartyStatus, str | None]] = {
            p.id: (S.SETUP, None) for p in self.session.parties
        }
        self.last_sequence = self.session.sequence
        self.clock = 0

    def _accept(self, after: TelephonySession, event: PartyStatusChanged | None) -> None:
        if event is None:
            assert after.sequence == self.last_sequence
        else:
            assert event.sequence == after.sequence > self.last_sequence
            assert event.session is after
        self.session = after
        self.last_sequence = after.sequence

    @rule(
        index=st.integers(min_value=0, max_value=3),
        status=st.sampled_from(PartyStatus),
        reason=st.sampled_from([None, "BYE", "CallerInputRedirect"]),
    )
    def move(self, index: int, status: PartyStatus, reason: str | None) -> None:
        party = self.session.parties[index % len(self.session.parties)]
        self.clock += 1
        no_op = self.model[party.id] == (status, reason)
        expected_ok = status == party.status or status in ALLOWED[party.status]
        try:
            after, event = set_status(
                self.session, party.id, status, now=at(self.clock), reason=reason
            )
        except IllegalTransition:
            assert not expected_ok
            return
        assert expected_ok
        assert (event is None) == no_op
        self.model[party.id] = (status, reason)
        self._accept(after, event)

    @rule(muted=st.booleans())
    def mute_first(self, muted: bool) -> None:
        self.clock += 1
        party_id = self.session.parties[0].id
        self._accept(*update_party(self.session, party_id, muted=muted, now=at(self.clock)))

    @precondition(lambda self: len(self.session.parties) < 4)
    @rule()
    def add(self) -> None:
        self.clock += 1
        after, party, event = add_party(
            self.session,
            role=PartyRole.SUPERVISOR,
            direction=Direction.INBOUND,
            from_=SUPERVISOR,
            to=AGENT,
            now=at(self.clock),
        )
        assert party.id == f"p-{HEX}-{len(after.parties)}"
        self.model[party.id] = (S.SETUP, None)
        self._accept(after, event)

    @rule()
    def hang_up(self) -> None:
        self.clock += 1
        after, events = disconnect_all(self.session, now=at(self.clock), reason="BYE")
        sequences = [self.last_sequence, *(e.sequence for e in events)]
        assert sequences == sorted(set(sequences))
        for party_id, (status, _) in self.model.items():
            if status not in TERMINAL:
                self.model[party_id] = (S.DISCONNECTED, "BYE")
        self.session = after
        self.last_sequence = after.sequence

    @invariant()
    def matches_the_model(self) -> None:
        if hasattr(self, "session"):
            assert {p.id: (p.status, p.reason) for p in self.session.parties} == self.model


PartyStatusMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=20, deadline=None
)
TestPartyStatusMachine = PartyStatusMachine.TestCase


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PartyStatus), max_size=12))
def test_random_paths_never_leave_a_terminal_status(path: list[PartyStatus]) -> None:
    current = call(S.SETUP)
    party_id = current.parties[0].id
    terminal: PartyStatus | None = None
    for step, status in enumerate(path, 1):
        before = current.sequence
        try:
            current, event = set_status(current, party_id, status, now=at(step))
        except IllegalTransition:
            continue
        if event is not None:
            assert event.sequence == current.sequence == before + 1
        if terminal is not None:
            assert current.party(party_id).status is terminal
        elif status in TERMINAL:
            terminal = status
