"""The supervisor's leg of a call: the INVITE to the supervisor's device and its media forks.

Theory of operation (ringcentral-api.md §6.1, the seed's monitoring INVITE). A
:class:`SupervisorLeg` belongs to a :class:`~callwatch.pbx.call.Call` and runs in its task:

1. ``start``: one relay stream per monitored party; an INVITE to the device's most recent
   registration, over its flow, with ``p-rc-api-ids`` (the supervisor party),
   ``p-rc-api-monitoring-ids`` (the monitored party, ``party-id`` first), the auto-answer headers
   unless ``autoAnswer`` is false, and one ``m=audio`` per monitored party labelled with its
   party id (``i=`` as RingCentral writes it, and ``a=label``). Each offers the party's own codec
   first, then OPUS/48000/2 (111), OPUS/16000 (109), G.722, PCMU, PCMA and telephone-event;
   RTP/SAVP with our ``a=crypto`` when the device registered over TLS.
2. The answer decides the forks: a stream the device accepted with the party's codec gets a
   zero-copy fork of that party; with another codec, a transcoding fork; a device that accepted
   fewer streams than offered gets a mix of every monitored party on its first stream.
3. The supervisor party goes Answered/Supervising and the REST request that asked for it gets
   it. A decline or no answer resolves it with an error instead.
4. ``stop`` (REST delete, the device's BYE, or the end of the call) removes the forks, BYEs the
   device (never waiting for its 200) and disconnects the party.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callwatch.media.aio import Endpoint
from callwatch.media.control import MediaError
from callwatch.pbx import sessions as ts
from callwatch.pbx.legs import Leg, LegState, answer, build_invite
from callwatch.pbx.media_sdp import SRTP_SUITE, SdpError, parse_sdp
from callwatch.pbx.supervision import SupervisionRefused
from callwatch.sip.dialog import Dialog
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.offer_answer import (
    G722,
    OPUS,
    OPUS_16000,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    CodecSpec,
    build_session,
    offer_media,
)
from callwatch.sip.sdp import (
    Crypto,
    Direction,
    InlineKey,
    MediaDescription,
    RtpMap,
    SessionDescription,
)
from callwatch.sip.sdp_fields import encode_info_params
from callwatch.sip.uri import NameAddr, SipUri

if TYPE_CHECKING:
    from callwatch.pbx.call import Call, Target

logger = logging.getLogger(__name__)

OFFERED = (OPUS, OPUS_16000, G722, PCMU, PCMA)
"""What every supervisor stream offers after the party's own codec (RingCentral's list)."""


@dataclass(frozen=True, slots=True)
class MonitoredStream:
    """One monitored party and the relay streams involved."""

    party_id: str
    source: int
    """The relay stream that receives this party's audio."""
    codec: RtpMap
    """The codec the party sends."""


