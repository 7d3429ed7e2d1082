"""A call's media: its RTP sockets and the offer/answer state between the two sides.

Theory of operation: a :class:`MediaSession` owns one :class:`RtpSession` per audio section,
bound before any description mentions its port, and one SRTP key per socket (used only when a
section is ``RTP/SAVP``). It writes our descriptions — offers (:meth:`MediaSession.make_offer`)
and answers (:meth:`MediaSession.take_offer`) — with one ``o=`` session id and a version that
grows with every new description (RFC 3264 §8), and after each completed exchange points every
socket at the peer's address and keys (:func:`~callwatch.client.negotiation.negotiate`). A
re-offer with more sections than sockets (a supervisor being given another party's stream)
binds more first: call :meth:`MediaSession.prepare_for` before :meth:`MediaSession.take_offer`.
Answers take, per section, our most preferred codec the offer lists — or, with ``offer_order``,
the offer's most preferred one among ours (what a relay can forward without transcoding).
"""

from __future__ import annotations

from collections.abc import Sequence

from callwatch.client.negotiation import StreamMedia, accepted, make_answer, make_offer, negotiate
from callwatch.client.rtp_session import RtpSession
from callwatch.ids import IdGenerator
from callwatch.media.srtp import generate_key_salt
from callwatch.sip.offer_answer import CodecSpec
from callwatch.sip.sdp import Direction, SessionDescription

__all__ = ["MediaSession", "OfferRejected"]

MAX_STREAMS = 16
"""Most audio sections (RTP sockets) one call accepts."""


class OfferRejected(ValueError):
    """No offered section could be accepted (answer with 488, RFC 3264 §6)."""


class MediaSession:
    """RTP sockets plus the SDP offer/answer state of one call (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str,
        codecs: Sequence[CodecSpec],
        ids: IdGenerator,
        offer_order: bool = False,
    ) -> None:
        self.host = host
        self.codecs = tuple(codecs)
        self.offer_order = offer_order
        """Answers follow the offer's codec preference rather than ours."""
        self.sessions: list[RtpSession] = []
        """One RTP socket per audio section, in section order."""
        self.streams: list[StreamMedia] = []
        """What each section negotiated to (empty until an exchange completed)."""
        self.local_sdp: SessionDescription | None = None
        """Our latest description."""
        self.remote_sdp: SessionDescription | None = None
        """The peer's latest description."""
        self.direction = Direction.SENDRECV
        """The direction of our latest description's first section."""
        self.offer_pending = False
        """True between our offer and the peer's answer."""
        self._keys: list[bytes] = []
        self._session_id = ids.integer(1, 2**31 - 1)
        self._version = 0
        self._srtp = False

    async def open(self, count: int = 1, *, srtp: bool = False) -> None:
        """Bind ``count`` sockets (in addition to any already bound); offers use SRTP when
        ``srtp``."""
        self._srtp = srtp
        await self.prepare_for(len(self.sessions) + count)

    async def prepare_for(self, offer: SessionDescription | int) -> None:
        """Bind sockets until there is one per section of ``offer`` (or ``offer`` of them).

        Raises:
            OfferRejected: more than :data:`MAX_STREAMS` sections.
        """
        wanted = offer if isinstance(offer, int) else len(offer.media)
        if wanted > MAX_STREAMS:
            raise OfferRejected(f"{wanted} media sections; at most {MAX_STREAMS}")
        while len(self.sessions) < wanted:
            self.sessions.append(await RtpSession.open(self.host))
            self._keys.append(generate_key_salt())

    def make_offer(self, direction: Direction = Direction.SENDRECV) -> SessionDescription:
        """Our offer: one section per socket, a new version, ``direction`` on every section."""
        self._version += 1
        self.direction = direction
        self.offer_pending = True
        self.local_sdp = make_offer(
            address=self.host,
            ports=[s.port for s in self.sessions],
            codecs=self.codecs,
            keys=[key if self._srtp else None for key in self._keys],
            direction=direction,
            session_id=self._session_id,
            version=self._version,
        )
        return self.local_sdp

    def take_answer(self, answer: SessionDescription) -> list[StreamMedia]:
        """Apply the peer's answer to our latest offer and point the sockets at the peer.

        Raises:
            ValueError: no offer was made, or the answer does not match it.
        """
        if self.local_sdp is None:
            raise ValueError("an answer without an offer")
        streams = negotiate(self.local_sdp, answer, we_offered=True)
        self.remote_sdp, self.offer_pending = answer, False
        self._apply(streams)
        return streams

    def take_offer(
        self, offer: SessionDescription, direction: Direction | None = None
    ) -> SessionDescription:
        """Answer the peer's ``offer`` (sockets must be prepared) and point the sockets at it.

        ``direction`` is what we want; the answer mirrors the offer within it (RFC 3264 §6.1).

        Raises:
            OfferRejected: no section is acceptable, or there are too few sockets.
        """
        if len(offer.media) > len(self.sessions):
            raise OfferRejected("call prepare_for(offer) first")
        count = len(offer.media)
        self._version += 1
        answer = make_answer(
            offer,
            address=self.host,
            ports=[s.port for s in self.sessions[:count]],
            codecs=self.codecs,
            keys=self._keys[:count],
            direction=direction,
            session_id=self._session_id,
            version=self._version,
            offer_order=self.offer_order,
        )
        if not accepted(answer):
            raise OfferRejected("no acceptable audio section in the offer")
        self.local_sdp, self.remote_sdp, self.offer_pending = answer, offer, False
        streams = negotiate(answer, offer, we_offered=False)
        self.direction = streams[0].local_direction
        self._apply(streams)
        return answer

    def _apply(self, streams: list[StreamMedia]) -> None:
        for stream in streams:
            rtp = self.sessions[stream.index]
            old = self.streams[stream.index] if stream.index < len(self.streams) else None
            keys = (stream.send_key, stream.receive_key)
            if old is None or (old.send_key, old.receive_key) != keys:
                rtp.set_srtp(send_key=stream.send_key, receive_key=stream.receive_key)
            if stream.remote is not None and stream.remote != rtp.remote:
                rtp.set_remote(*stream.remote)  # after the keys: held packets are sorted now
        self.streams = streams

    def close(self) -> None:
        """Close every socket (what was received stays readable)."""
        for session in self.sessions:
            session.close()
