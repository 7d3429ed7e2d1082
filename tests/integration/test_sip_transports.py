"""SIP over real loopback sockets: a TLS client registers (RFC 5626 flow), bad input is refused."""

from __future__ import annotations

import asyncio
import ssl

from callwatch.sip.auth import DigestChallenge, build_credentials
from callwatch.sip.framing import StreamFramer
from callwatch.sip.message import Response, parse_message
from tests.integration.conftest import RunningServer, eventually

CRLF = "\r\n"


def _register(
    device: dict[str, str],
    port: int,
    cseq: int,
    transport: str,
    *,
    auth: str | None = None,
    expires: int = 600,
    local: str = "127.0.0.1:5999",
) -> bytes:
    user = device["sip_username"]
    lines = [
        "REGISTER sip:sip.callwatch.local SIP/2.0",
        f"Via: SIP/2.0/{transport} {local};rport;branch=z9hG4bK-reg{cseq};alias",
        "Max-Forwards: 70",
        f"From: <sip:{user}@sip.callwatch.local>;tag=t{cseq}",
        f"To: <sip:{user}@sip.callwatch.local>",
        "Call-ID: tls-reg-1",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@{local};transport={transport};ob>;reg-id=1;"
        '+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"',
        f"Expires: {expires}",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    lines.append("Content-Length: 0")
    return (CRLF.join(lines) + CRLF + CRLF).encode()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framer: StreamFramer, data: bytes
) -> Response:
    writer.write(data)
    await writer.drain()
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, "connection closed"
        for raw in framer.feed(chunk):
            message = parse_message(raw, stream=True)
            if isinstance(message, Response) and message.status >= 200:
                return message


async def test_tls_registration_is_flow_bound(server: RunningServer) -> None:
    device = server.extension("101")["devices"][0]
    token = await server.token("101")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.sip_tls, ssl=context)
    framer = StreamFramer()

    challenge_response = await _exchange(reader, writer, framer, _register(device, 0, 1, "TLS"))
    assert challenge_response.status == 401
    header = challenge_response.headers.get("www-authenticate")
    assert header is not None and not header.split(" ", 1)[1].startswith("nonce")
    challenge = DigestChallenge.parse(header)
    credentials = build_credentials(
        challenge,
        method="REGISTER",
        uri="sip:sip.callwatch.local",
        username=device["authorization_id"],
        password=device["sip_password"],
        cnonce="abc",
    )
    ok = await _exchange(
        reader, writer, framer, _register(device, 0, 2, "TLS", auth=credentials.serialize())
    )
    assert ok.status == 200
    assert any("reg-id=1" in c for c in ok.headers.get_all("contact"))
    assert await server.device_status(device["id"], token) == "Online"

    writer.close()
    await writer.wait_closed()
    assert await eventually(lambda: _offline(server, device["id"], token))


async def _offline(server: RunningServer, device_id: str, token: str) -> bool:
    return await server.device_status(device_id, token) == "Offline"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)


def _options(branch: str) -> bytes:
    return CRLF.join(
        [
            "OPTIONS sip:sip.callwatch.local SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:5998;rport;branch=z9hG4bK{branch}",
            "From: <sip:probe@127.0.0.1>;tag=p1",
            "To: <sip:sip.callwatch.local>",
            f"Call-ID: {branch}",
            "CSeq: 1 OPTIONS",
            "Max-Forwards: 70",
            "Content-Length: 0",
            "",
            "",
        ]
    ).encode()


async def test_malformed_udp_is_answered_or_dropped(server: RunningServer) -> None:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Udp, remote_addr=("127.0.0.1", server.ports.sip)
    )
    try:
        transport.sendto(b"\x00\xff garbage that is not SIP at all")
        bad_contact = _options("bad1").replace(b"Max-Forwards: 70", b"Contact: <sip:broken")
        transport.sendto(bad_contact)
        reply = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        assert isinstance(reply, Response) and reply.status == 400
        transport.sendto(_options("good1"))
        reply = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        assert isinstance(reply, Response) and reply.status == 200
        assert "REGISTER" in (reply.headers.get("allow") or "")
    finally:
        transport.close()
    assert server.server.endpoint is not None
    assert server.server.endpoint.stack.counters["malformed"] >= 2


async def test_malformed_tcp_closes_only_that_connection(server: RunningServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.sip)
    writer.write(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n")  # no Content-Length
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # server closed the stream
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports.sip)
    response = await _exchange(
        reader, writer, StreamFramer(), _options("tcp1").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    )
    assert response.status == 200
    writer.close()
