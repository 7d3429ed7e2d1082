"""Event filters: parse, resolve and match RingCentral event-filter URIs (pure).

Theory of operation. A subscription names what it wants with filter URIs
(ringcentral-api.md §3.2)::

    /restapi/v1.0/account/{a}/telephony/sessions[?params]
    /restapi/v1.0/account/{a}/extension/{e}/telephony/sessions[?params]
    /restapi/v1.0/account/{a}/extension/{e}/presence[?detailedTelephonyState=…&sipData=…]
    /restapi/v1.0/account/{a}/presence[?detailedTelephonyState=…&sipData=…]

``{a}`` and ``{e}`` are ``~`` (the subscriber's own account or extension) or a decimal id; the
``/restapi/v1.0`` prefix may be omitted, as older RingCentral samples do. Telephony-session
parameters are ``statusCode``, ``direction``, ``phoneNumber``, ``missedCall``, ``sipData`` and
``withRecordings``. :meth:`EventFilter.parse` returns a fully built filter or raises
:class:`InvalidFilter` with a precise message — never another exception, whatever the input
(hypothesis-tested). Rules, strict on purpose (a typo must not silently widen a subscription):
unknown or repeated parameters, parameters of the other kind, a parameter without ``=``, and
values outside their domain are invalid; booleans are ``true``/``false`` in any case; values are
percent-decoded but ``+`` stays a plus (E.164 numbers).

:meth:`EventFilter.resolve` replaces ``~`` by the subscriber's ids; :meth:`EventFilter.serialize`
gives the canonical URI (prefix always present, parameters in a fixed order), which is both what
a subscription lists in ``eventFilters`` and the ``event`` of its notifications.

Matching (:func:`match_session`, :func:`match_presence`) takes a resolved filter and the facts
of one domain event. A telephony-session notification is about one changed party: an
extension-level filter matches only changes of that extension's parties and the notification
carries only that extension's parties; an account-level filter matches every party of the
account and carries them all. The parameters test the changed party.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final
from urllib.parse import quote, unquote

from callwatch.pbx.presence import PresenceState
from callwatch.pbx.sessions import Direction, Party, TelephonySession

API_PREFIX: Final = "/restapi/v1.0"
CURRENT: Final = "~"
MAX_FILTER_LENGTH: Final = 1024
"""Longest filter accepted (ours; RingCentral publishes none)."""
MAX_ID: Final = 2**63 - 1
STATUS_CODES: Final = frozenset(
    {
        "Setup", "Proceeding", "Answered", "Disconnected", "Gone", "Parked", "Hold",
        "VoiceMail", "FaxReceive", "Tds", "VoiceMailScreening",
    }
)  # fmt: skip
"""CallStatusInfo.code values (ringcentral-api.md §2.9)."""
DIRECTIONS: Final = frozenset({"Inbound", "Outbound"})
_PHONE = re.compile(r"\+?[0-9]{1,20}")
_ID = re.compile(r"[0-9]{1,19}")


class InvalidFilter(ValueError):
    """A filter URI that callwatch does not accept; ``str()`` says why."""


class FilterKind(StrEnum):
    """What a filter subscribes to (the last path segments)."""

    TELEPHONY_SESSIONS = "telephony/sessions"
    PRESENCE = "presence"


_PARAMETERS: Final = {
    FilterKind.TELEPHONY_SESSIONS: (
        "statusCode", "direction", "phoneNumber", "missedCall", "sipData", "withRecordings",
    ),
    FilterKind.PRESENCE: ("detailedTelephonyState", "sipData"),
}  # fmt: skip
"""Accepted parameters per kind, in canonical (serialization) order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    """One parsed event filter; ids are None while they are ``~``."""

    kind: FilterKind
    account_id: int | None
    extension_level: bool
    extension_id: int | None = None
    status_code: str | None = None
    direction: str | None = None
    phone_number: str | None = None
    missed_call: bool | None = None
    sip_data: bool | None = None
    with_recordings: bool | None = None
    detailed: bool | None = None
    """``detailedTelephonyState`` (presence only)."""

    @classmethod
    def parse(cls, text: str) -> EventFilter:
        """Parse a filter URI.

        Raises:
            InvalidFilter: the text is not a supported filter (the message says what is wrong).
        """
        if len(text) > MAX_FILTER_LENGTH:
            raise InvalidFilter(f"longer than {MAX_FILTER_LENGTH} characters")
        path, _, query = text.partition("?")
        base = _parse_path(path)
        return _with_parameters(base, _parse_query(base.kind, query))

    @property
    def resolved(self) -> bool:
        """True when no id is ``~`` any more."""
        return self.account_id is not None and (
            not self.extension_level or self.extension_id is not None
        )

    def resolve(self, *, account_id: int, extension_id: int) -> EventFilter:
        """This filter with ``~`` replaced by the subscriber's account and extension."""
        return replace(
            self,
            account_id=account_id if self.account_id is None else self.account_id,
            extension_id=extension_id
            if self.extension_level and self.extension_id is None
            else self.extension_id,
        )

    def serialize(self) -> str:
        """The canonical URI (``~`` kept where unresolved)."""
        path = f"{API_PREFIX}/account/{_id_text(self.account_id)}"
        if self.extension_level:
            path += f"/extension/{_id_text(self.extension_id)}"
        pairs = [
            f"{name}={_value_text(value)}"
            for name in _PARAMETERS[self.kind]
            if (value := getattr(self, _ATTRIBUTES[name])) is not None
        ]
        return f"{path}/{self.kind.value}" + (f"?{'&'.join(pairs)}" if pairs else "")

    def __str__(self) -> str:
        return self.serialize()


