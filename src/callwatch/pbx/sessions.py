"""Telephony sessions and parties: RingCentral's call model and its status transitions (pure).

Theory of operation. A :class:`TelephonySession` is one call as the REST API and the events show
it: an id (``s-`` + 32 hex), a legacy numeric ``sessionId``, and parties in creation order with
ids ``p-<hex>-<n>``. Every change goes through a function here that returns the new session
(immutable) and the domain event describing the change, with the session's ``sequence`` raised
by one, so subscribers can order events (ringcentral-api.md §3.3).

Party status transitions (CallStatusInfo.code)::

    Setup ──► Proceeding ──► Answered ◄──► Hold
      │           │             │            │
      └───────────┴─────────────┴────────────┴──► Disconnected or Gone   (terminal)

A party may also keep its status and change only its reason (Answered → Answered/Supervising).

A callee party reaches Answered only when its 200 OK arrives; the caller's party reaches Answered
then too ("destination reached"). Illegal transitions raise :class:`IllegalTransition`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from callwatch.pbx.events import PartyStatusChanged


class IllegalTransition(ValueError):
    """A party cannot move from its status to the one asked for."""


class PartyStatus(StrEnum):
    """CallStatusInfo.code values callwatch produces."""

    SETUP = "Setup"
    PROCEEDING = "Proceeding"
    ANSWERED = "Answered"
    HOLD = "Hold"
    DISCONNECTED = "Disconnected"
    GONE = "Gone"


class Direction(StrEnum):
    """Party direction, from the party's own point of view."""

    INBOUND = "Inbound"
    OUTBOUND = "Outbound"


class PartyRole(StrEnum):
    """What a party is in the call (ours, not RingCentral's)."""

    CALLER = "caller"
    CALLEE = "callee"
    SUPERVISOR = "supervisor"


_ENDINGS = (PartyStatus.DISCONNECTED, PartyStatus.GONE)
_TRANSITIONS: dict[PartyStatus, frozenset[PartyStatus]] = {
    PartyStatus.SETUP: frozenset({PartyStatus.PROCEEDING, PartyStatus.ANSWERED, *_ENDINGS}),
    PartyStatus.PROCEEDING: frozenset({PartyStatus.ANSWERED, *_ENDINGS}),
    PartyStatus.ANSWERED: frozenset({PartyStatus.HOLD, *_ENDINGS}),
    PartyStatus.HOLD: frozenset({PartyStatus.ANSWERED, *_ENDINGS}),
    PartyStatus.DISCONNECTED: frozenset(),
    PartyStatus.GONE: frozenset(),
}
TERMINAL = frozenset({PartyStatus.DISCONNECTED, PartyStatus.GONE})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a party (PartyInfo): who calls or is called."""

    phone_number: str | None = None
    name: str | None = None
    extension_id: int | None = None
    extension_number: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class SipData:
    """The SIP identity of a party's leg (``sipData`` in events and presence)."""

    call_id: str
    from_tag: str
    to_tag: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """A participant of a telephony session."""

    id: str
    account_id: int
    role: PartyRole
    direction: Direction
    from_: Endpoint
    to: Endpoint
    status: PartyStatus = PartyStatus.SETUP
    reason: str | None = None
    extension_id: int | None = None
    """The extension that owns this party (None for an external caller)."""
    device_id: str | None = None
    muted: bool = False
    stand_alone: bool = False
    sip: SipData | None = None
    monitored: tuple[str, ...] = ()
    """For a supervisor party: the party ids it listens to."""
    start_time: datetime | None = None

    @property
    def active(self) -> bool:
        """True until the party is Disconnected or Gone."""
        return self.status not in TERMINAL


@dataclass(frozen=True, slots=True)
class TelephonySession:
    """One call: its ids, parties and event sequence."""

    id: str
    session_id: str
    account_id: int
    creation_time: datetime
    origin: str = "Call"
    server_id: str = "callwatch.TAM"
    parties: tuple[Party, ...] = ()
    sequence: int = 0
    _next_party: int = field(default=1, repr=False)

    def party(self, party_id: str) -> Party:
        """The party with ``party_id``.

        Raises:
            KeyError: no such party in this session.
        """
        for party in self.parties:
            if party.id == party_id:
                return party
        raise KeyError(party_id)

    def parties_of(self, extension_id: int) -> list[Party]:
        """Parties owned by an extension."""
        return [p for p in self.parties if p.extension_id == extension_id]

    @property
    def active(self) -> bool:
        """True while any party is active."""
        return any(p.active for p in self.parties)

    @property
    def hex_id(self) -> str:
        """The hex part shared by the session id and its party ids."""
        return self.id[2:]


