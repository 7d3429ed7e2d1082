"""Errors of call control, each mapped by the API to a RingCentral error body and status."""

from __future__ import annotations


class PbxError(Exception):
    """Base class; ``code`` is the RingCentral errorCode, ``status`` the HTTP status."""

    code = "CMN-203"
    status = 500

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class NotFound(PbxError):
    """A session, party or extension does not exist (or is not visible to the caller)."""

    code = "CMN-102"
    status = 404


class Forbidden(PbxError):
    """The caller may not act on this resource (another extension's, without admin rights)."""

    code = "CMN-404"
    status = 403


class InvalidState(PbxError):
    """The resource is not in a state that allows the operation (hold of a ringing party…)."""

    code = "TAS-101"
    status = 409


class InvalidParameter(PbxError):
    """A request value is not acceptable."""

    code = "CMN-101"
    status = 400
