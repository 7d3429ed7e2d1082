"""Answering digest challenges as a UAC (RFC 3261 §22.2, RFC 7616, RFC 8760).

:func:`authorization` answers the 401/407 that challenged a request with an ``Authorization``
(401) or ``Proxy-Authorization`` (407) header; :func:`with_header` builds the retry (the next
CSeq number outside a dialog; inside one the dialog numbers it). The answer uses the first
challenge whose algorithm we support (MD5, SHA-256 and their ``-sess`` forms), with ``qop=auth``
when offered. The user agent answers a challenge once; a second challenge for the same request
is a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from callwatch.sip.auth import DigestChallenge, build_credentials
from callwatch.sip.errors import ParseError
from callwatch.sip.headers import CSeq
from callwatch.sip.message import Request, Response

__all__ = ["Credentials", "authorization", "choose_challenge", "with_header"]

SUPPORTED_ALGORITHMS = frozenset({"MD5", "MD5-sess", "SHA-256", "SHA-256-sess"})
_HEADERS = {
    401: ("www-authenticate", "Authorization"),
    407: ("proxy-authenticate", "Proxy-Authorization"),
}


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who we are and how we prove it."""

    username: str
    """The SIP user (From/To user part), e.g. a RingCentral device's ``userName``."""
    auth_username: str
    """The digest username (RingCentral: ``authorizationId``)."""
    password: str

    @classmethod
    def of(cls, value: Credentials | tuple[str, str, str]) -> Credentials:
        """Accept ``(username, auth_username, password)`` tuples too."""
        return value if isinstance(value, Credentials) else cls(*value)


def choose_challenge(response: Response) -> DigestChallenge | None:
    """The first well-formed Digest challenge of a 401/407 with an algorithm we support."""
    names = _HEADERS.get(response.status)
    if names is None:
        return None
    for value in response.headers.get_all(names[0]):
        try:
            challenge = DigestChallenge.parse(value)
        except ParseError:
            continue
        if challenge.algorithm in SUPPORTED_ALGORITHMS:
            return challenge
    return None


def authorization(
    request: Request, response: Response, credentials: Credentials, *, cnonce: str
) -> tuple[str, str] | None:
    """The ``(header name, value)`` answering ``response``'s challenge to ``request``, or None
    if it carries no challenge we can answer."""
    challenge = choose_challenge(response)
    if challenge is None:
        return None
    answer = build_credentials(
        challenge,
        method=request.method,
        uri=str(request.uri),
        username=credentials.auth_username,
        password=credentials.password,
        cnonce=cnonce,
        body=request.body,
    )
    return _HEADERS[response.status][1], answer.serialize()


def with_header(request: Request, header: tuple[str, str], *, next_cseq: bool) -> Request:
    """A copy of ``request`` (without Via) carrying ``header``; ``next_cseq`` bumps the CSeq
    number, as a retry outside a dialog needs (RFC 3261 §8.1.3.5)."""
    headers = request.headers.copy()
    headers.remove("via")
    if next_cseq:
        headers.set("CSeq", str(CSeq(request.cseq.seq + 1, request.method)))
    headers.set(*header)
    return Request(headers=headers, body=request.body, method=request.method, uri=request.uri)