def new_session(
    *, hex_id: str, session_id: str, account_id: int, now: datetime
) -> TelephonySession:
    """A session with no parties yet; ``hex_id`` is 32 hex digits from the id generator."""
    return TelephonySession(
        id=f"s-{hex_id}", session_id=session_id, account_id=account_id, creation_time=now
    )


def add_party(
    session: TelephonySession,
    *,
    role: PartyRole,
    direction: Direction,
    from_: Endpoint,
    to: Endpoint,
    now: datetime,
    status: PartyStatus = PartyStatus.SETUP,
    reason: str | None = None,
    extension_id: int | None = None,
    device_id: str | None = None,
    sip: SipData | None = None,
    monitored: tuple[str, ...] = (),
) -> tuple[TelephonySession, Party, PartyStatusChanged]:
    """Add a party; return the new session, the party and its first event."""
    party = Party(
        id=f"p-{session.hex_id}-{session._next_party}",
        account_id=session.account_id,
        role=role,
        direction=direction,
        from_=from_,
        to=to,
        status=status,
        reason=reason,
        extension_id=extension_id,
        device_id=device_id,
        sip=sip,
        monitored=monitored,
        start_time=now,
    )
    updated = replace(
        session,
        parties=(*session.parties, party),
        sequence=session.sequence + 1,
        _next_party=session._next_party + 1,
    )
    return updated, party, _event(updated, party.id, now)


def set_status(
    session: TelephonySession,
    party_id: str,
    status: PartyStatus,
    *,
    now: datetime,
    reason: str | None = None,
) -> tuple[TelephonySession, PartyStatusChanged | None]:
    """Move a party to ``status`` (or change only its reason); no event for a no-op.

    Raises:
        KeyError: unknown party.
        IllegalTransition: the move is not in the transition table.
    """
    party = session.party(party_id)
    if party.status == status and party.reason == reason:
        return session, None
    if party.status != status and status not in _TRANSITIONS[party.status]:
        raise IllegalTransition(f"party {party_id}: {party.status} → {status} is not allowed")
    return _update(session, replace(party, status=status, reason=reason), now)


def update_party(
    session: TelephonySession,
    party_id: str,
    *,
    now: datetime,
    muted: bool | None = None,
    stand_alone: bool | None = None,
    sip: SipData | None = None,
    device_id: str | None = None,
) -> tuple[TelephonySession, PartyStatusChanged | None]:
    """Change a party's flags, SIP data or device; an event only if something changed."""
    party = session.party(party_id)
    changed = replace(
        party,
        muted=party.muted if muted is None else muted,
        stand_alone=party.stand_alone if stand_alone is None else stand_alone,
        sip=party.sip if sip is None else sip,
        device_id=party.device_id if device_id is None else device_id,
        to=party.to if device_id is None else replace(party.to, device_id=device_id),
    )
    if changed == party:
        return session, None
    return _update(session, changed, now)


def disconnect_all(
    session: TelephonySession, *, now: datetime, reason: str | None = None
) -> tuple[TelephonySession, list[PartyStatusChanged]]:
    """Disconnect every active party (in creation order); return the events."""
    events: list[PartyStatusChanged] = []
    for party in session.parties:
        if party.active:
            session, event = set_status(
                session, party.id, PartyStatus.DISCONNECTED, now=now, reason=reason
            )
            if event is not None:
                events.append(event)
    return session, events


def _update(
    session: TelephonySession, party: Party, now: datetime
) -> tuple[TelephonySession, PartyStatusChanged]:
    parties = tuple(party if p.id == party.id else p for p in session.parties)
    updated = replace(session, parties=parties, sequence=session.sequence + 1)
    return updated, _event(updated, party.id, now)


def _event(session: TelephonySession, party_id: str, now: datetime) -> PartyStatusChanged:
    return PartyStatusChanged(
        session=session, party_id=party_id, sequence=session.sequence, event_time=now
    )
