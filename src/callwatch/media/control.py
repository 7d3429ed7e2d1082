"""The verbs the pbx calls on the media plane, and their implementation over the built-in relay.

The pbx maps SDP to these calls and back; nothing here knows SIP or SDP text. For one leg:

* offer or answer arrives with the leg's ``c=``/``m=`` address, ``a=rtcp-mux``, RTP/SAVP and
  its ``a=crypto`` key → :meth:`MediaControl.allocate` (first time) or
  :meth:`MediaControl.update` (re-INVITE, or the answer to our offer) → an
  :class:`~callwatch.media.aio.Endpoint` whose host/port/key go into the SDP we send that leg;
* both legs known → :meth:`MediaControl.bridge`;
* a supervisor answers → for each stream the device accepted: :meth:`MediaControl.fork` from
  the monitored party's leg when the device took the party's codec (same encoding, clock,
  channels and payload type: zero-copy); otherwise :meth:`MediaControl.mix` with that one party
  (a transcoder), or with every monitored party on the first stream when the device accepted
  fewer streams than offered (a mix). :meth:`MediaControl.unfork` removes one party from either
  kind; :meth:`MediaControl.unmix` stops a mix; deleting any leg involved tears it down;
* hang-up → :meth:`MediaControl.delete` per leg; :meth:`MediaControl.idle` tells which legs
  went silent (the pbx ends such calls).

:class:`MediaControl` is the seam: the built-in :class:`RelayControl` implements it in-process,
and an rtpengine (ng protocol) implementation can stand behind the same verbs for scale-out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from callwatch.media.aio import Endpoint, MediaEngine
from callwatch.media.mixfork import MixStats
from callwatch.media.ports import (
    MediaError,
    MediaLimitError,
    MediaStateError,
    PortsExhausted,
    UnknownStream,
)
from callwatch.media.stats import StreamStats
from callwatch.media.stream import Address
from callwatch.media.transcode import (
    OutputFormat,
    OutputSpec,
    RtpFormat,
    SourceFormat,
    SourceStats,
    UnsupportedFormat,
)

__all__ = [
    "Address",
    "Endpoint",
    "MediaControl",
    "MediaError",
    "MediaLimitError",
    "MediaStateError",
    "MixStats",
    "OutputFormat",
    "OutputSpec",
    "PortsExhausted",
    "RelayControl",
    "RtpFormat",
    "SourceFormat",
    "SourceStats",
    "StreamStats",
    "UnknownStream",
    "UnsupportedFormat",
]


class MediaControl(Protocol):
    """What the pbx asks of the media plane. Every verb raises a :class:`MediaError` subclass
    (with a SIP ``status_hint``) when it cannot be done; leg ids come from :meth:`allocate`.
    """

    async def allocate(
        self,
        *,
        remote: Address | None,
        remote_rtcp: Address | None = None,
        rtcp_mux: bool = False,
        srtp: bool = False,
        remote_key: bytes | None = None,
        clock_rate: int = 8000,
        label: str = "",
    ) -> Endpoint:
        """Reserve a relay endpoint for a leg whose SDP said ``remote`` (``None``: not yet).

        ``srtp`` (or a ``remote_key``) makes it an SDES-SRTP leg: the endpoint then carries
        our own fresh key for that leg.
        """
        ...

    async def update(
        self,
        leg: int,
        *,
        remote: Address | None,
        remote_rtcp: Address | None = None,
        remote_key: bytes | None = None,
    ) -> Endpoint:
        """Apply the leg's newer SDP; a changed address resets latching."""
        ...

    async def bridge(self, a: int, b: int) -> None:
        """Forward each leg's media to the other (replaces earlier bridges of either)."""
        ...

    async def unbridge(self, leg: int) -> None:
        """Stop forwarding between ``leg`` and its partner (hold, transfer)."""
        ...

    async def fork(self, source: int, target: int) -> None:
        """Copy what ``source``'s party sends to the ``target`` leg, as one continuous stream.

        Zero-copy: the payload (and payload type) go out unchanged, so use it only when the
        target's device accepted exactly the party's codec and payload type.
        """
        ...

    async def unfork(self, source: int, target: int) -> None:
        """Stop a fork, or take ``source`` out of the mix sending out of ``target``."""
        ...

    async def mix(
        self, target: int, sources: Mapping[int, SourceFormat], *, output: OutputSpec
    ) -> None:
        """Send the ``sources`` legs' audio decoded, mixed and re-encoded out of ``target``.

        Args:
            target: the supervisor's stream (allocated like any leg; never a bridged one).
            sources: per monitored leg, its audio payload types → ``(encoding, clock rate,
                channels)`` as negotiated with that party; other payload types it sends
                (telephone-event) are ignored. One source makes a transcoder.
            output: ``(encoding, clock rate, channels, payload type)`` from the target's answer
                (:class:`OutputFormat`); sent at 20 ms.

        Declarative: calling it again on the same target sets the new source list (running
        sources keep their state, the output stays one continuous RTP stream) and replaces a
        zero-copy fork into the target. Raises :class:`UnsupportedFormat` (488) for a codec the
        relay cannot decode or encode.
        """
        ...

    async def unmix(self, target: int) -> None:
        """Stop the mix sending out of ``target`` (no error if there is none)."""
        ...

    async def query_mix(self, target: int) -> MixStats:
        """The mix's counters: frames, encode errors, per-source concealment and drops."""
        ...

    async def delete(self, leg: int) -> None:
        """Release the leg's ports; its bridge and forks end with it."""
        ...

    async def query(self, leg: int) -> StreamStats:
        """The leg's counters."""
        ...

    async def idle(self, timeout: float) -> list[int]:
        """Legs that received no media for ``timeout`` seconds."""
        ...