_ATTRIBUTES: Final = {
    "statusCode": "status_code",
    "direction": "direction",
    "phoneNumber": "phone_number",
    "missedCall": "missed_call",
    "sipData": "sip_data",
    "withRecordings": "with_recordings",
    "detailedTelephonyState": "detailed",
}


def parse_filters(texts: list[str] | tuple[str, ...]) -> tuple[list[EventFilter], list[str]]:
    """Parse every filter; return the parsed ones and the texts that failed."""
    parsed: list[EventFilter] = []
    invalid: list[str] = []
    for text in texts:
        try:
            parsed.append(EventFilter.parse(text))
        except InvalidFilter:
            invalid.append(text)
    return parsed, invalid


def _parse_path(path: str) -> EventFilter:
    rest = path.removeprefix(API_PREFIX)
    if not rest.startswith("/account/"):
        raise InvalidFilter("path must start with /restapi/v1.0/account/")
    segments = rest[1:].split("/")
    account = _parse_id(segments[1], "account")
    tail = segments[2:]
    extension: int | None = None
    extension_level = len(tail) >= 2 and tail[0] == "extension"
    if extension_level:
        extension = _parse_id(tail[1], "extension")
        tail = tail[2:]
    kind = {"telephony/sessions": FilterKind.TELEPHONY_SESSIONS, "presence": FilterKind.PRESENCE}
    found = kind.get("/".join(tail))
    if found is None:
        raise InvalidFilter("unsupported event (telephony/sessions or presence expected)")
    return EventFilter(
        kind=found, account_id=account, extension_level=extension_level, extension_id=extension
    )


def _parse_id(segment: str, what: str) -> int | None:
    if segment == CURRENT:
        return None
    if not _ID.fullmatch(segment) or int(segment) > MAX_ID:
        raise InvalidFilter(f"{what} id must be ~ or a decimal id")
    return int(segment)


