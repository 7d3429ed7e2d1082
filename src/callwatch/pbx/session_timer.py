"""Session timers (RFC 4028) on the caller's leg: negotiate, and end calls nobody refreshes.

When the caller's INVITE asks for a session interval (``Session-Expires``), the 200 repeats it
with ``refresher=uac`` — the caller refreshes with re-INVITE or UPDATE, which the B2BUA answers —
and ``Require: timer`` when the caller supports the extension. An interval below our minimum is
refused with 422 and ``Min-SE`` (§8.1). If no refresh arrives within the interval, the call is
hung up (§10).
"""

from __future__ import annotations

from dataclasses import dataclass

from callwatch.sip.grammar import is_uint
from callwatch.sip.message import Request


class IntervalTooSmall(ValueError):
    """422 Session Interval Too Small; carry ``Min-SE`` in the answer."""


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """The negotiated session interval of a call."""

    interval: int
    """Seconds within which the caller must refresh."""
    required: bool
    """The caller listed ``timer`` in Supported: answer with ``Require: timer``."""

    def headers(self) -> list[tuple[str, str]]:
        """What the 200 to the INVITE carries."""
        headers = [("Session-Expires", f"{self.interval};refresher=uac")]
        if self.required:
            headers.append(("Require", "timer"))
        return headers


def negotiate(request: Request, *, min_se: int) -> SessionTimer | None:
    """The session timer ``request`` asks for, if any.

    Raises:
        IntervalTooSmall: the interval is below ``min_se`` (or below the caller's own Min-SE).
    """
    value = request.headers.get("session-expires")
    if value is None:
        return None
    number = value.split(";", 1)[0].strip()
    if not is_uint(number):
        return None  # malformed: treat as absent rather than refuse the call
    interval = int(number)
    theirs = request.headers.get("min-se")
    floor = max(
        min_se, int(theirs.split(";")[0]) if theirs and is_uint(theirs.split(";")[0].strip()) else 0
    )
    if interval < floor:
        raise IntervalTooSmall(str(floor))
    supported = {t.strip().lower() for t in request.headers.get_all("supported")}
    return SessionTimer(interval=interval, required="timer" in supported)
