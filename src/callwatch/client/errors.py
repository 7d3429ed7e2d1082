"""Errors of the test/simulator user agent.

::

    UaError
    ├── RegistrationFailed   REGISTER ended with a non-2xx (or timed out: 408, lost flow: 503)
    └── CallFailed           INVITE (or re-INVITE) ended with a non-2xx, timed out or was refused

Local failures carry the status RFC 3261 §8.1.3.1 says a UAC should act on: 408 for a
transaction timeout, 503 for a transport error; ``response`` is None then.
"""

from __future__ import annotations

from callwatch.sip.message import Response

__all__ = ["CallFailed", "RegistrationFailed", "UaError"]


class UaError(Exception):
    """Base class of the user agent's errors; ``status`` is the SIP status that ended it."""

    def __init__(self, status: int, reason: str = "", response: Response | None = None) -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status
        """The final status (408 for a local timeout, 503 for a transport error)."""
        self.reason = reason
        """The reason phrase."""
        self.response = response
        """The final response, None when the failure was local."""


class RegistrationFailed(UaError):
    """REGISTER did not succeed (after at most one digest answer)."""


class CallFailed(UaError):
    """An INVITE did not establish (or refresh) the call."""
