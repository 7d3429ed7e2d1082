"""Call legs: one SIP side of a bridged call, and the SIP messages the B2BUA builds for it.

A :class:`Leg` is what the B2BUA knows about one dialog: where requests to it go (the flow),
its dialog once established, its relay stream and SDP versions, and the telephony party it
stands for. Building requests and responses lives here so that the call logic in
:mod:`callwatch.pbx.call` reads as decisions, not header plumbing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from callwatch.media.aio import Endpoint
from callwatch.media.control import MediaControl
from callwatch.pbx.media_sdp import LegMedia, leg_media, parse_sdp
from callwatch.sip.dialog import Dialog, make_dialog_response
from callwatch.sip.events import Address
from callwatch.sip.headers import Headers
from callwatch.sip.message import Request, Response
from callwatch.sip.sdp import SessionDescription
from callwatch.sip.uri import NameAddr, SipUri

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER"


class SipSender(Protocol):
    """The verbs of the SIP endpoint that call legs use."""

    def send_request(self, request: Request, destination: Address) -> str:
        """Start a client transaction; return its key."""
        ...

    def send_response(self, transaction: str, response: Response) -> None:
        """Answer a server transaction."""
        ...

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        """Send an ACK for a 2xx (or a response without a transaction)."""
        ...

    def cancel(self, transaction: str) -> str | None:
        """CANCEL a pending INVITE client transaction."""
        ...


ContactFor = Callable[[str], SipUri]
"""Our Contact URI for a transport name (``UDP``, ``TCP``, ``TLS``)."""


class LegState(enum.Enum):
    """Where a leg's INVITE dialog is."""

    CALLING = "calling"
    EARLY = "early"
    CONFIRMED = "confirmed"
    ENDED = "ended"


@dataclass(eq=False)
class Leg:
    """One SIP side of a call. ``uas`` legs were called by their device; others we called."""

    name: str
    uas: bool
    destination: Address
    invite: Request
    transaction: str
    local_tag: str
    party_id: str | None = None
    state: LegState = LegState.CALLING
    dialog: Dialog | None = None
    endpoint: Endpoint | None = None
    srtp: bool = False
    crypto_tag: int = 1
    sdp_session_id: int = 0
    sdp_version: int = 0
    remote_sdp: SessionDescription | None = None
    local_sdp: SessionDescription | None = None
    device_id: str | None = None
    pending: dict[str, str] = field(default_factory=dict)
    """Client transactions in flight on this leg, key → method."""

    @property
    def call_id(self) -> str:
        """This leg's Call-ID."""
        return self.invite.call_id

    def next_sdp_version(self) -> int:
        """The origin version for the next SDP we send on this leg (RFC 3264 §8)."""
        self.sdp_version += 1
        return self.sdp_version


async def point_at(media: MediaControl, leg: Leg, body: bytes) -> LegMedia:
    """Parse the SDP ``leg`` sent and point its relay stream there (address, RTCP, SRTP key).

    Raises:
        SdpError: the SDP is malformed or carries no usable audio stream.
        MediaError: the relay refused the update.
    """
    sdp = parse_sdp(body)
    media_info = leg_media(sdp)
    assert leg.endpoint is not None, "leg without a relay stream"
    await media.update(
        leg.endpoint.stream_id,
        remote=media_info.address,
        remote_rtcp=media_info.rtcp,
        remote_key=media_info.key,
    )
    leg.remote_sdp = sdp
    return media_info


def build_invite(
    *,
    target: SipUri,
    from_: NameAddr,
    to: NameAddr,
    call_id: str,
    contact: SipUri,
    body: bytes,
    extra: list[tuple[str, str]] | None = None,
) -> Request:
    """A dialog-creating INVITE with an SDP offer (RFC 3261 §8.1.1)."""
    headers = Headers(
        [
            ("From", str(from_)),
            ("To", str(to)),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<{contact}>"),
            ("Allow", ALLOW),
            ("Supported", "replaces, timer"),
            *(extra or []),
            ("Content-Type", "application/sdp"),
        ]
    )
    return Request(headers=headers, body=body, method="INVITE", uri=target)


def answer(
    request: Request,
    local_tag: str,
    status: int,
    contact: SipUri,
    *,
    body: bytes = b"",
    reason: str | None = None,
) -> Response:
    """A 1xx/2xx from us (dialog-establishing, or in a dialog), with SDP when ``body`` is given."""
    headers = [("Allow", ALLOW)]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return make_dialog_response(
        request,
        status,
        local_tag=local_tag,
        contact=contact,
        reason=reason,
        headers=headers,
        body=body,
    )


def in_dialog_request(
    leg: Leg, method: str, *, body: bytes = b"", extra: list[tuple[str, str]] | None = None
) -> Request:
    """A request inside ``leg``'s dialog (BYE, re-INVITE, UPDATE)."""
    assert leg.dialog is not None, "in-dialog request on a leg without a dialog"
    return leg.dialog.create_request(
        method,
        headers=extra or [],
        body=body,
        content_type="application/sdp" if body else None,
    )
