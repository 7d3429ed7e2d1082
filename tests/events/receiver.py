"""A tiny WebHook receiver on loopback: ``asyncio.start_server`` speaking minimal HTTP/1.1.

It records every request and answers what ``reply`` says (status, extra headers, body, delay);
by default 200 with the ``Validation-Token`` header echoed, like a well-behaved receiver.
Keep-alive is supported (httpx reuses connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    at: float
    """``time.monotonic()`` when the request was read."""


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    echo_token: bool = True


Behaviour = Callable[[Received], Reply]


class Receiver:
    """One loopback HTTP server; ``url`` is valid after :meth:`start`."""

    def __init__(
        self,
        reply: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.reply: Behaviour = reply or (lambda request: Reply())
        self.requests: list[Received] = []
        self._arrived = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._bind = (host, port)
        self._tls = tls
        self.port = port
        self.url = ""

    async def start(self) -> Receiver:
        host, port = self._bind
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_HEAD, ssl=self._tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = self.url_for(host)
        return self

    def url_for(self, host: str) -> str:
        """This receiver's URL with another host (a name the test's resolver maps to it)."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host}:{self.port}/hook"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def deliveries(self) -> list[Received]:
        """Requests that were not validation handshakes (those have an empty body)."""
        return [r for r in self.requests if r.body]

    async def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until ``count`` deliveries arrived; return them."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.deliveries) >= count)
        return self.deliveries

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                async with self._arrived:
                    self.requests.append(request)
                    self._arrived.notify_all()
                reply = self.reply(request)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                writer.write(_response(request, reply))
                await writer.drain()
        except (
            ConnectionError,
            ssl.SSLError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass
        except asyncio.CancelledError:
            pass  # close(): end quietly (Python 3.11's stream callback chokes on a cancelled task)
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, path, headers, body, time.monotonic())


def _response(request: Received, reply: Reply) -> bytes:
    headers = {"Content-Type": "application/json", **reply.headers}
    token = request.headers.get("validation-token")
    if reply.echo_token and token is not None and not request.body:
        headers["Validation-Token"] = token
    head = f"HTTP/1.1 {reply.status} Status\r\nContent-Length: {len(reply.body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("latin-1") + b"\r\n" + reply.body
