"""Extension presence: user settings plus telephony state aggregated from live sessions (pure).

Theory of operation. RingCentral's presence of an extension (ringcentral-api.md §2.8, §3.4) is
two things: what the user chose (``userStatus``, DND, message and a few flags, set with PUT
presence) and what the phone system sees (``telephonyStatus`` and the ``activeCalls`` list).
:class:`PresenceTracker` keeps both. The pbx feeds it every new state of a telephony session
(:meth:`PresenceTracker.on_session`); the tracker maps each active party owned by an extension to
an :class:`ActiveCall`, recomputes the presence of the extensions that own parties of that
session, and returns a :class:`~callwatch.pbx.events.PresenceChanged` for each extension whose
visible presence changed, with a per-extension ``sequence`` that only grows. Ended sessions are
forgotten.

Mapping of a party's status to the active call's ``telephonyStatus``::

    Setup, Proceeding  → Ringing
    Answered           → CallConnected
    Hold               → OnHold
    Disconnected, Gone → (not an active call)

Aggregation over all active calls of an extension (not only the 7 shown):

- ``telephonyStatus``: the first present of CallConnected > Ringing > OnHold, else NoCall. A user
  talking on one call while another rings is "on a call"; a held call matters only when nothing
  else happens.
- ``presenceStatus``: Busy when ``telephonyStatus`` is not NoCall (a live call shows even for a
  user who chose Offline) or the user chose Busy; Offline when the user chose Offline; else
  Available.

``activeCalls`` holds the :data:`MAX_ACTIVE_CALLS` newest calls, oldest first (as RingCentral's
sample notifications list them); ``total_active_calls`` counts them all.

The pbx must call :meth:`PresenceTracker.on_session` in the order the session changed (it runs
on one event loop, so it does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from callwatch.pbx.errors import InvalidParameter
from callwatch.pbx.events import PresenceChanged
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    Party,
    PartyStatus,
    SipData,
    TelephonySession,
)

MAX_ACTIVE_CALLS = 7
"""``activeCalls`` lists "the latest 7 active calls" (DOCS detailed-extension-presence.md)."""
MAX_MESSAGE_LENGTH = 128
"""Longest custom status ``message`` accepted (our limit; RingCentral publishes none)."""


class PresenceStatus(StrEnum):
    """``userStatus`` (chosen by the user) and ``presenceStatus`` (aggregated)."""

    OFFLINE = "Offline"
    BUSY = "Busy"
    AVAILABLE = "Available"


class DndStatus(StrEnum):
    """``dndStatus``: which calls the extension takes."""

    TAKE_ALL_CALLS = "TakeAllCalls"
    DO_NOT_ACCEPT_DEPARTMENT_CALLS = "DoNotAcceptDepartmentCalls"
    TAKE_DEPARTMENT_CALLS_ONLY = "TakeDepartmentCallsOnly"
    DO_NOT_ACCEPT_ANY_CALLS = "DoNotAcceptAnyCalls"
    UNKNOWN = "Unknown"


class DndStatusPersonal(StrEnum):
    """``dndStatusPersonal`` (SPEC PresenceInfoRequest)."""

    TAKE_ALL_CALLS = "TakeAllCalls"
    DO_NOT_ACCEPT_ANY_CALLS = "DoNotAcceptAnyCalls"


class CallerIdVisibility(StrEnum):
    """``callerIdVisibility``: who sees the caller id of this extension's calls."""

    ALL = "All"
    NONE = "None"
    PERMITTED_USERS = "PermittedUsers"


class TelephonyStatus(StrEnum):
    """``telephonyStatus`` of an active call and of an extension (ParkedCall is never produced)."""

    NO_CALL = "NoCall"
    RINGING = "Ringing"
    CALL_CONNECTED = "CallConnected"
    ON_HOLD = "OnHold"
    PARKED_CALL = "ParkedCall"


