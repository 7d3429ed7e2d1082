"""One monitoring INVITE on a softphone: who it is about and an audio stream per party.

Theory of operation: a :class:`SupervisedCall` wraps the :class:`~callwatch.client.ua_call.UaCall`
of an incoming INVITE whose RTP sockets are bound and whose answer SDP is built. It reads the
RingCentral ids from the INVITE (:mod:`callwatch.client.monitoring`) and makes one
:class:`~callwatch.client.streams.PartyAudio` per negotiated stream, attached to that stream's
RTP socket, all on the supervision's shared timeline (``origin_tick``). It also listens to the
playout clock, and on each tick checks two things by identity — cheap enough for 50 Hz:

- the call ended (BYE, CANCEL, failure): every party stream is closed (readers drain and stop)
  and :meth:`SupervisedCall.ended` returns;
- the peer's SDP changed (a re-INVITE: hold, a codec change, another party's stream added):
  existing streams take the new codec, new streams get new parties. A stream keeps the party it
  was first mapped to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from callwatch.client.call_model import CallState, EndReason
from callwatch.client.monitoring import (
    MonitoringIds,
    party_ids_for_streams,
    requests_auto_answer,
    session_id_from_streams,
)
from callwatch.client.playout import PlayoutClock
from callwatch.client.streams import DEFAULT_MAX_QUEUED, PartyAudio, StreamFormat
from callwatch.client.ua_call import UaCall
from callwatch.sip.headers import Headers
from callwatch.sip.sdp import SessionDescription

__all__ = ["SupervisedCall"]

logger = logging.getLogger(__name__)


class SupervisedCall:
    """A supervisor device's call: RingCentral ids and per-party audio (see module docstring).

    Built by :class:`~callwatch.client.softphone.Softphone`; applications read it.
    """

    def __init__(
        self,
        call: UaCall,
        *,
        clock: PlayoutClock,
        origin_tick: Callable[[str], int],
        sample_rate: int | None = 16000,
        max_queued: int = DEFAULT_MAX_QUEUED,
        on_end: Callable[[SupervisedCall], None] | None = None,
    ) -> None:
        self.sip = call
        """The underlying SIP call (dialog, SDP, RTP sessions, SIP trace)."""
        ids = MonitoringIds.from_headers(call.request_headers)
        self.session_id: str | None = ids.session_id or session_id_from_streams(call.streams)
        """RingCentral telephony session id (None when the INVITE names none)."""
        self.supervisor_party_id: str | None = ids.supervisor_party_id
        """The supervisor's own party in that session (``p-rc-api-ids``)."""
        self.monitored_party_id: str | None = ids.monitored_party_id
        """The party a party-level supervise listens to (``p-rc-api-monitoring-ids``)."""
        self.auto_answer_requested = requests_auto_answer(call.request_headers)
        """Whether the INVITE asked to be answered at once."""
        self.parties: dict[str, PartyAudio] = {}
        """Monitored party id → its audio, in stream order."""
        self.origin_tick = origin_tick(self.session_key)
        """Playout tick at which this supervision's timeline starts (timestamp 0)."""
        self._clock = clock
        self._sample_rate = sample_rate
        self._max_queued = max_queued
        self._on_end = on_end
        self._streams: list[PartyAudio | None] = []
        self._sdp: SessionDescription | None = None
        self._ended: asyncio.Future[EndReason] = asyncio.get_running_loop().create_future()
        self._sync_streams()
        clock.add(self)

    def __repr__(self) -> str:
        return f"<SupervisedCall {self.session_id} parties={list(self.parties)} {self.state.value}>"

    # -- what it is ------------------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """The SIP Call-ID."""
        return self.sip.call_id

    @property
    def session_key(self) -> str:
        """What groups calls of one supervision: the session id, else the Call-ID."""
        return self.session_id or self.sip.call_id

    @property
    def headers(self) -> Headers:
        """The INVITE's headers."""
        return self.sip.request_headers

    @property
    def state(self) -> CallState:
        """RINGING until answered, ESTABLISHED, ENDED."""
        return self.sip.state

    @property
    def party_ids(self) -> list[str]:
        """Monitored party ids, in stream order."""
        return list(self.parties)

    # -- control --------------------------------------------------------------------------------

    async def answer(self) -> None:
        """Answer (200 with our SDP), then send each stream's peer one datagram so a relay or
        NAT that latches on the first packet (symmetric RTP) knows where to send.

        Raises:
            CallFailed: the call is no longer ringing (cancelled, answered, rejected).
        """
        await self.sip.answer()
        for session in self.sip.media.sessions:
            if session.remote is not None and not session.closed:
                session.hello()

    def reject(self, status: int = 486) -> None:
        """Refuse a ringing call with ``status``."""
        self.sip.reject(status)
        self._finish(self.sip.end_reason or EndReason.REJECTED)

    async def hangup(self, *, timeout: float = 2.0) -> int | None:
        """End the call (BYE, or 603 while ringing); returns the peer's final status, if any."""
        status = await self.sip.hangup(timeout=timeout)
        self._finish(self.sip.end_reason or EndReason.LOCAL_BYE)
        return status

    async def ended(self) -> EndReason:
        """Wait until the call ends; its party streams are closed by then."""
        return await asyncio.shield(self._ended)

    @property
    def done(self) -> bool:
        """True once the call ended and its streams were closed."""
        return self._ended.done()

    # -- clock ----------------------------------------------------------------------------------

    def tick(self, index: int, at: float) -> None:
        """Watch the call once per playout tick (called by the clock)."""
        if self.sip.state is CallState.ENDED:
            self._finish(self.sip.end_reason or EndReason.CLOSED)
        elif self.sip.media.remote_sdp is not self._sdp:
            self._sync_streams()

    def close(self) -> None:
        """Stop watching and close every party stream (the SIP call is left alone)."""
        self._finish(EndReason.CLOSED)

    def _finish(self, reason: EndReason) -> None:
        if self._ended.done():
            return
        for party in self.parties.values():
            party.close()
        self._clock.remove(self)
        self._ended.set_result(reason)
        logger.debug("= %s ended: %s", self.call_id, reason.value)
        if self._on_end is not None:
            self._on_end(self)

    def _sync_streams(self) -> None:
        self._sdp = self.sip.media.remote_sdp
        streams = self.sip.streams
        names = party_ids_for_streams(streams, self.monitored_party_id)
        for stream, name in zip(streams, names, strict=True):
            if stream.index < len(self._streams):
                known = self._streams[stream.index]
                if known is not None and stream.encoding:
                    known.set_format(StreamFormat.of(stream))
                continue
            if stream.remote is None or not stream.encoding:  # rejected: no audio will come
                self._streams.append(None)
                continue
            party_id = self._unique(name)
            party = PartyAudio(
                party_id,
                StreamFormat.of(stream),
                clock=self._clock,
                origin_tick=self.origin_tick,
                sample_rate=self._sample_rate,
                max_queued=self._max_queued,
            )
            party.attach(self.sip.media.sessions[stream.index])
            self.parties[party_id] = party
            self._streams.append(party)
            logger.debug("= %s stream %d: party %s", self.call_id, stream.index, party_id)

    def _unique(self, name: str) -> str:
        unique, n = name, 1
        while unique in self.parties:
            n += 1
            unique = f"{name}#{n}"
        return unique