class SupervisorLeg:
    """One supervise request's INVITE, dialog, streams and forks."""

    def __init__(
        self,
        call: Call,
        *,
        party_id: str,
        target: Target,
        sip_user: str,
        monitored: list[MonitoredStream],
        auto_answer: bool,
        direction: str,
        answer_timeout: float,
    ) -> None:
        self._call = call
        self.party_id = party_id
        self._target = target
        self._sip_user = sip_user
        self.monitored = monitored
        self._auto_answer = auto_answer
        self._direction = Direction(direction)
        self._answer_timeout = answer_timeout
        self.leg: Leg | None = None
        self.streams: list[Endpoint] = []
        self.forks: list[tuple[int, int]] = []
        self.future: asyncio.Future[ts.Party] = asyncio.get_running_loop().create_future()
        # The supervise request that awaits it may be gone (client disconnected): its refusal
        # is then nobody's to read, and must not be logged as "never retrieved".
        self.future.add_done_callback(_observe)
        self._timer: asyncio.TimerHandle | None = None
        self.ended = False

    # -- set-up -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Allocate the streams and send the INVITE."""
        deps = self._call.deps
        srtp = self._target.srtp
        for stream in self.monitored:
            self.streams.append(await deps.media.allocate(
                remote=None, srtp=srtp, clock_rate=stream.codec.clock_rate,
                label=f"{self._call.session.id} supervisor {stream.party_id}",
            ))  # fmt: skip
        leg = Leg(
            name=f"S-{self.party_id}", uas=False, destination=self._target.destination,
            invite=Request(), transaction="", local_tag=deps.ids.tag(), party_id=self.party_id,
            endpoint=self.streams[0], srtp=srtp, device_id=self._target.device_id,
            sdp_session_id=deps.ids.integer(10**9, 10**10),
        )  # fmt: skip
        contact = deps.contact(leg.destination.transport)
        leg.local_sdp = self._offer(leg)
        leg.invite = build_invite(
            target=self._target.uri,
            from_=self._from().with_tag(leg.local_tag),
            to=NameAddr(SipUri(host=self._target.uri.host, user=self._sip_user)),
            call_id=deps.ids.call_id(contact.host),
            contact=contact,
            body=leg.local_sdp.serialize(),
            extra=self._headers(),
        )
        self.leg = leg
        deps.route(self._call, leg)
        leg.transaction = deps.sender.send_request(leg.invite, leg.destination)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._answer_timeout, self._call.feed_timeout, self)

    def _from(self) -> NameAddr:
        session = self._call.session
        agent = session.party(self.monitored[0].party_id)
        number = agent.to.phone_number if agent.to.extension_id else agent.from_.phone_number
        return NameAddr(
            SipUri(host=self._call.deps.contact("UDP").host, user=number or "anonymous")
        )

    def _headers(self) -> list[tuple[str, str]]:
        session_id = self._call.session.id
        headers = [
            ("p-rc-api-ids", f"party-id={self.party_id};session-id={session_id}"),
            ("p-rc-api-monitoring-ids",
             f"party-id={self.monitored[0].party_id};session-id={session_id}"),
        ]  # fmt: skip
        if self._auto_answer:
            host = self._call.deps.contact("UDP").host
            headers += [
                ("Alert-Info", "Auto Answer"),
                ("Call-Info", f"<sip:{host}>;purpose=info;Answer-After=0"),
            ]
        return headers

    def _offer(self, leg: Leg) -> SessionDescription:
        media: list[MediaDescription] = []
        for stream, endpoint in zip(self.monitored, self.streams, strict=True):
            crypto = None
            if leg.srtp:
                assert endpoint.local_key is not None
                crypto = Crypto.with_key(1, SRTP_SUITE, InlineKey(endpoint.local_key))
            info = encode_info_params({"session-id": self._call.session.id,
                                       "party-id": stream.party_id})  # fmt: skip
            m = offer_media(
                port=endpoint.port, codecs=_codecs(stream.codec),
                proto="RTP/SAVP" if leg.srtp else "RTP/AVP", direction=self._direction,
                info=info, crypto=crypto,
            )  # fmt: skip
            media.append(m.with_attribute("label", stream.party_id))
        return build_session(
            address=self.streams[0].host, media=media, session_id=leg.sdp_session_id,
            session_version=leg.next_sdp_version(), username="callwatch", session_name="callwatch",
        )  # fmt: skip

    # -- the device's answer --------------------------------------------------------------------

    async def on_invite_response(self, response: Response) -> None:
        """A response to our INVITE."""
        leg = self.leg
        if leg is None or response.status < 200:
            return
        if response.status >= 300:
            self._fail(
                SupervisionRefused(
                    "SUP-107", 409, f"The supervisor's device declined ({response.status})"
                )
            )
            return
        if self.ended or self.future.done():
            self._ack(response)
            self._bye()
            return
        self._ack(response)
        leg.state = LegState.CONFIRMED
        try:
            await self._connect(response)
        except (SdpError, MediaError) as exc:
            logger.info("x supervisor answer unusable: %s", exc)
            self._bye()
            self._fail(SupervisionRefused("SUP-107", 409, f"Unusable answer: {exc}"))
            return
        self._stop_timer()
        self._call.set_party(self.party_id, ts.PartyStatus.ANSWERED, "Supervising")
        if not self.future.done():
            self.future.set_result(self._call.session.party(self.party_id))

    async def _connect(self, response: Response) -> None:
        deps = self._call.deps
        answer_sdp = parse_sdp(response.body)
        accepted: list[tuple[int, MediaDescription]] = [
            (i, m) for i, m in enumerate(answer_sdp.media[: len(self.streams)]) if m.port != 0
        ]
        if not accepted:
            raise SdpError("the device accepted no stream")
        for index, media in accepted:
            connection = answer_sdp.connection_for(media)
            host = connection.address if connection is not None else self.streams[index].host
            key = None
            if media.crypto:
                key = media.crypto[0].inline_keys()[0].key_salt
            await deps.media.update(self.streams[index].stream_id, remote=(host, media.port),
                                    remote_key=key)  # fmt: skip
        if len(accepted) < len(self.monitored):
            index, media = accepted[0]
            await self._feed(index, media, self.monitored)
        else:
            for index, media in accepted:
                await self._feed(index, media, [self.monitored[index]])

    async def _feed(
        self, index: int, media: MediaDescription, parties: list[MonitoredStream]
    ) -> None:
        """Point ``parties`` at stream ``index``: a zero-copy fork when one party's codec was
        accepted as is, otherwise a transcoding mix."""
        deps = self._call.deps
        target = self.streams[index].stream_id
        chosen = _answered_codec(media)
        if len(parties) == 1 and chosen is not None and _same_codec(chosen, parties[0].codec):
            await deps.media.fork(parties[0].source, target)
            self.forks.append((parties[0].source, target))
            return
        if chosen is None:
            raise SdpError("the device answered with no codec we offered")
        await deps.media.mix(
            target,
            {p.source: {p.codec.payload_type: _format(p.codec)} for p in parties},
            output=(*_format(chosen), chosen.payload_type),
        )
        self.forks.extend((p.source, target) for p in parties)

    def _ack(self, response: Response) -> None:
        leg = self.leg
        assert leg is not None
        if leg.dialog is None:
            leg.dialog = Dialog.from_uac(leg.invite, response)
            leg.dialog.local_target = self._call.deps.contact(leg.destination.transport)
        self._call.deps.sender.send_stateless(leg.dialog.create_ack(leg.invite.cseq.seq),
                                              leg.destination)  # fmt: skip

    # -- requests from the device ---------------------------------------------------------------

    async def on_request(self, transaction: str, request: Request) -> None:
        """BYE ends supervision; a re-INVITE (hold toggles) is answered with our offer."""
        leg, sender = self.leg, self._call.deps.sender
        assert leg is not None
        if request.method == "BYE":
            sender.send_response(transaction, make_response(request, 200))
            leg.state = LegState.ENDED
            await self.stop(reason="CallFinished", bye=False)
        elif request.method == "INVITE":
            contact = self._call.deps.contact(leg.destination.transport)
            body = leg.local_sdp.serialize() if leg.local_sdp is not None else b""
            sender.send_response(
                transaction, answer(request, leg.local_tag, 200, contact, body=body)
            )
        else:
            sender.send_response(transaction, make_response(request, 200))

    # -- ending -------------------------------------------------------------------------------

    def end_with_call(self) -> None:
        """The call is over: BYE (or CANCEL) the device; the party ends with the call."""
        if self.ended:
            return
        self.ended = True
        self._stop_timer()
        if self.leg is not None and self.leg.state in (LegState.CALLING, LegState.EARLY):
            self._call.deps.sender.cancel(self.leg.transaction)
        self._bye()
        if not self.future.done():
            self.future.set_exception(SupervisionRefused("SUP-106", 409, "The call ended"))

    def timed_out(self) -> None:
        """The device did not answer in time."""
        if self.future.done() or self.leg is None:
            return
        self._call.deps.sender.cancel(self.leg.transaction)
        self._fail(SupervisionRefused("SUP-108", 409, "The supervisor's device did not answer"))

    async def stop(self, *, reason: str = "CallFinished", bye: bool = True) -> None:
        """End supervision: forks removed, the device BYEd, the party disconnected."""
        if self.ended:
            return
        self.ended = True
        self._stop_timer()
        deps = self._call.deps
        for source, target in self.forks:
            with contextlib.suppress(MediaError):
                await deps.media.unfork(source, target)
        self.forks.clear()
        if bye:
            self._bye()
        if self.leg is not None and self.leg.state in (LegState.CALLING, LegState.EARLY):
            deps.sender.cancel(self.leg.transaction)
        self._call.set_party(self.party_id, ts.PartyStatus.DISCONNECTED, reason)
        if not self.future.done():
            self.future.set_exception(SupervisionRefused("SUP-108", 409, "Supervision ended"))

    def _fail(self, error: SupervisionRefused) -> None:
        self._stop_timer()
        self.ended = True
        self._call.set_party(self.party_id, ts.PartyStatus.DISCONNECTED, "Rejected")
        if not self.future.done():
            self.future.set_exception(error)

    def _bye(self) -> None:
        leg = self.leg
        if leg is None or leg.dialog is None or leg.state is LegState.ENDED:
            return
        leg.state = LegState.ENDED
        with contextlib.suppress(Exception):
            key = self._call.deps.sender.send_request(leg.dialog.create_request("BYE"),
                                                      leg.destination)  # fmt: skip
            leg.pending[key] = "BYE"

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _codecs(party: RtpMap) -> list[CodecSpec]:
    """The party's codec (with its payload type) first, then the standard list."""
    own = CodecSpec(party.encoding, party.clock_rate, party.channels,
                    payload_type=party.payload_type)  # fmt: skip
    rest = [c for c in OFFERED if not own.matches(c.rtpmap(c.payload_type or 96))
            and c.payload_type != party.payload_type]  # fmt: skip
    return [own, *rest, TELEPHONE_EVENT]


def _answered_codec(media: MediaDescription) -> RtpMap | None:
    rtpmaps = media.rtpmaps
    for fmt in media.formats:
        if fmt.isdigit() and int(fmt) in rtpmaps:
            rtpmap = rtpmaps[int(fmt)]
            if rtpmap.encoding.lower() != "telephone-event":
                return rtpmap
    return None


def _same_codec(a: RtpMap, b: RtpMap) -> bool:
    return (
        a.encoding.lower() == b.encoding.lower()
        and a.clock_rate == b.clock_rate
        and a.payload_type == b.payload_type
        and (a.channels or 1) == (b.channels or 1)
    )


def _format(codec: RtpMap) -> tuple[str, int, int | None]:
    return (codec.encoding, codec.clock_rate, codec.channels)


def _observe(future: asyncio.Future[ts.Party]) -> None:
    if not future.cancelled():
        future.exception()
