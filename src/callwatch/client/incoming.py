"""Answering a received INVITE or re-INVITE: our SDP for it, and the dialog response.

:func:`sdp_for_invite` gives the description that goes into our 200: the answer to the offer
(binding more RTP sockets first if the offer has more sections than we have), or, for an INVITE
without a body, our own offer — the peer then answers in its ACK (RFC 3261 §13.2.1, RFC 3264
§4). :func:`refusal_status` maps why that failed to the status to refuse with.
"""

from __future__ import annotations

from callwatch.client.call_model import ALLOW, SDP
from callwatch.client.media_session import MediaSession
from callwatch.sip.dialog import make_dialog_response
from callwatch.sip.errors import ParseError
from callwatch.sip.message import Request, Response
from callwatch.sip.sdp import SessionDescription
from callwatch.sip.uri import SipUri

__all__ = ["invite_response", "refusal_status", "sdp_for_invite"]


async def sdp_for_invite(media: MediaSession, request: Request) -> SessionDescription:
    """Our SDP for the 200 to ``request`` (see the module docstring).

    Raises:
        ParseError: the offer is malformed.
        OfferRejected: no offered section is acceptable.
    """
    if not request.body:
        if not media.sessions:
            await media.open(1)
        return media.make_offer(media.direction)
    offer = SessionDescription.parse(request.body)
    await media.prepare_for(offer)
    return media.take_offer(offer)


def refusal_status(error: Exception) -> int:
    """400 for a malformed offer, 488 Not Acceptable Here otherwise (RFC 3261 §21.4.26)."""
    return 400 if isinstance(error, ParseError) else 488


def invite_response(
    request: Request, status: int, *, local_tag: str, contact: SipUri, body: bytes = b""
) -> Response:
    """A response to an INVITE that establishes or refreshes the dialog: To tag, Contact,
    Record-Route, Allow and, with a body, ``Content-Type: application/sdp``."""
    headers = [("Allow", ALLOW)] + ([("Content-Type", SDP)] if body else [])
    return make_dialog_response(
        request, status, local_tag=local_tag, contact=contact, headers=headers, body=body
    )
