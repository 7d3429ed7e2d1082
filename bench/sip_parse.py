"""SIP parse + serialise throughput on the monitoring INVITE (two m=audio lines) and a REGISTER."""

from __future__ import annotations

import time

from bench.common import Row
from callwatch.sip.message import parse_message

_SDP = (
    "v=0\r\no=- 4852947655924738196 4477495385376493473 IN IP4 104.245.57.182\r\ns=SmcSip\r\n"
    "c=IN IP4 104.245.57.182\r\nt=0 0\r\n"
    + "".join(
        f"m=audio {port} RTP/AVP 111 9 0 18 96 8 109 101\r\ni=party-id=p-1-{n}\r\n"
        "a=rtpmap:111 OPUS/48000/2\r\na=fmtp:111 useinbandfec=1\r\na=rtpmap:9 G722/8000\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:109 OPUS/16000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
        for n, port in ((7, 50400), (8, 50402))
    )
).encode()

INVITE = (
    "INVITE sip:60727004@192.168.1.10:5061;transport=TLS;ob SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 104.245.57.165:5096;branch=z9hG4bK1hg5mn30n8sj5u1t2c39ju3r4l\r\n"
    "Max-Forwards: 69\r\n"
    "From: <sip:+16505550100@104.245.57.165>;tag=10.13.22.25-5070-742e2a888ab14be\r\n"
    "To: <sip:60727004@sip.ringcentral.com;ob>\r\n"
    "Call-ID: 9c4a8e2b0e9d4a56a6a3c4c9b2f1d7e3\r\n"
    "CSeq: 216173957 INVITE\r\n"
    "Contact: <sip:+16505550100@104.245.57.165:5096;transport=tls>\r\n"
    "p-rc-api-ids: party-id=p-a7d5f98a6e0d3e218735a44d0be1a1209-9;session-id=s-a7d5f98a6e0d3e21\r\n"
    "p-rc-api-monitoring-ids: party-id=p-a7d5f98a6e0d3e218735a44d0be1a1209-7;session-id=s-a7d5\r\n"
    "Alert-Info: Auto Answer\r\n"
    "Call-Info: <sip:104.245.57.165>;purpose=info;Answer-After=0\r\n"
    "Allow: SUBSCRIBE, NOTIFY, REFER, INVITE, ACK, BYE, CANCEL, UPDATE, INFO\r\n"
    "Supported: replaces, timer, diversion\r\n"
    "Session-Expires: 14400;refresher=uac\r\nMin-SE: 90\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(_SDP)}\r\n\r\n"
).encode() + _SDP

REGISTER = (
    b"REGISTER sip:sip.callwatch.local SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 10.0.0.2:50123;rport;branch=z9hG4bK-5c7e1f;alias\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:16505550101@sip.callwatch.local>;tag=8f2c\r\n"
    b"To: <sip:16505550101@sip.callwatch.local>\r\nCall-ID: 6d3e0b1a-reg\r\nCSeq: 8121 REGISTER\r\n"
    b"Contact: <sip:16505550101@10.0.0.2:50123;transport=TLS;ob>;reg-id=1;"
    b'+sip.instance="<urn:uuid:2b0a3c1d-1111-2222-3333-444455556666>"\r\n'
    b"Expires: 3600\r\nUser-Agent: ringcentral-softphone-ts\r\nContent-Length: 0\r\n\r\n"
)


def _rate(data: bytes, seconds: float = 1.5) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            parse_message(data).serialize()
        count += 200
    return count / (time.perf_counter() - start)


def run() -> list[Row]:
    """Messages parsed and serialised again per second, one core."""
    return [
        Row(
            "SIP parse+serialise, 2-stream monitoring INVITE",
            _rate(INVITE),
            "msg/s",
            f"{len(INVITE)} B, one core",
        ),
        Row(
            "SIP parse+serialise, REGISTER",
            _rate(REGISTER),
            "msg/s",
            f"{len(REGISTER)} B, one core",
        ),
    ]
