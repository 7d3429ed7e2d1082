"""An in-test CallControl over the real ``pbx.sessions`` transitions and the real PresenceTracker.

It stands in for the SIP-backed PbxService (tested end to end elsewhere): tests build calls with
:meth:`FakeCalls.call` and :meth:`FakeCalls.supervise`, and the REST server asks it as it would
ask the pbx. Access rules follow :class:`~callwatch.pbx.control.CallControl`: resources of
another account are NotFound; acting on another extension's party or presence needs an admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from callwatch.clock import Clock
from callwatch.ids import IdGenerator
from callwatch.pbx.control import CallControl, Caller
from callwatch.pbx.errors import Forbidden, InvalidState, NotFound
from callwatch.pbx.events import PresenceChanged
from callwatch.pbx.presence import PresenceState, PresenceTracker, PresenceUpdate
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    IllegalTransition,
    Party,
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
from callwatch.store.repo import Extension, Store

from .conftest import LiveServer, StartServer


def endpoint(ext: Extension, device_id: str | None = None) -> Endpoint:
    """The endpoint of an extension of the demo tenant."""
    return Endpoint(
        name=ext.name, extension_id=ext.id, extension_number=ext.number, device_id=device_id
    )


@dataclass
class FakeCalls:
    """A :class:`CallControl` with sessions held in memory."""

    ids: IdGenerator = field(default_factory=lambda: IdGenerator(11))
    tracker: PresenceTracker = field(default_factory=PresenceTracker)
    sessions: dict[str, TelephonySession] = field(default_factory=dict)
    events: list[PresenceChanged] = field(default_factory=list)
    _store: Store | None = None
    _clock: Clock | None = None

    def attach(self, *, store: Store, clock: Clock) -> None:
        """Give the fake the running server's store and clock."""
        self._store = store
        self._clock = clock

    # -- scenario helpers (test thread) --------------------------------------------------------

    def call(
        self, *, customer: str, agent: Extension, answered: bool = True, tag: str = "a"
    ) -> TelephonySession:
        """An external ``customer`` calls ``agent``; both parties Answered unless not."""
        session = new_session(
            hex_id=self.ids.hex(16),
            session_id=self.ids.digits(12),
            account_id=agent.account_id,
            now=self.now(),
        )
        caller_end = Endpoint(phone_number=customer, name="Customer")
        agent_end = endpoint(agent, device_id="dev-agent")
        session, customer_party, _ = add_party(
            session, role=PartyRole.CALLER, direction=Direction.OUTBOUND,
            from_=caller_end, to=agent_end, now=self.now(),
        )  # fmt: skip
        session, agent_party, _ = add_party(
            session, role=PartyRole.CALLEE, direction=Direction.INBOUND, from_=caller_end,
            to=agent_end, now=self.now(), extension_id=agent.id, device_id="dev-agent",
            sip=SipData(call_id=f"call-{tag}@test", from_tag=f"from-{tag}"),
        )  # fmt: skip
        session, _ = set_status(session, agent_party.id, PartyStatus.PROCEEDING, now=self.now())
        if answered:
            for party in (customer_party, agent_party):
                session, _ = set_status(session, party.id, PartyStatus.ANSWERED, now=self.now())
            session, _ = update_party(
                session, agent_party.id, now=self.now(),
                sip=SipData(call_id=f"call-{tag}@test", from_tag=f"from-{tag}", to_tag=f"to-{tag}"),
            )  # fmt: skip
        return self.put(session)

    def supervise(
        self, session: TelephonySession, *, supervisor: Extension, agent: Extension
    ) -> tuple[TelephonySession, Party]:
        """Add ``supervisor``'s party listening to the agent's party."""
        agent_party = session.parties_of(agent.id)[0]
        session, party, _ = add_party(
            session, role=PartyRole.SUPERVISOR, direction=Direction.OUTBOUND,
            from_=endpoint(supervisor, device_id="dev-sup"), to=endpoint(agent),
            now=self.now(), status=PartyStatus.ANSWERED, reason="Supervising",
            extension_id=supervisor.id, device_id="dev-sup", monitored=(agent_party.id,),
            sip=SipData(call_id="sup@test", from_tag="sup-from", to_tag="sup-to"),
        )  # fmt: skip
        return self.put(session), party

    def put(self, session: TelephonySession) -> TelephonySession:
        """Store a new state of a session and feed it to the presence tracker."""
        if session.active:
            self.sessions[session.id] = session
        else:
            self.sessions.pop(session.id, None)
        self.events.extend(self.tracker.on_session(session, now=self.now()))
        return session

    def now(self) -> datetime:
        """The server's clock."""
        assert self._clock is not None, "attach() first"
        return self._clock.utcnow()

    # -- CallControl ---------------------------------------------------------------------------

    def get_session(self, caller: Caller, session_id: str) -> TelephonySession:
        session = self.sessions.get(session_id)
        if session is None or session.account_id != caller.account_id:
            raise NotFound(
                "Resource for parameter [telephonySessionId] is not found",
                parameter="telephonySessionId",
            )
        return session

    async def hold(self, caller: Caller, session_id: str, party_id: str) -> Party:
        return self._move(caller, session_id, party_id, PartyStatus.HOLD)

    async def unhold(self, caller: Caller, session_id: str, party_id: str) -> Party:
        return self._move(caller, session_id, party_id, PartyStatus.ANSWERED)

    async def update_party(
        self,
        caller: Caller,
        session_id: str,
        party_id: str,
        *,
        muted: bool | None,
        stand_alone: bool | None,
    ) -> Party:
        session, party = self._own_party(caller, session_id, party_id)
        session, _ = update_party(
            session, party.id, now=self.now(), muted=muted, stand_alone=stand_alone
        )
        return self.put(session).party(party_id)

    async def delete_party(self, caller: Caller, session_id: str, party_id: str) -> None:
        session, party = self._own_party(caller, session_id, party_id)
        if party.role is not PartyRole.SUPERVISOR:
            raise InvalidState("A party can be deleted only if supervised or parked")
        session, _ = set_status(
            session, party_id, PartyStatus.DISCONNECTED, now=self.now(), reason="CallFinished"
        )
        self.put(session)

    async def drop_session(self, caller: Caller, session_id: str) -> None:
        session = self.get_session(caller, session_id)
        session, _ = disconnect_all(session, now=self.now(), reason="CallDropped")
        self.put(session)

    def presence(self, caller: Caller, extension_id: int) -> PresenceState:
        ext = self._extension(caller, extension_id)
        return self.tracker.state(
            account_id=ext.account_id, extension_id=ext.id, extension_number=ext.number
        )

    def account_presence(self, caller: Caller) -> list[PresenceState]:
        assert self._store is not None
        return [
            self.presence(caller, ext.id)
            for ext in self._store.extensions.list_for_account(caller.account_id)
        ]

    def set_presence(
        self, caller: Caller, extension_id: int, update: PresenceUpdate
    ) -> PresenceState:
        ext = self._extension(caller, extension_id)
        if ext.id != caller.extension_id and not caller.is_admin:
            raise Forbidden("Attempt to access another extension's presence")
        state, event = self.tracker.update(
            update,
            account_id=ext.account_id,
            extension_id=ext.id,
            extension_number=ext.number,
            now=self.now(),
        )
        if event is not None:
            self.events.append(event)
        return state

    def _move(self, caller: Caller, session_id: str, party_id: str, status: PartyStatus) -> Party:
        session, party = self._own_party(caller, session_id, party_id)
        try:
            session, _ = set_status(session, party.id, status, now=self.now())
        except IllegalTransition as exc:
            raise InvalidState(f"Party is in [{party.status}] state") from exc
        return self.put(session).party(party_id)

    def _own_party(
        self, caller: Caller, session_id: str, party_id: str
    ) -> tuple[TelephonySession, Party]:
        session = self.get_session(caller, session_id)
        try:
            party = session.party(party_id)
        except KeyError:
            raise NotFound(
                "Resource for parameter [partyId] is not found", parameter="partyId"
            ) from None
        if party.extension_id != caller.extension_id and not caller.is_admin:
            raise Forbidden("Attempt to access another extension's call party")
        return session, party

    def _extension(self, caller: Caller, extension_id: int) -> Extension:
        assert self._store is not None
        ext = self._store.extensions.get(extension_id)
        if ext is None or ext.account_id != caller.account_id:
            raise NotFound(
                "Resource for parameter [extensionId] is not found", parameter="extensionId"
            )
        return ext


def start_with_calls(start_server: StartServer) -> tuple[LiveServer, FakeCalls]:
    """A live server whose call control is a fresh :class:`FakeCalls`."""
    calls = FakeCalls()
    checked: CallControl = calls
    server = start_server(calls=checked)
    calls.attach(store=server.store, clock=server.clock)
    return server, calls
