"""Errors raised by the SIP core.

Tree::

    SipError
    ├── ParseError (also ValueError)   bytes we received are not a valid message or header
    │   └── MessageTooLarge            a size limit was exceeded (513)
    ├── LocalProtocolError             we were asked to do something the protocol forbids
    └── RemoteProtocolError            the peer did something the protocol forbids

``status_hint`` is the SIP status a server answers with when the error is about a request.
"""

from __future__ import annotations


class SipError(Exception):
    """Base class of every error the SIP core raises."""

    status_hint: int = 500

    def __init__(self, message: str, *, status_hint: int | None = None) -> None:
        super().__init__(message)
        if status_hint is not None:
            self.status_hint = status_hint


class ParseError(SipError, ValueError):
    """Input bytes or text are not valid SIP (RFC 3261 §25) or SDP."""

    status_hint = 400


class MessageTooLarge(ParseError):
    """A message, header section or line exceeded a configured limit (RFC 3261 §21.5.11)."""

    status_hint = 513


class LocalProtocolError(SipError):
    """This side attempted something the protocol state does not allow."""


class RemoteProtocolError(SipError):
    """The peer sent something the protocol state does not allow."""

    status_hint = 400