class RelayControl:
    """:class:`MediaControl` over the in-process relay (:class:`MediaEngine`)."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine

    async def allocate(
        self,
        *,
        remote: Address | None,
        remote_rtcp: Address | None = None,
        rtcp_mux: bool = False,
        srtp: bool = False,
        remote_key: bytes | None = None,
        clock_rate: int = 8000,
        label: str = "",
    ) -> Endpoint:
        return await self.engine.create_stream(
            remote=remote, remote_rtcp=remote_rtcp, rtcp_mux=rtcp_mux, srtp=srtp,
            remote_key=remote_key, clock_rate=clock_rate, label=label,
        )  # fmt: skip

    async def update(
        self,
        leg: int,
        *,
        remote: Address | None,
        remote_rtcp: Address | None = None,
        remote_key: bytes | None = None,
    ) -> Endpoint:
        return await self.engine.update_stream(
            leg, remote=remote, remote_rtcp=remote_rtcp, remote_key=remote_key
        )

    async def bridge(self, a: int, b: int) -> None:
        await self.engine.pair(a, b)

    async def unbridge(self, leg: int) -> None:
        await self.engine.unpair(leg)

    async def fork(self, source: int, target: int) -> None:
        await self.engine.add_fork(source, target)

    async def unfork(self, source: int, target: int) -> None:
        await self.engine.remove_fork(source, target)

    async def mix(
        self, target: int, sources: Mapping[int, SourceFormat], *, output: OutputSpec
    ) -> None:
        await self.engine.mix(target, sources, output=output)

    async def unmix(self, target: int) -> None:
        await self.engine.unmix(target)

    async def query_mix(self, target: int) -> MixStats:
        return await self.engine.mix_stats(target)

    async def delete(self, leg: int) -> None:
        await self.engine.delete(leg)

    async def query(self, leg: int) -> StreamStats:
        return await self.engine.stats(leg)

    async def idle(self, timeout: float) -> list[int]:
        return await self.engine.idle_streams(timeout)
