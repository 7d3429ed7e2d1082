"""Real call events without SIP: the ``pbx.sessions`` transitions and the real PresenceTracker,
published the way :meth:`callwatch.pbx.service.PbxService.on_session` publishes them (the
session's events, then the presence changes they cause)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callwatch.clock import Clock
from callwatch.events.notifications import EncodedBody, Notification
from callwatch.ids import IdGenerator
from callwatch.pbx.events import DomainEvent, PartyStatusChanged
from callwatch.pbx.presence import PresenceTracker
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    Party,
    PartyRole,
    PartyStatus,
    SipData,
    TelephonySession,
    add_party,
    disconnect_all,
    new_session,
    set_status,
)
from callwatch.store.repo import Extension


def notification(body: dict[str, Any], *, uuid: str = "1") -> Notification:
    """A notification with ``body`` (for sinks tested on their own)."""
    return Notification(
        uuid=uuid, event="/restapi/v1.0/account/1/presence", timestamp="2026-01-01T00:00:00.000Z",
        subscription_id="sub", owner_id="2", body=EncodedBody.of(body),
    )  # fmt: skip


def endpoint(ext: Extension, device_id: str | None = None) -> Endpoint:
    return Endpoint(
        name=ext.name, extension_id=ext.id, extension_number=ext.number, device_id=device_id
    )


@dataclass
class CallScript:
    """Builds calls step by step and publishes every step."""

    publish: Callable[[DomainEvent], None]
    clock: Clock
    ids: IdGenerator = field(default_factory=lambda: IdGenerator(5))
    tracker: PresenceTracker = field(default_factory=PresenceTracker)
    published: list[DomainEvent] = field(default_factory=list)
    on_session: Callable[[TelephonySession, list[PartyStatusChanged]], None] | None = None
    """When set, each step goes there instead (e.g. a real ``PbxService.on_session``)."""

    def emit(self, session: TelephonySession, events: list[PartyStatusChanged]) -> None:
        if self.on_session is not None:
            self.on_session(session, events)
            return
        for event in events:
            self._publish(event)
        for presence in self.tracker.on_session(session, now=self.clock.utcnow()):
            self._publish(presence)

    def start(self, *, customer: str, agent: Extension, tag: str = "a") -> TelephonySession:
        """A customer calls the agent: caller Setup, agent Setup, agent Proceeding."""
        now = self.clock.utcnow()
        session = new_session(
            hex_id=self.ids.hex(16),
            session_id=self.ids.digits(12),
            account_id=agent.account_id,
            now=now,
        )
        caller = Endpoint(phone_number=customer, name="Customer")
        session, _, first = add_party(
            session, role=PartyRole.CALLER, direction=Direction.OUTBOUND, from_=caller,
            to=endpoint(agent), now=now,
        )  # fmt: skip
        self.emit(session, [first])
        session, party, second = add_party(
            session, role=PartyRole.CALLEE, direction=Direction.INBOUND, from_=caller,
            to=endpoint(agent, "dev-agent"), now=now, extension_id=agent.id,
            device_id="dev-agent", sip=SipData(call_id=f"call-{tag}@test", from_tag=f"f-{tag}"),
        )  # fmt: skip
        self.emit(session, [second])
        return self.move(session, party.id, PartyStatus.PROCEEDING)

    def answer(self, session: TelephonySession) -> TelephonySession:
        """The agent answers: agent Answered, then caller Answered (destination reached)."""
        agent, caller = _callee(session), _caller(session)
        session = self.move(session, agent.id, PartyStatus.ANSWERED)
        return self.move(session, caller.id, PartyStatus.ANSWERED)

    def hang_up(self, session: TelephonySession, reason: str = "CallFinished") -> TelephonySession:
        session, events = disconnect_all(session, now=self.clock.utcnow(), reason=reason)
        self.emit(session, events)
        return session

    def full_call(self, *, customer: str, agent: Extension, tag: str = "a") -> TelephonySession:
        """Setup/Proceeding → Answered → Disconnected for both parties."""
        session = self.start(customer=customer, agent=agent, tag=tag)
        return self.hang_up(self.answer(session))

    def move(
        self, session: TelephonySession, party_id: str, status: PartyStatus
    ) -> TelephonySession:
        session, event = set_status(session, party_id, status, now=self.clock.utcnow())
        self.emit(session, [event] if event else [])
        return session

    def _publish(self, event: DomainEvent) -> None:
        self.published.append(event)
        self.publish(event)


def _callee(session: TelephonySession) -> Party:
    return next(p for p in session.parties if p.role is PartyRole.CALLEE)


def _caller(session: TelephonySession) -> Party:
    return next(p for p in session.parties if p.role is PartyRole.CALLER)
