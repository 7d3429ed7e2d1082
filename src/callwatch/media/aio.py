"""The relay's I/O: UDP sockets on a dedicated event loop (uvloop) in its own thread.

Theory of operation
-------------------
Media must not share an event loop with REST and SIP: a slow request handler would add its
latency to every packet, and the default loop costs 3× more per packet than uvloop (STACK.md
§5). :class:`MediaEngine` therefore runs one loop in a thread of its own and owns the
:class:`~callwatch.media.relay.Relay` core; **only that thread touches the relay**. The control
API (``create_stream``, ``pair``, ``stats`` …) is a set of coroutines for the caller's loop;
each hops onto the media loop (``run_coroutine_threadsafe``) and back (``wrap_future``).

Each stream binds its RTP (and, without rtcp-mux, RTCP) socket itself and hands the socket to
the loop with ``create_datagram_endpoint(sock=…)``, so the relay can send with the raw socket's
``sendto``: cheaper than the transport's and, sent from the *partner's* socket, the source port
is the one that phone was told in SDP (symmetric RTP). A protocol object per socket forwards
``datagram_received`` straight to the stream's bound ``receive_rtp`` with the arrival time.

Mix forks (:mod:`callwatch.media.mixfork`) are the one thing on the loop driven by time rather
than by packets: each active mix has one ``loop.call_at`` timer, re-armed after every tick at
the mix's next grid deadline (converted from the monotonic receive clock to the loop's), and
left to lapse once the mix has no source. A tick that raises is counted on the mix, logged
once, and the timer keeps running: a codec library's fault never stops the media loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import errno
import functools
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from callwatch.media.mixfork import MixFork, MixStats
from callwatch.media.ports import MediaError, PortPool, PortsExhausted
from callwatch.media.relay import MAX_STREAMS, Address, Relay, Stream
from callwatch.media.srtp import SrtpContext, SrtpDirection, generate_key_salt
from callwatch.media.stats import RelayTotals, StreamStats
from callwatch.media.transcode import OutputSpec, SourceFormat, warm_up

__all__ = ["DEFAULT_RCVBUF", "Endpoint", "MediaEngine"]

_T = TypeVar("_T")
logger = logging.getLogger(__name__)

DEFAULT_RCVBUF = 1 << 19
"""Receive buffer per socket: ~2,000 small packets of slack while the loop is busy."""
VOICE_TOS = 0xB8
"""DSCP EF (expedited forwarding, RFC 3246 / RFC 4594 "telephony") on every media socket."""

_monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a leg must send its media, and how: what the pbx writes into that leg's SDP."""

    stream_id: int
    """The relay's handle for the leg."""
    host: str
    """Address for ``c=`` (the engine's advertised host)."""
    port: int
    """RTP port for ``m=``."""
    rtcp_port: int
    """RTCP port (``port + 1``, or ``port`` with rtcp-mux)."""
    rtcp_mux: bool
    """Whether to answer ``a=rtcp-mux``."""
    local_key: bytes | None = field(default=None, repr=False)
    """Our SDES master key||salt for this leg (``a=crypto … inline:``), ``None`` if plain RTP."""


class _Receiver(asyncio.DatagramProtocol):
    """Forwards each datagram of one socket to a stream method; no logic of its own."""

    __slots__ = ("_receive", "_stream")

    def __init__(self, receive: Callable[[bytes, Address, float], None], stream: Stream) -> None:
        self._receive = receive
        self._stream = stream

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._receive(data, addr, _monotonic())

    def error_received(self, exc: Exception) -> None:
        self._stream.send_errors += 1  # ICMP errors surface here on some platforms


@dataclass(slots=True)
class _Sockets:
    port: int
    transports: list[asyncio.DatagramTransport]
    local_key: bytes | None


