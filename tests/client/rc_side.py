"""RingCentral's side of a supervision, for the softphone tests: the monitoring INVITE as
RingCentral writes it (ringcentral-api.md §6.1), sent by a plain user agent, and a TCP relay
whose connections can be cut (a dropped connection to the registrar)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace

from callwatch.client import UaCall, UserAgent
from callwatch.client.softphone import Softphone
from callwatch.sip.offer_answer import PCMU, TELEPHONE_EVENT, CodecSpec, offer_media
from callwatch.sip.sdp import SessionDescription, encode_info_params

HOST = "127.0.0.1"
SESSION = "s-a0d7e1f2b3c4d5e6f7"
CUSTOMER, AGENT, SUPERVISOR = "p-a0d7e1f2b3c4d5e6f7-1", "p-a0d7e1f2b3c4d5e6f7-2", "p-sup-3"
Parties = Sequence[tuple[str, Sequence[CodecSpec]]]
"""One (monitored party, codecs offered) per ``m=audio``."""


def rc_offer(
    parties: Parties, session: str = SESSION
) -> Callable[[SessionDescription], SessionDescription]:
    """Rewrites the user agent's offer the way RingCentral writes a monitoring offer."""

    def rewrite(offer: SessionDescription) -> SessionDescription:
        media = []
        for section, (party, codecs) in zip(offer.media, parties, strict=True):
            crypto = section.crypto[0] if section.crypto else None
            info = encode_info_params({"session-id": session, "party-id": party})
            m = offer_media(
                port=section.port, codecs=codecs, proto=section.proto, info=info, crypto=crypto
            )
            media.append(m.with_attribute("label", party))
        return replace(offer, session_name="SmcSip", media=tuple(media))

    return rewrite


def rc_headers(
    monitored: str | None = None, *, auto: bool = True, party_first: bool = True
) -> list[tuple[str, str]]:
    """``p-rc-api-ids``, ``p-rc-api-monitoring-ids`` (for ``monitored``; RingCentral's own
    examples put session-id first) and the auto-answer headers."""
    headers = [("p-rc-api-ids", f"party-id={SUPERVISOR};session-id={SESSION}")]
    if monitored is not None:
        ids = [f"party-id={monitored}", f"session-id={SESSION}"]
        value = ";".join(ids) if party_first else "; ".join(reversed(ids))
        headers.append(("p-rc-api-monitoring-ids", value))
    if auto:
        headers += [
            ("Alert-Info", "Auto Answer"),
            ("Call-Info", f"<sip:{HOST}>;purpose=info;Answer-After=0"),
        ]
    return headers


async def invite(
    rc: UserAgent,
    phone: Softphone,
    parties: Parties,
    headers: list[tuple[str, str]],
    *,
    srtp: bool = False,
    codecs: Sequence[CodecSpec] = (PCMU, TELEPHONE_EVENT),
) -> UaCall:
    """RingCentral's monitoring INVITE from ``rc`` straight to ``phone`` (not yet answered)."""
    ua = phone.user_agent
    return await rc.dial(
        ua.uri("UDP"),
        ua.address("UDP"),
        streams=len(parties),
        srtp=srtp,
        headers=headers,
        codecs=codecs,
        rewrite_offer=rc_offer(parties),
    )


class CuttableRelay:
    """A TCP relay between the softphone and the registrar whose connections can be cut."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, HOST, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(HOST, self._target)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()
