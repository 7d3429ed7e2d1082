"""Test helpers for the relay core: fake sockets that record what a stream sends, packets."""

from __future__ import annotations

from dataclasses import dataclass, field

from callwatch.media.relay import Address, Relay, Stream
from callwatch.media.rtp import RtpHeader, RtpPacket
from callwatch.media.srtp import SrtpContext, SrtpDirection

T0 = 1000.0
A_SDP: Address = ("192.0.2.10", 4000)
"""What phone A advertised in SDP (the wrong port, as some softphones do)."""
A_REAL: Address = ("192.0.2.10", 4002)
"""Where phone A really sends from."""
B_SDP: Address = ("192.0.2.20", 5000)
B_REAL: Address = B_SDP
STRANGER: Address = ("203.0.113.66", 6666)


@dataclass
class Wire:
    """A fake socket's ``sendto``: records datagrams, optionally failing."""

    port: int
    sent: list[tuple[bytes, Address]] = field(default_factory=list)
    error: OSError | None = None

    def sendto(self, data: bytes, addr: Address) -> int:
        if self.error is not None:
            raise self.error
        self.sent.append((bytes(data), addr))
        return len(data)

    def take(self) -> list[tuple[bytes, Address]]:
        sent, self.sent = self.sent, []
        return sent


@dataclass
class Leg:
    """A stream and the fake sockets it sends through."""

    stream: Stream
    rtp: Wire
    rtcp: Wire


def add_leg(
    relay: Relay,
    port: int,
    remote: Address | None,
    *,
    mux: bool = False,
    key_in: bytes | None = None,
    key_out: bytes | None = None,
    clock_rate: int = 8000,
) -> Leg:
    rtp, rtcp = Wire(port), Wire(port + 1)
    stream = relay.add_stream(
        port=port, rtp_send=rtp.sendto, rtcp_send=None if mux else rtcp.sendto, remote=remote,
        srtp_in=None if key_in is None else SrtpContext(key_in, SrtpDirection.INBOUND),
        srtp_out=None if key_out is None else SrtpContext(key_out, SrtpDirection.OUTBOUND),
        clock_rate=clock_rate, now=T0,
    )  # fmt: skip
    return Leg(stream, rtp, rtp if mux else rtcp)


def rtp(seq: int, payload: bytes | None = None, *, ssrc: int = 0x1111, ts: int | None = None,
        pt: int = 0) -> bytes:  # fmt: skip
    """A valid RTP packet; the default payload encodes ``seq`` so packets are distinguishable."""
    body = payload if payload is not None else seq.to_bytes(2, "big") * 80
    stamp = seq * 160 if ts is None else ts
    return RtpPacket(RtpHeader(pt, seq & 0xFFFF, stamp & 0xFFFFFFFF, ssrc), body).serialize()
