"""What the REST API asks of call control (PbxService implements it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from callwatch.pbx.presence import PresenceState, PresenceUpdate
from callwatch.pbx.sessions import Party, TelephonySession


class Caller(Protocol):
    """Who is asking: the token owner."""

    @property
    def account_id(self) -> int: ...

    @property
    def extension_id(self) -> int: ...

    @property
    def is_admin(self) -> bool: ...


class CallControl(Protocol):
    """Telephony sessions, parties and presence, as the REST API sees them.

    Every method checks that the resource belongs to the caller's account and raises
    :class:`~callwatch.pbx.errors.NotFound` otherwise (never revealing other accounts);
    acting on another extension's party needs that extension or an admin caller
    (:class:`~callwatch.pbx.errors.Forbidden`).
    """

    def get_session(self, caller: Caller, session_id: str) -> TelephonySession:
        """A live session (NotFound once it has ended)."""
        ...

    async def hold(self, caller: Caller, session_id: str, party_id: str) -> Party:
        """Put a party on hold (re-INVITE with a=sendonly to its device)."""
        ...

    async def unhold(self, caller: Caller, session_id: str, party_id: str) -> Party:
        """Take a party off hold."""
        ...

    async def update_party(
        self,
        caller: Caller,
        session_id: str,
        party_id: str,
        *,
        muted: bool | None,
        stand_alone: bool | None,
    ) -> Party:
        """PATCH a party's flags."""
        ...

    async def delete_party(self, caller: Caller, session_id: str, party_id: str) -> None:
        """Remove a party (hang up its leg); for a supervisor party, stops supervision only."""
        ...

    async def drop_session(self, caller: Caller, session_id: str) -> None:
        """Hang up every party of the session."""
        ...

    async def supervise(
        self,
        caller: Caller,
        session_id: str,
        body: Mapping[str, object],
        *,
        party_id: str | None = None,
    ) -> Party:
        """Add the caller as a supervisor (session level, or of ``party_id``); the supervisor
        party once the device answered. Refusals raise PbxError subclasses."""
        ...

    def presence(self, caller: Caller, extension_id: int) -> PresenceState:
        """One extension's presence."""
        ...

    def account_presence(self, caller: Caller) -> list[PresenceState]:
        """Presence of every extension of the caller's account."""
        ...

    def set_presence(
        self, caller: Caller, extension_id: int, update: PresenceUpdate
    ) -> PresenceState:
        """PUT presence (user status, DND, message and flags)."""
        ...
