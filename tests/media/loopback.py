"""Loopback UDP endpoints for tests that run the media engine on real sockets."""

from __future__ import annotations

import asyncio
import socket

HOST = "127.0.0.1"
WAIT = 5.0  # seconds before a missing datagram fails the test; never asserted on


class Phone:
    """A UDP endpoint on loopback, driven from the test's event loop."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()

    async def send(self, data: bytes, to: tuple[str, int]) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, data, to)

    async def recv(self) -> tuple[bytes, tuple[str, int]]:
        loop = asyncio.get_running_loop()
        data, addr = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 4096), WAIT)
        return data, addr

    def pending(self) -> bytes | None:
        """A datagram already queued, without waiting."""
        try:
            return self.sock.recv(4096)
        except BlockingIOError:
            return None

    def drain(self) -> list[tuple[bytes, tuple[str, int]]]:
        """Every datagram already queued, with its source address."""
        out = []
        while True:
            try:
                out.append(self.sock.recvfrom(4096))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.sock.close()