_CALL_STATUS: dict[PartyStatus, TelephonyStatus] = {
    PartyStatus.SETUP: TelephonyStatus.RINGING,
    PartyStatus.PROCEEDING: TelephonyStatus.RINGING,
    PartyStatus.ANSWERED: TelephonyStatus.CALL_CONNECTED,
    PartyStatus.HOLD: TelephonyStatus.ON_HOLD,
}
_PRECEDENCE = (TelephonyStatus.CALL_CONNECTED, TelephonyStatus.RINGING, TelephonyStatus.ON_HOLD)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveCall:
    """One active call of an extension (ActiveCallInfo): one party the extension owns."""

    id: str
    """The telephony session id (RingCentral's ``id`` of an active call)."""
    direction: Direction
    from_number: str | None
    """The caller's extension number, else its phone number."""
    from_name: str | None
    to_number: str | None
    """The callee's extension number, else its phone number."""
    to_name: str | None
    start_time: datetime
    telephony_status: TelephonyStatus
    session_id: str
    """Legacy numeric session id."""
    telephony_session_id: str
    party_id: str
    sip_data: SipData | None = None
    """The party's SIP leg; shown only with ``sipData=true``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceSettings:
    """What the user chose (PUT presence); defaults are those of a new RingCentral user."""

    user_status: PresenceStatus = PresenceStatus.AVAILABLE
    dnd_status: DndStatus = DndStatus.TAKE_ALL_CALLS
    dnd_status_personal: DndStatusPersonal | None = None
    message: str | None = None
    allow_see_my_presence: bool = True
    ring_on_monitored_call: bool = False
    pick_up_calls_on_hold: bool = False
    caller_id_visibility: CallerIdVisibility = CallerIdVisibility.ALL
    accept_call_queue_calls: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceState:
    """An extension's presence as GET presence and presence events show it."""

    account_id: int
    extension_id: int
    extension_number: str
    user_status: PresenceStatus
    dnd_status: DndStatus
    dnd_status_personal: DndStatusPersonal | None
    message: str | None
    allow_see_my_presence: bool
    ring_on_monitored_call: bool
    pick_up_calls_on_hold: bool
    caller_id_visibility: CallerIdVisibility
    accept_call_queue_calls: bool
    telephony_status: TelephonyStatus
    """Aggregated over all active calls (see the module docstring)."""
    presence_status: PresenceStatus
    """Aggregated from the telephony status and the user status."""
    active_calls: tuple[ActiveCall, ...]
    """The :data:`MAX_ACTIVE_CALLS` newest active calls, oldest first."""
    total_active_calls: int
    sequence: int
    """Raised by one with every visible change of this extension's presence."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceUpdate:
    """The body of PUT presence: every field optional; enum values as their wire strings.

    Values are checked by :meth:`PresenceTracker.update`, which names the offending field by its
    RingCentral (camelCase) name in :class:`~callwatch.pbx.errors.InvalidParameter`.
    """

    user_status: str | None = None
    dnd_status: str | None = None
    dnd_status_personal: str | None = None
    message: str | None = None
    allow_see_my_presence: bool | None = None
    ring_on_monitored_call: bool | None = None
    pick_up_calls_on_hold: bool | None = None
    caller_id_visibility: str | None = None
    accept_call_queue_calls: bool | None = None


_E = TypeVar("_E", bound=StrEnum)
_C = TypeVar("_C")


@dataclass(slots=True)
class _Identity:
    account_id: int
    extension_number: str


class PresenceTracker:
    """Presence of every extension: settings, active calls and sequence numbers."""

    def __init__(self) -> None:
        self._settings: dict[int, PresenceSettings] = {}
        self._calls: dict[int, dict[str, ActiveCall]] = {}
        """Per extension: party id → active call, in first-seen order."""
        self._owners: dict[str, set[int]] = {}
        """Per live session: the extensions that own parties of it."""
        self._identity: dict[int, _Identity] = {}
        self._sequence: dict[int, int] = {}

    def on_session(self, session: TelephonySession, *, now: datetime) -> list[PresenceChanged]:
        """Take the new state of ``session``; return presence changes, by extension id.

        Args:
            session: the session after a change (from :mod:`callwatch.pbx.sessions`).
            now: the time of the change (``eventTime`` of the events).
        """
        owned = {p.extension_id for p in session.parties if p.extension_id is not None}
        affected = owned | self._owners.pop(session.id, set())
        for party in session.parties:
            self._learn(party)
        before = {ext: self._compose(ext) for ext in affected}
        for ext in affected:
            self._apply(ext, session)
        if session.active and owned:
            self._owners[session.id] = owned
        return [
            event
            for ext in sorted(affected)
            if (event := self._changed(ext, before[ext], now)) is not None
        ]

    def state(self, *, account_id: int, extension_id: int, extension_number: str) -> PresenceState:
        """The presence of an extension (defaults for one never seen before).

        ``account_id`` and ``extension_number`` (from the directory) are remembered for the
        extension's later events; until then they are learnt from the extension's own endpoint
        in its parties.
        """
        self._identity[extension_id] = _Identity(account_id, extension_number)
        return self._compose(extension_id)

    def update(
        self,
        update: PresenceUpdate,
        *,
        account_id: int,
        extension_id: int,
        extension_number: str,
        now: datetime,
    ) -> tuple[PresenceState, PresenceChanged | None]:
        """Apply PUT presence; return the new state and its event if anything visible changed.

        Raises:
            InvalidParameter: an enum value is unknown or ``message`` is too long; nothing is
                changed then.
        """
        self._identity[extension_id] = _Identity(account_id, extension_number)
        before = self._compose(extension_id)
        current = self._settings.get(extension_id, PresenceSettings())
        self._settings[extension_id] = _apply_update(current, update)
        event = self._changed(extension_id, before, now)
        return (event.presence if event else before), event

    def _apply(self, extension_id: int, session: TelephonySession) -> None:
        current: dict[str, ActiveCall] = {}
        for party in session.parties:
            if party.extension_id == extension_id:
                call = _active_call(session, party)
                if call is not None:
                    current[party.id] = call
        calls = self._calls.setdefault(extension_id, {})
        for party_id in [p for p, c in calls.items() if c.id == session.id and p not in current]:
            del calls[party_id]
        calls.update(current)  # known parties keep their place; new ones go last
        if not calls:
            del self._calls[extension_id]

    def _learn(self, party: Party) -> None:
        if party.extension_id is None or party.extension_id in self._identity:
            return
        own = party.from_ if party.direction is Direction.OUTBOUND else party.to
        self._identity[party.extension_id] = _Identity(party.account_id, own.extension_number or "")

    def _changed(
        self, extension_id: int, before: PresenceState, now: datetime
    ) -> PresenceChanged | None:
        after = self._compose(extension_id)
        if after == before:
            return None
        sequence = self._sequence.get(extension_id, 0) + 1
        self._sequence[extension_id] = sequence
        presence = replace(after, sequence=sequence)
        return PresenceChanged(presence=presence, sequence=sequence, event_time=now)

    def _compose(self, extension_id: int) -> PresenceState:
        identity = self._identity.get(extension_id, _Identity(0, ""))
        settings = self._settings.get(extension_id, PresenceSettings())
        calls = sorted(self._calls.get(extension_id, {}).values(), key=lambda c: c.start_time)
        telephony = _aggregate(calls)
        return PresenceState(
            account_id=identity.account_id,
            extension_id=extension_id,
            extension_number=identity.extension_number,
            user_status=settings.user_status,
            dnd_status=settings.dnd_status,
            dnd_status_personal=settings.dnd_status_personal,
            message=settings.message,
            allow_see_my_presence=settings.allow_see_my_presence,
            ring_on_monitored_call=settings.ring_on_monitored_call,
            pick_up_calls_on_hold=settings.pick_up_calls_on_hold,
            caller_id_visibility=settings.caller_id_visibility,
            accept_call_queue_calls=settings.accept_call_queue_calls,
            telephony_status=telephony,
            presence_status=_presence_status(telephony, settings.user_status),
            active_calls=tuple(calls[-MAX_ACTIVE_CALLS:]),
            total_active_calls=len(calls),
            sequence=self._sequence.get(extension_id, 0),
        )


def _active_call(session: TelephonySession, party: Party) -> ActiveCall | None:
    status = _CALL_STATUS.get(party.status)
    if status is None:
        return None
    return ActiveCall(
        id=session.id,
        direction=party.direction,
        from_number=_number(party.from_),
        from_name=party.from_.name,
        to_number=_number(party.to),
        to_name=party.to.name,
        start_time=party.start_time or session.creation_time,
        telephony_status=status,
        session_id=session.session_id,
        telephony_session_id=session.id,
        party_id=party.id,
        sip_data=party.sip,
    )


def _number(endpoint: Endpoint) -> str | None:
    return endpoint.extension_number or endpoint.phone_number


def _aggregate(calls: list[ActiveCall]) -> TelephonyStatus:
    statuses = {call.telephony_status for call in calls}
    return next((s for s in _PRECEDENCE if s in statuses), TelephonyStatus.NO_CALL)


def _presence_status(telephony: TelephonyStatus, user: PresenceStatus) -> PresenceStatus:
    if telephony is not TelephonyStatus.NO_CALL or user is PresenceStatus.BUSY:
        return PresenceStatus.BUSY
    return user


def _apply_update(settings: PresenceSettings, new: PresenceUpdate) -> PresenceSettings:
    old = settings
    return PresenceSettings(
        user_status=_enum(new.user_status, PresenceStatus, "userStatus", old.user_status),
        dnd_status=_enum(new.dnd_status, DndStatus, "dndStatus", old.dnd_status),
        dnd_status_personal=_enum(
            new.dnd_status_personal, DndStatusPersonal, "dndStatusPersonal", old.dnd_status_personal
        ),
        message=old.message if new.message is None else _message(new.message),
        allow_see_my_presence=_pick(new.allow_see_my_presence, old.allow_see_my_presence),
        ring_on_monitored_call=_pick(new.ring_on_monitored_call, old.ring_on_monitored_call),
        pick_up_calls_on_hold=_pick(new.pick_up_calls_on_hold, old.pick_up_calls_on_hold),
        caller_id_visibility=_enum(
            new.caller_id_visibility,
            CallerIdVisibility,
            "callerIdVisibility",
            old.caller_id_visibility,
        ),
        accept_call_queue_calls=_pick(new.accept_call_queue_calls, old.accept_call_queue_calls),
    )


def _enum(value: str | None, enum: type[_E], wire_name: str, current: _C) -> _E | _C:
    if value is None:
        return current
    try:
        return enum(value)
    except ValueError:
        raise _invalid(wire_name) from None


def _pick(value: bool | None, current: bool) -> bool:
    return current if value is None else value


def _message(value: str) -> str:
    if len(value) > MAX_MESSAGE_LENGTH:
        raise _invalid("message")
    return value


def _invalid(wire_name: str) -> InvalidParameter:
    return InvalidParameter(f"Parameter [{wire_name}] value is invalid", parameter=wire_name)