def _parse_query(kind: FilterKind, query: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        name, equals, raw = pair.partition("=")
        if not equals:
            raise InvalidFilter(f"parameter {name!r} has no value")
        if name not in _PARAMETERS[kind]:
            raise InvalidFilter(f"parameter {name!r} is not supported for {kind.value}")
        if name in values:
            raise InvalidFilter(f"parameter {name!r} is repeated")
        values[name] = _decode(raw, name)
    return values


def _with_parameters(base: EventFilter, raw: dict[str, str]) -> EventFilter:
    return replace(
        base,
        status_code=_choice(raw, "statusCode", STATUS_CODES),
        direction=_choice(raw, "direction", DIRECTIONS),
        phone_number=_phone(raw),
        missed_call=_flag(raw, "missedCall"),
        sip_data=_flag(raw, "sipData"),
        with_recordings=_flag(raw, "withRecordings"),
        detailed=_flag(raw, "detailedTelephonyState"),
    )


def _decode(raw: str, name: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidFilter(f"parameter {name!r} is not valid percent-encoded UTF-8") from None


def _flag(raw: dict[str, str], name: str) -> bool | None:
    value = raw.get(name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidFilter(f"{name} must be true or false")
    return lowered == "true"


def _choice(raw: dict[str, str], name: str, allowed: frozenset[str]) -> str | None:
    value = raw.get(name)
    if value is not None and value not in allowed:
        raise InvalidFilter(f"{name} must be one of {', '.join(sorted(allowed))}")
    return value


def _phone(raw: dict[str, str]) -> str | None:
    value = raw.get("phoneNumber")
    if value is not None and not _PHONE.fullmatch(value):
        raise InvalidFilter("phoneNumber must be digits with an optional leading +")
    return value


def _id_text(value: int | None) -> str:
    return CURRENT if value is None else str(value)


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe="+")


# -- matching ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionChange:
    """The facts a telephony-session filter is matched against."""

    session: TelephonySession
    party: Party
    """The party whose change the event reports."""
    missed: bool
    """The changed party is an inbound party that ended without ever being answered."""


def match_session(event_filter: EventFilter, change: SessionChange) -> tuple[Party, ...] | None:
    """The parties a notification for ``change`` carries, or None if the filter does not match.

    Raises:
        ValueError: the filter is not resolved or not a telephony-session filter.
    """
    _require(event_filter, FilterKind.TELEPHONY_SESSIONS)
    session, party = change.session, change.party
    if session.account_id != event_filter.account_id:
        return None
    if event_filter.extension_level and party.extension_id != event_filter.extension_id:
        return None
    if not _parameters_match(event_filter, party, change.missed):
        return None
    if not event_filter.extension_level:
        return session.parties
    return tuple(p for p in session.parties if p.extension_id == event_filter.extension_id)


def match_presence(event_filter: EventFilter, presence: PresenceState) -> bool:
    """True if a presence change of ``presence`` is wanted by the filter.

    Raises:
        ValueError: the filter is not resolved or not a presence filter.
    """
    _require(event_filter, FilterKind.PRESENCE)
    if presence.account_id != event_filter.account_id:
        return False
    return not event_filter.extension_level or presence.extension_id == event_filter.extension_id


def _parameters_match(event_filter: EventFilter, party: Party, missed: bool) -> bool:
    f = event_filter
    if f.status_code is not None and party.status.value != f.status_code:
        return False
    if f.direction is not None and Direction(f.direction) is not party.direction:
        return False
    if f.phone_number is not None and not _has_number(party, f.phone_number):
        return False
    if f.missed_call is not None and f.missed_call is not missed:
        return False
    return not f.with_recordings  # callwatch records nothing: withRecordings=true never matches


def _has_number(party: Party, number: str) -> bool:
    wanted = number.removeprefix("+")
    return any(
        candidate is not None and candidate.removeprefix("+") == wanted
        for end in (party.from_, party.to)
        for candidate in (end.phone_number, end.extension_number)
    )


def _require(event_filter: EventFilter, kind: FilterKind) -> None:
    if event_filter.kind is not kind:
        raise ValueError(f"{event_filter} is not a {kind.value} filter")
    if not event_filter.resolved:
        raise ValueError(f"{event_filter} is not resolved")