class MediaEngine:
    """The built-in relay: sockets, a uvloop thread and the relay core.

    Args:
        host: address to bind every media socket on.
        advertised_host: address to put in SDP (default: ``host``).
        port_min, port_max: the RTP/RTCP port range.
        use_uvloop: run the media loop on uvloop when it is installed.
        rcvbuf: ``SO_RCVBUF`` per socket.
        max_streams: relay limit.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        advertised_host: str | None = None,
        port_min: int = 20000,
        port_max: int = 30000,
        use_uvloop: bool = True,
        rcvbuf: int = DEFAULT_RCVBUF,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self.host = host
        self.advertised_host = advertised_host or host
        self._family = (
            socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        )
        self._pool = PortPool(port_min, port_max)
        self._use_uvloop = use_uvloop
        self._rcvbuf = rcvbuf
        self._relay = Relay(max_streams=max_streams)
        self._sockets: dict[int, _Sockets] = {}
        self._mix_timers: dict[MixFork, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the media thread is running."""
        return self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        """Start the media thread and its loop; returns once the loop runs."""
        if self._thread is not None:
            raise MediaError("media engine already started")
        ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="callwatch-media", daemon=True
        )
        self._thread.start()
        self._loop = await asyncio.wrap_future(ready)

    async def stop(self) -> None:
        """Close every socket, stop the media loop and join its thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if thread.is_alive():
            await self._submit(self._close_all())
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)
        self._thread = self._loop = None

    def _run(self, ready: concurrent.futures.Future[asyncio.AbstractEventLoop]) -> None:
        loop = self._new_loop()
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set_result, loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        if self._use_uvloop:
            try:
                import uvloop
            except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
                pass
            else:
                loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
                return loop
        return asyncio.new_event_loop()

    async def _close_all(self) -> None:
        for stream_id in list(self._sockets):
            self._delete(stream_id)
        for timer in self._mix_timers.values():
            timer.cancel()
        self._mix_timers.clear()

    # -- control API (any loop; each call runs on the media loop) ------------------------------

    async def create_stream(
        self,
        *,
        remote: Address | None = None,
        remote_rtcp: Address | None = None,
        rtcp_mux: bool = False,
        srtp: bool = False,
        remote_key: bytes | None = None,
        clock_rate: int = 8000,
        label: str = "",
    ) -> Endpoint:
        """Bind a port pair for a leg and create its stream.

        Args:
            remote: the leg's SDP address (``c=``, ``m=`` port); only a hint until it latches.
            remote_rtcp: its ``a=rtcp`` address, if given (default: ``remote`` port + 1).
            rtcp_mux: RTCP on the RTP port (RFC 5761).
            srtp: the leg uses SDES-SRTP (RTP/SAVP + ``a=crypto``); implied by ``remote_key``.
            remote_key: the leg's 30-byte key||salt (what it encrypts with), when known.
                Until an SRTP leg's key is known, everything it sends fails authentication.
            clock_rate: the RTP clock of its codec, for jitter in ms.
            label: free text for diagnostics (call and party id).
        Returns:
            The endpoint to advertise to the leg, with our key for it on an SRTP leg.
        Raises:
            PortsExhausted, MediaLimitError, SrtpError (a key of the wrong length).
        """
        return await self._submit(
            self._create(remote, remote_rtcp, rtcp_mux, srtp or remote_key is not None,
                         remote_key, clock_rate, label)
        )  # fmt: skip

    async def update_stream(
        self,
        stream_id: int,
        *,
        remote: Address | None,
        remote_rtcp: Address | None = None,
        remote_key: bytes | None = None,
    ) -> Endpoint:
        """Apply a leg's (new) SDP: address hint, and its key if given (re-INVITE, answer).

        A changed address resets latching; a new ``remote_key`` replaces the inbound context.
        """
        return await self._call(self._update, stream_id, remote, remote_rtcp, remote_key)

    async def pair(self, a: int, b: int) -> None:
        """Bridge two streams (see :meth:`Relay.pair`)."""
        await self._call(self._relay.pair, a, b)

    async def unpair(self, stream_id: int) -> None:
        """Dissolve a stream's bridge."""
        await self._call(self._relay.unpair, stream_id)

    async def add_fork(self, source: int, target: int) -> None:
        """Send what ``source`` receives also out of ``target``, re-stamped."""
        await self._call(self._relay.add_fork, source, target)

    async def remove_fork(self, source: int, target: int) -> None:
        """Stop a fork, or remove ``source`` from the mix sending out of ``target``."""
        await self._call(self._relay.remove_fork, source, target)

    async def mix(
        self, target: int, sources: Mapping[int, SourceFormat], *, output: OutputSpec
    ) -> None:
        """Send ``sources`` decoded, mixed and re-encoded as ``output`` out of ``target``
        (see :meth:`Relay.add_mix`); codec libraries are loaded off both loops first."""
        await asyncio.to_thread(warm_up, output, list(sources.values()))
        await self._call(self._mix, target, dict(sources), output)

    async def unmix(self, target: int) -> None:
        """Stop the mix sending out of ``target``."""
        await self._call(self._relay.remove_mix, target)

    async def mix_stats(self, target: int) -> MixStats:
        """The counters of the mix sending out of ``target``."""
        return await self._call(self._relay.mix_stats, target)

    async def delete(self, stream_id: int) -> None:
        """Remove a stream, close its sockets and release its ports."""
        await self._call(self._delete, stream_id)

    async def stats(self, stream_id: int) -> StreamStats:
        """A snapshot of a stream's counters."""
        return await self._call(self._relay.stats, stream_id)

    async def totals(self) -> RelayTotals:
        """Counters summed over every stream, with the media thread's CPU time so far, taken at
        one instant on the media thread (a control call can wait on the GIL under load; the
        figures inside are still consistent with each other)."""
        return await self._call(self._totals)

    async def idle_streams(self, timeout: float) -> list[int]:
        """Streams that received nothing (RTP or RTCP) for ``timeout`` seconds."""
        return await self._call(lambda: self._relay.idle_streams(_monotonic(), timeout))

    # -- on the media loop --------------------------------------------------------------------

    async def _create(
        self,
        remote: Address | None,
        remote_rtcp: Address | None,
        rtcp_mux: bool,
        srtp: bool,
        remote_key: bytes | None,
        clock_rate: int,
        label: str,
    ) -> Endpoint:
        srtp_in = srtp_out = None
        local_key = None
        if srtp:
            local_key = generate_key_salt()
            srtp_out = SrtpContext(local_key, SrtpDirection.OUTBOUND)
            # No key yet: a context under a random key nobody knows rejects every packet.
            srtp_in = SrtpContext(remote_key or generate_key_salt(), SrtpDirection.INBOUND)
        port, rtp_sock, rtcp_sock = self._bind_pair(rtcp_mux)
        try:
            stream = self._relay.add_stream(
                port=port, rtp_send=rtp_sock.sendto,
                rtcp_send=None if rtcp_sock is None else rtcp_sock.sendto,
                remote=remote, remote_rtcp=remote_rtcp, srtp_in=srtp_in, srtp_out=srtp_out,
                clock_rate=clock_rate, now=_monotonic(), label=label,
            )  # fmt: skip
        except BaseException:
            self._unbind(port, rtp_sock, rtcp_sock)
            raise
        record = _Sockets(port, [], local_key)
        self._sockets[stream.stream_id] = record
        try:
            loop = asyncio.get_running_loop()
            for sock, receive in ((rtp_sock, stream.receive_rtp), (rtcp_sock, stream.receive_rtcp)):
                if sock is not None:
                    transport, _ = await loop.create_datagram_endpoint(
                        functools.partial(_Receiver, receive, stream), sock=sock
                    )
                    record.transports.append(transport)
        except BaseException:
            self._relay.remove_stream(stream.stream_id)
            del self._sockets[stream.stream_id]
            for transport in record.transports:
                transport.close()
            self._unbind(port, rtp_sock, rtcp_sock)
            raise
        return self._endpoint(stream)

    def _update(
        self,
        stream_id: int,
        remote: Address | None,
        remote_rtcp: Address | None,
        remote_key: bytes | None,
    ) -> Endpoint:
        stream = self._relay.get(stream_id)
        if remote_key is not None:
            record = self._sockets[stream_id]
            if record.local_key is None:
                raise MediaError(f"stream {stream_id} is plain RTP; it cannot take an SRTP key")
            stream.set_srtp(
                SrtpContext(remote_key, SrtpDirection.INBOUND),
                SrtpContext(record.local_key, SrtpDirection.OUTBOUND),
            )
        stream.set_remote(remote, remote_rtcp)
        return self._endpoint(stream)

    def _mix(self, target: int, sources: Mapping[int, SourceFormat], output: OutputSpec) -> None:
        mix = self._relay.add_mix(target, sources, output, now=_monotonic())
        if mix not in self._mix_timers:
            self._arm(mix)

    def _arm(self, mix: MixFork) -> None:
        deadline = mix.next_deadline()
        if deadline is None:  # no source left (or removed): let the timer lapse
            self._mix_timers.pop(mix, None)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + (deadline - _monotonic())
        self._mix_timers[mix] = loop.call_at(when, self._on_tick, mix)

    def _on_tick(self, mix: MixFork) -> None:
        try:
            mix.tick(_monotonic())
        except Exception:  # a codec library fault: count it, keep the loop and the timer
            mix.tick_errors += 1
            if mix.tick_errors == 1:
                logger.exception("! mix into stream %d failed a tick", mix.target.stream_id)
        self._arm(mix)

    def _totals(self) -> RelayTotals:
        totals = self._relay.totals()
        return dataclasses.replace(totals, taken_at=_monotonic(), media_cpu=time.thread_time())

    def _endpoint(self, stream: Stream) -> Endpoint:
        mux = stream.rtcp_mux
        return Endpoint(
            stream_id=stream.stream_id,
            host=self.advertised_host,
            port=stream.port,
            rtcp_port=stream.port if mux else stream.port + 1,
            rtcp_mux=mux,
            local_key=self._sockets[stream.stream_id].local_key,
        )

    def _delete(self, stream_id: int) -> None:
        self._relay.remove_stream(stream_id)
        record = self._sockets.pop(stream_id)
        for transport in record.transports:
            transport.close()
        self._pool.release(record.port)

    def _unbind(self, port: int, *socks: socket.socket | None) -> None:
        for sock in socks:
            if sock is not None:
                sock.close()
        self._pool.release(port)

    def _bind_pair(self, rtcp_mux: bool) -> tuple[int, socket.socket, socket.socket | None]:
        # Every free pair once (a refused one goes to the back of the pool): other processes
        # may hold any stretch of the range, and a refused bind costs microseconds.
        for _ in range(self._pool.available):
            port = self._pool.allocate()
            bound: list[socket.socket] = []
            try:
                bound.append(self._bind(port))
                if not rtcp_mux:
                    bound.append(self._bind(port + 1))
            except OSError as exc:
                for sock in bound:
                    sock.close()
                self._pool.release(port)
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                continue
            return port, bound[0], None if rtcp_mux else bound[1]
        raise PortsExhausted(f"no free RTP/RTCP port pair in {self._pool}")

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            if self._family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, VOICE_TOS)
            sock.bind((self.host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    # -- crossing threads ---------------------------------------------------------------------

    async def _submit(self, coro: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None or not self.running:
            coro.close()
            raise MediaError("media engine is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        async def run() -> _T:
            return fn(*args)

        return await self._submit(run())
