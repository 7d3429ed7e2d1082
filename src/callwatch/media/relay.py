"""The RTP relay core: streams, symmetric latching, bridging, SRTP translation and forks.

Theory of operation
-------------------
A :class:`Stream` is one leg's media endpoint on the relay: a local RTP port (RTCP on the next
port, or on the same one with rtcp-mux), the leg's address from SDP (a *hint*), the address it
*latched* on, its SRTP contexts and its counters. Two streams are *paired* (a bridge): what
arrives on one is sent out of the other's socket to the other's remote, so each phone sees
packets come from the very port it was told in SDP (symmetric RTP, RFC 4961).

Latching (the RTP Bleed defence). Before a stream latches, the first *valid* RTP packet from
any source — fully parsed, and on an SRTP leg authenticated — latches it; the SDP address is
only a hint because NATs and softphones routinely advertise the wrong one, and non-RTP
datagrams (a softphone's ``hello``) are counted as garbage and ignored. We deliberately do not
prefer a source matching the SDP address: doing so needs a re-learning window, and any window
in which a second source can take over the stream is exactly the bug class we defend against.
After latching, datagrams from every other address are counted as ``strangers`` and dropped:
they never move the latch, are never forwarded and never answered. Until a stream latches, it
sends only to its SDP address; a signalled address change (re-INVITE) resets the latch. RTCP
latches on its own port the same way, but only from the RTP latch's host once that exists.

Hot path. :meth:`Stream.receive_rtp` is called by the I/O adapter for every datagram, with the
arrival time. The common case is one tuple compare (latched source), three cheap byte checks,
one ``struct.unpack_from`` for (seq, ts, SSRC) feeding :class:`ReceiveStats`, and one
``sendto`` on the partner's raw socket — no logging, no awaits, no dict look-ups, no parsing
into objects, and the datagram's ``bytes`` are forwarded without a copy. Only SRTP translation
(libsrtp, one buffer each way) and forks (one ``bytearray`` copy re-stamped in place) allocate.
Anything unusual (unlatched, stranger, garbage, RTCP on a mux port) leaves through a slow-path
method. Send failures are counted and dropped, never retried or awaited, so a slow or dead
supervisor can never hold up the call's own media, which is always sent first.

Forks. :meth:`Relay.add_fork` sends every packet a monitored stream *receives* also out of a
target stream (the supervisor's stream for that party), re-stamped by the target's
:class:`~callwatch.media.stream.Fork` so the supervisor sees one continuous stream (its own
SSRC, sequence and timestamp), even when the party's SSRC changes or the fork is moved to
another party. That is the zero-copy path, for a device that accepted the party's codec.
:meth:`Relay.add_mix` is the other one: the target's output is decoded, mixed and re-encoded
from one or more sources every 20 ms (:mod:`callwatch.media.mixfork`) — a transcoder for a
device that answered another codec, a mix for one that took a single stream. Both kinds hang
off a source as *feeds* (called after the call's own send) and off the target as its
:class:`~callwatch.media.stream.Fork`, which owns the output identity either way; removing a
source, a target or the fork tears down exactly the wiring that involved it.

The core never touches sockets or clocks: sends go through injected callables and ``now`` is
passed in, so everything here is tested without I/O.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping

from callwatch.media.codecs.base import CodecError
from callwatch.media.mixfork import ForkMode, MixFork, MixStats
from callwatch.media.ports import MediaLimitError, MediaStateError, UnknownStream
from callwatch.media.srtp import SrtpContext
from callwatch.media.stats import RelayTotals, StreamStats
from callwatch.media.stream import Address, Fork, SendTo, Stream
from callwatch.media.transcode import (
    OutputSpec,
    SourceFormat,
    UnsupportedFormat,
    resolve_output,
    resolve_source,
)

__all__ = ["MAX_FORKS_PER_STREAM", "MAX_STREAMS", "Address", "Fork", "Relay", "SendTo", "Stream"]

MAX_STREAMS = 16384
"""Streams one relay holds at most (8192 two-party calls)."""
MAX_FORKS_PER_STREAM = 4
"""Supervisor forks (zero-copy or mix inputs) one monitored stream may feed at once."""


class Relay:
    """The table of streams and their wiring (bridges and forks).

    Args:
        max_streams: limit on streams held at once.
        rng: source of fork SSRCs and initial sequence numbers (seed it in tests).
    """

    def __init__(self, *, max_streams: int = MAX_STREAMS, rng: random.Random | None = None) -> None:
        self._streams: dict[int, Stream] = {}
        self._next_id = 1
        self._max_streams = max_streams
        self._rng = rng or random.Random()

    def add_stream(
        self,
        *,
        port: int,
        rtp_send: SendTo,
        rtcp_send: SendTo | None = None,
        remote: Address | None = None,
        remote_rtcp: Address | None = None,
        srtp_in: SrtpContext | None = None,
        srtp_out: SrtpContext | None = None,
        clock_rate: int = 8000,
        now: float,
        label: str = "",
    ) -> Stream:
        """Create a stream whose sockets send through ``rtp_send`` / ``rtcp_send``.

        ``rtcp_send=None`` means rtcp-mux: RTCP shares the RTP port. ``remote`` is the leg's
        SDP address (a hint until the leg latches). ``srtp_in`` unprotects what the leg sends,
        ``srtp_out`` protects what we send it; both ``None`` for a plain RTP leg.

        Raises:
            MediaLimitError: the relay already holds ``max_streams`` streams.
        """
        if len(self._streams) >= self._max_streams:
            raise MediaLimitError(f"relay holds its maximum of {self._max_streams} streams")
        stream = Stream(
            self._next_id, port=port, rtp_send=rtp_send, rtcp_send=rtcp_send,
            srtp_in=srtp_in, srtp_out=srtp_out, clock_rate=clock_rate, now=now, label=label,
        )  # fmt: skip
        stream.set_remote(remote, remote_rtcp)
        self._streams[stream.stream_id] = stream
        self._next_id += 1
        return stream

    def get(self, stream_id: int) -> Stream:
        """The stream with that id.

        Raises:
            UnknownStream: no such stream.
        """
        try:
            return self._streams[stream_id]
        except KeyError:
            raise UnknownStream(f"no media stream {stream_id}") from None

    def __iter__(self) -> Iterator[Stream]:
        return iter(list(self._streams.values()))

    def __len__(self) -> int:
        return len(self._streams)

    def remove_stream(self, stream_id: int) -> Stream:
        """Remove a stream, its bridge and every fork or mix it feeds or is fed by; returns it."""
        stream = self.get(stream_id)
        self.unpair(stream_id)
        for feed in stream._feeds:
            self.remove_fork(stream_id, feed.target.stream_id)
        if stream._fork is not None and stream._fork.source is not None:
            self.remove_fork(stream._fork.source.stream_id, stream_id)
        self.remove_mix(stream_id)
        del self._streams[stream_id]
        return stream

    def pair(self, a: int, b: int) -> None:
        """Bridge two streams both ways, replacing any bridge either had.

        Raises:
            UnknownStream: either id is unknown.
            MediaStateError: ``a == b``, or either stream is a fork target.
        """
        first, second = self.get(a), self.get(b)
        if first is second:
            raise MediaStateError(f"cannot bridge stream {a} to itself")
        for stream in (first, second):
            if stream._fork is not None and stream._fork.fed:
                raise MediaStateError(f"stream {stream.stream_id} is a fork target")
        self.remove_mix(a)  # idle mixes (every source removed) go with the new role
        self.remove_mix(b)
        self.unpair(a)
        self.unpair(b)
        first._peer, second._peer = second, first

    def unpair(self, stream_id: int) -> None:
        """Dissolve the stream's bridge, if any (both sides stop forwarding)."""
        stream = self.get(stream_id)
        if stream._peer is not None:
            stream._peer._peer = None
            stream._peer = None

    def add_fork(self, source: int, target: int) -> None:
        """Also send everything ``source`` receives out of ``target``, re-stamped.

        ``target`` is typically the supervisor's stream for the party that ``source`` serves.
        Moving a target from one source to another keeps its output continuous.

        Raises:
            UnknownStream: either id is unknown.
            MediaStateError: ``source == target``, the target is bridged or already fed.
            MediaLimitError: ``source`` already feeds :data:`MAX_FORKS_PER_STREAM` forks.
        """
        src, dst = self.get(source), self.get(target)
        if src is dst:
            raise MediaStateError(f"cannot fork stream {source} into itself")
        if dst._peer is not None:
            raise MediaStateError(f"stream {target} is bridged and cannot be a fork target")
        if dst._fork is not None and dst._fork.fed:
            raise MediaStateError(f"stream {target} is already fed by a fork or a mix")
        if len(src._feeds) >= MAX_FORKS_PER_STREAM:
            raise MediaLimitError(f"stream {source} already feeds {MAX_FORKS_PER_STREAM} forks")
        self.remove_mix(target)  # an idle one: a fed target was refused above
        if dst._fork is None:
            dst._fork = Fork(dst, self._rng)
        dst._fork.reclock(dst.clock_rate, self._rng)  # a mix may have changed it
        dst._fork.source = src
        src._feeds = (*src._feeds, dst._fork)

    def remove_fork(self, source: int, target: int) -> None:
        """Stop feeding ``source`` into ``target``, zero-copy or as a mix input (no error if
        there was no such fork). A mix left without sources stays wired but idle."""
        src, dst = self.get(source), self.get(target)
        src._feeds = tuple(f for f in src._feeds if f.target is not dst)
        fork = dst._fork
        if fork is None:
            return
        if fork.source is src:
            fork.source = None
        if fork.mix is not None:
            fork.mix.remove_input(source)

    def add_mix(
        self,
        target: int,
        sources: Mapping[int, SourceFormat],
        output: OutputSpec,
        *,
        now: float,
        mode: ForkMode = ForkMode.LISTEN,
    ) -> MixFork:
        """Make ``target`` send the decoded, mixed and re-encoded audio of ``sources``.

        Declarative: the target's output becomes exactly this mix. A zero-copy fork into the
        target is replaced; an existing mix with the same ``output`` keeps its running sources
        (their decoders and buffers), drops those not named and adds the new ones; a mix with
        another ``output`` is replaced. The output stays one continuous RTP stream throughout
        (the restamper belongs to the target) unless its RTP clock changes.

        Args:
            target: the stream to send out of (a supervisor's stream; never a bridged one).
            sources: each source stream's audio payload types → ``(encoding, clock, channels)``.
            output: ``(encoding, clock, channels, payload type)`` the target's device accepted.
            now: the current time on the receive clock (anchors the 20 ms grid).
            mode: only :attr:`ForkMode.LISTEN` exists yet.

        Returns:
            The mix, for the adapter to drive with :meth:`MixFork.tick`.

        Raises:
            UnknownStream: an id is unknown.
            UnsupportedFormat: a codec cannot be decoded or encoded here (488).
            MediaStateError: no sources, a source equal to the target, or a bridged target.
            MediaLimitError: a new source already feeds :data:`MAX_FORKS_PER_STREAM` forks.
        """
        dst = self.get(target)
        srcs = [self.get(s) for s in sources]
        if mode is not ForkMode.LISTEN:
            raise MediaStateError(f"fork mode {mode.value} is not implemented")
        if not srcs:
            raise MediaStateError(f"a mix into stream {target} needs at least one source")
        if dst in srcs:
            raise MediaStateError(f"cannot mix stream {target} into itself")
        if dst._peer is not None:
            raise MediaStateError(f"stream {target} is bridged and cannot be a fork target")
        fmt, codec = resolve_output(output)
        formats = {s: resolve_source(f) for s, f in sources.items()}
        for src in srcs:
            elsewhere = sum(1 for f in src._feeds if f.target is not dst)
            if elsewhere >= MAX_FORKS_PER_STREAM:
                raise MediaLimitError(f"stream {src.stream_id} already feeds "
                                      f"{MAX_FORKS_PER_STREAM} forks")  # fmt: skip
        fork = dst._fork
        mix = fork.mix if fork is not None else None
        if mix is None or mix.output != fmt:
            try:
                encoder = codec.new_encoder()
            except CodecError as exc:
                raise UnsupportedFormat(f"cannot encode {fmt.encoding}: {exc}") from None
            if fork is None:
                fork = dst._fork = Fork(dst, self._rng)
            self.remove_mix(target)
            fork.reclock(codec.clock_rate, self._rng)
            mix = fork.mix = MixFork(dst, fmt, codec, encoder, fork.restamper,
                                     ssrc=self._rng.getrandbits(32), mode=mode)  # fmt: skip
        assert fork is not None
        if fork.source is not None:
            self.remove_fork(fork.source.stream_id, target)
        for stale in [s for s in mix.inputs if s not in sources]:
            self.remove_fork(stale, target)
        for src in srcs:
            entry = mix.inputs.get(src.stream_id)
            if entry is not None:
                entry.set_formats(formats[src.stream_id])
            else:
                entry = mix.add_input(src, formats[src.stream_id], now)
                src._feeds = (*src._feeds, entry)
        return mix

    def remove_mix(self, target: int) -> None:
        """Stop the mix sending out of ``target`` and unhook its sources (no error if none)."""
        fork = self.get(target)._fork
        if fork is None or fork.mix is None:
            return
        mix, fork.mix = fork.mix, None
        for entry in mix.inputs.values():
            entry.source._feeds = tuple(f for f in entry.source._feeds if f is not entry)
        mix.close()

    def mix_stats(self, target: int) -> MixStats:
        """The counters of the mix sending out of ``target``.

        Raises:
            UnknownStream: no such stream.
            MediaStateError: no mix sends out of it.
        """
        fork = self.get(target)._fork
        if fork is None or fork.mix is None:
            raise MediaStateError(f"no mix sends out of stream {target}")
        return fork.mix.stats()

    def idle_streams(self, now: float, timeout: float) -> list[int]:
        """Ids of streams that received no RTP/RTCP for ``timeout`` seconds (or since creation)."""
        limit = now - timeout
        return [
            s.stream_id
            for s in self._streams.values()
            if (s.created_at if s.last_rx is None else s.last_rx) <= limit
        ]

    def stats(self, stream_id: int) -> StreamStats:
        """A snapshot of one stream's counters."""
        return self.get(stream_id).snapshot()

    def totals(self) -> RelayTotals:
        """Counters summed over every stream."""
        return RelayTotals.of([s.snapshot() for s in self._streams.values()])
