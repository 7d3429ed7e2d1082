"""Relaying a mid-call offer (re-INVITE or UPDATE with SDP) from one leg to the other.

The offer's media goes to the relay stream of the leg that sent it; the other leg gets the same
codecs and direction pointed at its own relay stream; its answer travels back the same way
(RFC 3264 §8). Only one offer per call is in flight; a second one gets 491 (RFC 3261 §14.2).
A held party (``sendonly``/``inactive`` offer) is reported as Hold.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callwatch.media.control import MediaError
from callwatch.pbx.legs import Leg, LegState, answer, in_dialog_request, point_at
from callwatch.pbx.media_sdp import SdpError, relay_sdp, with_direction
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.sdp import Direction

if TYPE_CHECKING:
    from callwatch.pbx.call import Call


@dataclass(frozen=True, slots=True)
class _Pending:
    origin: Leg | None
    """The leg whose offer we forwarded; None for an offer of our own (hold)."""
    server_transaction: str
    request: Request


class ReinviteRelay:
    """The mid-call offers of one call."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._pending: dict[str, _Pending] = {}

    async def on_offer(self, leg: Leg, transaction: str, request: Request) -> None:
        """``leg`` sent an offer in ``request`` (server transaction ``transaction``)."""
        call, deps = self._call, self._call.deps
        other = call.partner(leg)
        if other is None or other.dialog is None or other.state is not LegState.CONFIRMED:
            deps.sender.send_response(transaction, make_response(request, 491))
            return
        if self._pending:
            deps.sender.send_response(transaction, make_response(request, 491))
            return
        try:
            media = await point_at(deps.media, leg, request.body)
        except (SdpError, MediaError) as exc:
            status = exc.status if isinstance(exc, SdpError) else exc.status_hint
            deps.sender.send_response(transaction, make_response(request, status))
            return
        assert leg.remote_sdp is not None and other.endpoint is not None
        call.direction_changed(leg, media.direction)
        sdp = relay_sdp(
            leg.remote_sdp,
            other.endpoint,
            session_id=other.sdp_session_id,
            version=other.next_sdp_version(),
            srtp=other.srtp,
            crypto_tag=other.crypto_tag,
        )
        other.local_sdp = sdp
        forwarded = in_dialog_request(other, request.method, body=sdp.serialize())
        key = deps.sender.send_request(forwarded, other.destination)
        other.pending[key] = request.method
        self._pending[key] = _Pending(leg, transaction, request)

    def local_offer(self, other: Leg, direction: Direction) -> bool:
        """Send ``other`` our current SDP with ``direction`` (hold/resume); False if busy."""
        if self._pending or other.dialog is None or other.local_sdp is None:
            return False
        sdp = with_direction(other.local_sdp, direction, version=other.next_sdp_version())
        other.local_sdp = sdp
        request = in_dialog_request(other, "INVITE", body=sdp.serialize())
        key = self._call.deps.sender.send_request(request, other.destination)
        other.pending[key] = "INVITE"
        self._pending[key] = _Pending(None, "", request)
        return True

    async def on_response(self, other: Leg, key: str, response: Response) -> None:
        """A response to an offer we forwarded (or made) to ``other``."""
        pending = self._pending.get(key)
        if pending is None or response.status < 200:
            return
        del self._pending[key]
        deps = self._call.deps
        if pending.origin is None:
            await self._own_offer_answered(other, response)
            return
        if response.status >= 300:
            status = response.status if response.status != 408 else 500
            deps.sender.send_response(
                pending.server_transaction, make_response(pending.request, status)
            )
            return
        if pending.request.method == "INVITE" and other.dialog is not None:
            ack = other.dialog.create_ack(response.cseq.seq)
            deps.sender.send_stateless(ack, other.destination)
        await self._relay_answer(pending, other, response)

    async def _own_offer_answered(self, other: Leg, response: Response) -> None:
        if response.status >= 300 or other.dialog is None:
            return
        deps = self._call.deps
        deps.sender.send_stateless(other.dialog.create_ack(response.cseq.seq), other.destination)
        with contextlib.suppress(SdpError, MediaError):
            await point_at(deps.media, other, response.body)

    def timed_out(self, other: Leg, key: str) -> None:
        """The forwarded offer got no answer."""
        pending = self._pending.pop(key, None)
        if pending is not None and pending.origin is not None:
            self._call.deps.sender.send_response(
                pending.server_transaction, make_response(pending.request, 408)
            )

    async def _relay_answer(self, pending: _Pending, other: Leg, response: Response) -> None:
        deps, origin = self._call.deps, pending.origin
        assert origin is not None
        try:
            await point_at(deps.media, other, response.body)
        except (SdpError, MediaError):
            deps.sender.send_response(
                pending.server_transaction, make_response(pending.request, 488)
            )
            return
        assert other.remote_sdp is not None and origin.endpoint is not None
        sdp = relay_sdp(
            other.remote_sdp,
            origin.endpoint,
            session_id=origin.sdp_session_id,
            version=origin.next_sdp_version(),
            srtp=origin.srtp,
            crypto_tag=origin.crypto_tag,
        )
        origin.local_sdp = sdp
        contact = deps.contact(origin.destination.transport)
        reply = answer(pending.request, origin.local_tag, 200, contact, body=sdp.serialize())
        deps.sender.send_response(pending.server_transaction, reply)
