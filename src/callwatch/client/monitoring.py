"""What a RingCentral-style monitoring INVITE says about itself: the telephony session, the
supervisor's party, the monitored party of each stream, and whether to answer it at once.

Pure functions over headers and negotiated streams (ringcentral-api.md §6.1):

- ``p-rc-api-ids: party-id=<supervisor party>;session-id=<telephony session>``;
- ``p-rc-api-monitoring-ids: party-id=<monitored party>;session-id=…`` — parameter order
  varies between RingCentral's own examples (session-id first) and every consumer's
  assumption (party-id first), so parameters are read by name, never by position;
- per ``m=audio``: ``i=`` carrying base64 ``session-id=…;;party-id=…``, and ``a=label``;
- auto-answer: ``Alert-Info: Auto Answer`` and/or ``Call-Info: <…>;…;Answer-After=0``.

Which party a stream carries: for a single-stream INVITE (party-level supervise, one INVITE per
party in dual channel) the ``p-rc-api-monitoring-ids`` party; otherwise the stream's ``i=``
party, then its ``a=label``, then ``stream-<n>``. Ids are made unique within one call.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from callwatch.client.negotiation import StreamMedia
from callwatch.sip.headers import Headers
from callwatch.sip.sdp import info_params

__all__ = [
    "AutoAnswerPolicy",
    "MonitoringIds",
    "header_params",
    "party_ids_for_streams",
    "requests_auto_answer",
    "session_id_from_streams",
]

MAX_PARAMS = 32
"""Most ``key=value`` parameters read from one header value."""


class AutoAnswerPolicy(enum.Enum):
    """Which incoming INVITEs a softphone answers by itself."""

    ALWAYS = "always"
    """Every INVITE."""
    WITH_HEADERS = "with-headers"
    """INVITEs carrying ``Alert-Info: Auto Answer`` or ``Call-Info …;Answer-After=0``."""
    NEVER = "never"
    """None: the application answers or rejects each call."""

    def answers(self, headers: Headers) -> bool:
        """Whether an INVITE with ``headers`` is answered without asking the application."""
        if self is AutoAnswerPolicy.ALWAYS:
            return True
        return self is AutoAnswerPolicy.WITH_HEADERS and requests_auto_answer(headers)


def header_params(value: str | None) -> dict[str, str]:
    """``key=value`` parameters of a header value separated by ``;`` (order ignored, keys
    lower-cased, surrounding blanks dropped); items without ``=`` are skipped."""
    if not value:
        return {}
    params: dict[str, str] = {}
    for item in value.split(";")[:MAX_PARAMS]:
        key, eq, val = item.partition("=")
        if eq and key.strip():
            params.setdefault(key.strip().lower(), val.strip().strip('"'))
    return params


def requests_auto_answer(headers: Headers) -> bool:
    """True when the INVITE asks to be answered at once (RFC 5373-era vendor headers)."""
    for value in headers.get_all("alert-info"):
        lowered = value.lower()
        if "auto answer" in lowered or "autoanswer" in lowered or "auto-answer" in lowered:
            return True
    for value in headers.get_all("call-info"):
        _, _, params = value.partition(">")
        if header_params(params).get("answer-after") == "0":
            return True
    return False


@dataclass(frozen=True, slots=True)
class MonitoringIds:
    """The RingCentral ids an INVITE to a supervisor device carries (None when absent)."""

    session_id: str | None
    """Telephony session id (``p-rc-api-ids``, else ``p-rc-api-monitoring-ids``)."""
    supervisor_party_id: str | None
    """The supervisor's own party (``p-rc-api-ids``)."""
    monitored_party_id: str | None
    """The party a party-level supervise listens to (``p-rc-api-monitoring-ids``)."""

    @classmethod
    def from_headers(cls, headers: Headers) -> MonitoringIds:
        """Read both headers by parameter name."""
        own = header_params(headers.get("p-rc-api-ids"))
        monitored = header_params(headers.get("p-rc-api-monitoring-ids"))
        return cls(
            session_id=own.get("session-id") or monitored.get("session-id"),
            supervisor_party_id=own.get("party-id"),
            monitored_party_id=monitored.get("party-id"),
        )


def _stream_party(stream: StreamMedia) -> str | None:
    if stream.info:
        party = info_params(stream.info).get("party-id")
        if party:
            return party
    return stream.label or None


def party_ids_for_streams(streams: Sequence[StreamMedia], monitored: str | None) -> list[str]:
    """The party id of each stream, in stream order (see the module docstring)."""
    found: list[str] = []
    for stream in streams:
        party = monitored if len(streams) == 1 and monitored else _stream_party(stream)
        party = party or f"stream-{stream.index}"
        unique, n = party, 1
        while unique in found:
            n += 1
            unique = f"{party}#{n}"
        found.append(unique)
    return found


def session_id_from_streams(streams: Sequence[StreamMedia]) -> str | None:
    """The telephony session named by the first ``i=`` line that has one."""
    for stream in streams:
        session = info_params(stream.info).get("session-id") if stream.info else None
        if session:
            return session
    return None
