"""PresenceTracker: telephony status from sessions, aggregation, cap, sequences, PUT validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.pbx.errors import InvalidParameter
from callwatch.pbx.events import PresenceChanged
from callwatch.pbx.presence import (
    MAX_ACTIVE_CALLS,
    MAX_MESSAGE_LENGTH,
    CallerIdVisibility,
    DndStatus,
    PresenceState,
    PresenceStatus,
    PresenceTracker,
    PresenceUpdate,
    TelephonyStatus,
)
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    PartyRole,
    PartyStatus,
    SipData,
    TelephonySession,
    add_party,
    new_session,
    set_status,
    update_party,
)

ACCOUNT = 400
AGENT = 1108
SUPERVISOR = 1101
OTHER = 1102
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CUSTOMER = Endpoint(phone_number="+16505550100", name="Customer")
AGENT_END = Endpoint(name="Alice Agent", extension_id=AGENT, extension_number="108")
SUPERVISOR_END = Endpoint(name="Sam Supervisor", extension_id=SUPERVISOR, extension_number="101")
OTHER_END = Endpoint(name="Bob Agent", extension_id=OTHER, extension_number="102")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def inbound_call(n: int = 0, *, now: datetime = T0) -> tuple[TelephonySession, str, str]:
    """A customer calling the agent: (session, customer party id, agent party id), both Setup."""
    session = new_session(hex_id=f"{n:032x}", session_id=f"{4000 + n}", account_id=ACCOUNT, now=now)
    session, customer, _ = add_party(
        session, role=PartyRole.CALLER, direction=Direction.OUTBOUND, from_=CUSTOMER,
        to=AGENT_END, now=now,
    )  # fmt: skip
    session, agent, _ = add_party(
        session, role=PartyRole.CALLEE, direction=Direction.INBOUND, from_=CUSTOMER,
        to=AGENT_END, now=now, extension_id=AGENT, sip=SipData(call_id=f"c{n}", from_tag="f"),
    )  # fmt: skip
    return session, customer.id, agent.id


def answered_call(
    tracker: PresenceTracker, n: int = 0, *, now: datetime = T0
) -> tuple[TelephonySession, str]:
    session, customer, agent = inbound_call(n, now=now)
    session, _ = set_status(session, customer, PartyStatus.ANSWERED, now=now)
    session, _ = set_status(session, agent, PartyStatus.ANSWERED, now=now)
    tracker.on_session(session, now=now)
    return session, agent


def agent_state(tracker: PresenceTracker) -> PresenceState:
    return tracker.state(account_id=ACCOUNT, extension_id=AGENT, extension_number="108")


def only(events: list[PresenceChanged]) -> PresenceState:
    assert len(events) == 1, events
    event = events[0]
    assert event.sequence == event.presence.sequence
    return event.presence


class TestLifecycle:
    def test_ringing_connected_hold_none(self) -> None:
        tracker = PresenceTracker()
        session, customer, agent = inbound_call()

        ringing = only(tracker.on_session(session, now=at(1)))
        assert (ringing.extension_id, ringing.account_id) == (AGENT, ACCOUNT)
        assert ringing.extension_number == "108"
        assert ringing.telephony_status is TelephonyStatus.RINGING
        assert ringing.presence_status is PresenceStatus.BUSY
        assert ringing.sequence == 1
        (call,) = ringing.active_calls
        assert call.telephony_status is TelephonyStatus.RINGING
        assert call.direction is Direction.INBOUND
        assert (call.from_number, call.from_name) == ("+16505550100", "Customer")
        assert (call.to_number, call.to_name) == ("108", "Alice Agent")
        assert call.id == call.telephony_session_id == session.id
        assert (call.session_id, call.party_id, call.start_time) == ("4000", agent, T0)
        assert call.sip_data == SipData(call_id="c0", from_tag="f")

        session, _ = set_status(session, agent, PartyStatus.PROCEEDING, now=at(2))
        assert tracker.on_session(session, now=at(2)) == []  # still Ringing: nothing visible

        session, _ = set_status(session, customer, PartyStatus.ANSWERED, now=at(3))
        session, _ = set_status(session, agent, PartyStatus.ANSWERED, now=at(3))
        connected = only(tracker.on_session(session, now=at(3)))
        assert connected.telephony_status is TelephonyStatus.CALL_CONNECTED
        assert connected.active_calls[0].telephony_status is TelephonyStatus.CALL_CONNECTED
        assert connected.sequence == 2

        session, _ = set_status(session, agent, PartyStatus.HOLD, now=at(4))
        held = only(tracker.on_session(session, now=at(4)))
        assert held.telephony_status is TelephonyStatus.ON_HOLD
        assert held.presence_status is PresenceStatus.BUSY
        assert held.sequence == 3

        session, _ = set_status(session, agent, PartyStatus.DISCONNECTED, now=at(5))
        events = tracker.on_session(session, now=at(5))
        ended = only(events)
        assert events[0].event_time == at(5)
        assert ended.telephony_status is TelephonyStatus.NO_CALL
        assert ended.presence_status is PresenceStatus.AVAILABLE
        assert (ended.active_calls, ended.total_active_calls, ended.sequence) == ((), 0, 4)
        assert agent_state(tracker) == ended

    def test_sip_data_change_is_visible(self) -> None:
        tracker = PresenceTracker()
        session, agent = answered_call(tracker)
        tag = SipData(call_id="c0", from_tag="f", to_tag="t")
        session, _ = update_party(session, agent, now=at(1), sip=tag)
        assert only(tracker.on_session(session, now=at(1))).active_calls[0].sip_data == tag

    def test_mute_is_not_a_presence_change(self) -> None:
        tracker = PresenceTracker()
        session, agent = answered_call(tracker)
        session, _ = update_party(session, agent, now=at(1), muted=True)
        assert tracker.on_session(session, now=at(1)) == []

    def test_ended_session_is_forgotten(self) -> None:
        tracker = PresenceTracker()
        session, agent = answered_call(tracker)
        session, _ = set_status(session, agent, PartyStatus.GONE, now=at(1))
        assert only(tracker.on_session(session, now=at(1))).active_calls == ()
        assert tracker.on_session(session, now=at(2)) == []
        assert agent_state(tracker).telephony_status is TelephonyStatus.NO_CALL

    def test_session_first_seen_already_ended_changes_nothing(self) -> None:
        tracker = PresenceTracker()
        session, customer, agent = inbound_call()
        session, _ = set_status(session, agent, PartyStatus.DISCONNECTED, now=at(1))
        session, _ = set_status(session, customer, PartyStatus.DISCONNECTED, now=at(1))
        assert tracker.on_session(session, now=at(1)) == []
        assert agent_state(tracker).sequence == 0

    def test_external_parties_have_no_presence(self) -> None:
        tracker = PresenceTracker()
        session = new_session(hex_id="f" * 32, session_id="1", account_id=ACCOUNT, now=T0)
        session, _, _ = add_party(
            session, role=PartyRole.CALLER, direction=Direction.OUTBOUND, from_=CUSTOMER,
            to=AGENT_END, now=T0,
        )  # fmt: skip
        assert tracker.on_session(session, now=T0) == []

    def test_internal_call_changes_both_extensions(self) -> None:
        tracker = PresenceTracker()
        session = new_session(hex_id="e" * 32, session_id="2", account_id=ACCOUNT, now=T0)
        session, bob, _ = add_party(
            session, role=PartyRole.CALLER, direction=Direction.OUTBOUND, from_=OTHER_END,
            to=AGENT_END, now=T0, extension_id=OTHER,
        )  # fmt: skip
        session, alice, _ = add_party(
            session, role=PartyRole.CALLEE, direction=Direction.INBOUND, from_=OTHER_END,
            to=AGENT_END, now=T0, extension_id=AGENT,
        )  # fmt: skip
        events = tracker.on_session(session, now=T0)
        assert [e.presence.extension_id for e in events] == [OTHER, AGENT]
        assert events[0].presence.extension_number == "102"  # learnt from its own endpoint
        assert events[0].presence.active_calls[0].direction is Direction.OUTBOUND
        session, _ = set_status(session, bob.id, PartyStatus.ANSWERED, now=at(1))
        assert tracker.on_session(session, now=at(1))[0].presence.extension_id == OTHER
        session, _ = set_status(session, alice.id, PartyStatus.ANSWERED, now=at(2))
        (event,) = tracker.on_session(session, now=at(2))
        assert event.presence.extension_id == AGENT
        assert event.presence.telephony_status is TelephonyStatus.CALL_CONNECTED


class TestAggregation:
    def test_precedence_connected_over_ringing_over_hold(self) -> None:
        tracker = PresenceTracker()
        held, agent = answered_call(tracker, 1)
        held, _ = set_status(held, agent, PartyStatus.HOLD, now=at(1))
        assert only(tracker.on_session(held, now=at(1))).telephony_status is TelephonyStatus.ON_HOLD

        ringing, _, _ = inbound_call(2, now=at(2))
        state = only(tracker.on_session(ringing, now=at(2)))
        assert state.telephony_status is TelephonyStatus.RINGING
        assert [c.telephony_status for c in state.active_calls] == [
            TelephonyStatus.ON_HOLD,
            TelephonyStatus.RINGING,
        ]

        answered_call(tracker, 3, now=at(3))
        state = agent_state(tracker)
        assert state.telephony_status is TelephonyStatus.CALL_CONNECTED
        assert state.total_active_calls == 3

    @pytest.mark.parametrize(
        ("user", "on_call", "expected"),
        [
            (PresenceStatus.AVAILABLE, False, PresenceStatus.AVAILABLE),
            (PresenceStatus.AVAILABLE, True, PresenceStatus.BUSY),
            (PresenceStatus.BUSY, False, PresenceStatus.BUSY),
            (PresenceStatus.OFFLINE, False, PresenceStatus.OFFLINE),
            (PresenceStatus.OFFLINE, True, PresenceStatus.BUSY),
        ],
    )
    def test_presence_status(
        self, user: PresenceStatus, on_call: bool, expected: PresenceStatus
    ) -> None:
        tracker = PresenceTracker()
        update = PresenceUpdate(user_status=user.value)
        tracker.update(
            update, account_id=ACCOUNT, extension_id=AGENT, extension_number="108", now=T0
        )
        if on_call:
            answered_call(tracker)
        state = agent_state(tracker)
        assert (state.user_status, state.presence_status) == (user, expected)

    def test_at_most_seven_newest_calls_oldest_first(self) -> None:
        tracker = PresenceTracker()
        answered_call(tracker, 0, now=at(0))  # the only connected call: oldest, not shown
        for n in range(1, 9):
            session, _, _ = inbound_call(n, now=at(n))
            tracker.on_session(session, now=at(n))
        state = agent_state(tracker)
        assert len(state.active_calls) == MAX_ACTIVE_CALLS
        assert state.total_active_calls == 9
        assert [c.session_id for c in state.active_calls] == [f"{4000 + n}" for n in range(2, 9)]
        assert state.telephony_status is TelephonyStatus.CALL_CONNECTED

    def test_supervisor_party_in_supervisors_active_calls(self) -> None:
        tracker = PresenceTracker()
        session, agent = answered_call(tracker)
        session, party, _ = add_party(
            session, role=PartyRole.SUPERVISOR, direction=Direction.OUTBOUND,
            from_=SUPERVISOR_END, to=AGENT_END, now=at(5), status=PartyStatus.ANSWERED,
            reason="Supervising", extension_id=SUPERVISOR, monitored=(agent,),
        )  # fmt: skip
        state = only(tracker.on_session(session, now=at(5)))  # the agent's presence is unchanged
        assert state.extension_id == SUPERVISOR
        assert state.extension_number == "101"
        assert state.telephony_status is TelephonyStatus.CALL_CONNECTED
        (call,) = state.active_calls
        assert (call.party_id, call.id) == (party.id, session.id)
        assert call.direction is Direction.OUTBOUND
        assert (call.from_number, call.to_number) == ("101", "108")
        assert call.telephony_status is TelephonyStatus.CALL_CONNECTED
        assert call.start_time == at(5)

    def test_dual_channel_supervision_lists_both_parties(self) -> None:
        tracker = PresenceTracker()
        session, _ = answered_call(tracker)
        for _ in range(2):
            session, _, _ = add_party(
                session, role=PartyRole.SUPERVISOR, direction=Direction.OUTBOUND,
                from_=SUPERVISOR_END, to=AGENT_END, now=at(5), status=PartyStatus.ANSWERED,
                extension_id=SUPERVISOR,
            )  # fmt: skip
        tracker.on_session(session, now=at(5))
        state = tracker.state(account_id=ACCOUNT, extension_id=SUPERVISOR, extension_number="101")
        assert [c.party_id for c in state.active_calls] == [p.id for p in session.parties[2:]]


class TestSequences:
    def test_per_extension_and_shared_with_updates(self) -> None:
        tracker = PresenceTracker()
        assert agent_state(tracker).sequence == 0
        answered_call(tracker)
        assert agent_state(tracker).sequence == 1
        state, event = tracker.update(
            PresenceUpdate(dnd_status="DoNotAcceptAnyCalls"),
            account_id=ACCOUNT, extension_id=AGENT, extension_number="108", now=at(1),
        )  # fmt: skip
        assert event is not None
        assert (state.sequence, event.sequence, event.event_time) == (2, 2, at(1))
        assert state.dnd_status is DndStatus.DO_NOT_ACCEPT_ANY_CALLS
        other = tracker.state(account_id=ACCOUNT, extension_id=OTHER, extension_number="102")
        assert other.sequence == 0

    def test_update_without_change_has_no_event(self) -> None:
        tracker = PresenceTracker()
        same = PresenceUpdate(user_status="Available", allow_see_my_presence=True)
        state, event = tracker.update(
            same, account_id=ACCOUNT, extension_id=AGENT, extension_number="108", now=T0
        )
        assert event is None
        assert state == agent_state(tracker)
        assert state.sequence == 0

    def test_defaults(self) -> None:
        state = agent_state(PresenceTracker())
        assert state.user_status is PresenceStatus.AVAILABLE
        assert state.dnd_status is DndStatus.TAKE_ALL_CALLS
        assert state.caller_id_visibility is CallerIdVisibility.ALL
        assert (state.dnd_status_personal, state.message) == (None, None)
        assert state.allow_see_my_presence and state.accept_call_queue_calls
        assert not (state.ring_on_monitored_call or state.pick_up_calls_on_hold)
        assert state.telephony_status is TelephonyStatus.NO_CALL


class TestUpdateValidation:
    def test_all_fields(self) -> None:
        tracker = PresenceTracker()
        update = PresenceUpdate(
            user_status="Busy",
            dnd_status="TakeDepartmentCallsOnly",
            dnd_status_personal="DoNotAcceptAnyCalls",
            message="at lunch",
            allow_see_my_presence=False,
            ring_on_monitored_call=True,
            pick_up_calls_on_hold=True,
            caller_id_visibility="PermittedUsers",
            accept_call_queue_calls=False,
        )
        state, _ = tracker.update(
            update, account_id=ACCOUNT, extension_id=AGENT, extension_number="108", now=T0
        )
        assert state.presence_status is PresenceStatus.BUSY
        assert state.dnd_status_personal == "DoNotAcceptAnyCalls"
        assert state.message == "at lunch"
        assert (state.allow_see_my_presence, state.accept_call_queue_calls) == (False, False)
        assert (state.ring_on_monitored_call, state.pick_up_calls_on_hold) == (True, True)
        assert state.caller_id_visibility is CallerIdVisibility.PERMITTED_USERS

    @pytest.mark.parametrize(
        ("update", "parameter"),
        [
            (PresenceUpdate(user_status="Away"), "userStatus"),
            (PresenceUpdate(user_status="available"), "userStatus"),
            (PresenceUpdate(dnd_status="Never"), "dndStatus"),
            (PresenceUpdate(dnd_status_personal="Unknown"), "dndStatusPersonal"),
            (PresenceUpdate(caller_id_visibility="Some"), "callerIdVisibility"),
            (PresenceUpdate(message="x" * (MAX_MESSAGE_LENGTH + 1)), "message"),
        ],
    )
    def test_invalid_values_change_nothing(self, update: PresenceUpdate, parameter: str) -> None:
        tracker = PresenceTracker()
        before = agent_state(tracker)
        with pytest.raises(InvalidParameter) as caught:
            tracker.update(
                replace(update, ring_on_monitored_call=True),
                account_id=ACCOUNT, extension_id=AGENT, extension_number="108", now=T0,
            )  # fmt: skip
        assert caught.value.parameter == parameter
        assert caught.value.message == f"Parameter [{parameter}] value is invalid"
        assert (caught.value.code, caught.value.status) == ("CMN-101", 400)
        assert agent_state(tracker) == before


_STEPS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(list(PartyStatus))), max_size=40)


@settings(max_examples=60, deadline=None)
@given(_STEPS)
def test_invariants_under_random_transitions(steps: list[tuple[int, PartyStatus]]) -> None:
    """Sequences only grow, events mean a visible change, the list is capped and consistent."""
    tracker = PresenceTracker()
    sessions = {n: inbound_call(n, now=at(n)) for n in range(4)}
    for n, (session, _, _) in sessions.items():
        tracker.on_session(session, now=at(n))
    last = agent_state(tracker)
    for step, (n, status) in enumerate(steps):
        session, customer, agent = sessions[n]
        try:
            session, _ = set_status(session, agent, status, now=at(10 + step))
        except ValueError:
            continue
        sessions[n] = (session, customer, agent)
        events = tracker.on_session(session, now=at(10 + step))
        current = agent_state(tracker)
        if events:
            assert only(events) == current
            assert current.sequence == last.sequence + 1
            assert replace(current, sequence=0) != replace(last, sequence=0)
        else:
            assert current == last
        assert len(current.active_calls) <= MAX_ACTIVE_CALLS
        statuses = {c.telephony_status for c in current.active_calls}
        expected = next(
            (s for s in (TelephonyStatus.CALL_CONNECTED, TelephonyStatus.RINGING,
                         TelephonyStatus.ON_HOLD) if s in statuses),
            TelephonyStatus.NO_CALL,
        )  # fmt: skip
        assert current.telephony_status is expected
        last = current
