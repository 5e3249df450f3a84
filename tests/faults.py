"""Backends that really misbehave, on 127.0.0.1: raw asyncio HTTP servers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any


def free_port() -> int:
    """A port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


class FaultServer:
    """Answers every request the way `mode` says.

    503, hang, notjson, huge (declared length), stream (chunked, never ends),
    reset (closes without answering), json (answers `body` with 200), slow
    (answers `body` after `delay` seconds), raw (writes `body` as it is: bytes
    that need not be HTTP), gzip (`body` is a gzip stream, sent chunked with
    Content-Encoding: gzip and no Content-Length), gated (answers `body` once `gate`
    is set). `mode` may be changed while it runs; `peak` is the most requests it
    ever held at once.
    """

    def __init__(self, mode: str, body: bytes = b"{}", delay: float = 0.0) -> None:
        # flap: every other call 503, the rest answered with `body`
        self.mode = mode
        self.body = body
        self.delay = delay
        self.active = 0
        self.peak = 0
        self.calls = 0
        self.paths: list[str] = []
        self.heads: list[bytes] = []  # each request's head, as received
        self.gate = asyncio.Event()  # what "gated" answers wait for
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FaultServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.sleep(0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.calls += 1
            self.paths.append(head.split(b" ", 2)[1].decode())
            self.heads.append(head)
            self.active += 1
            self.peak = max(self.peak, self.active)
            try:
                await self._answer(writer)
            finally:
                self.active -= 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode == "flap":
            mode = "503" if self.calls % 2 else "json"
        if mode == "503":
            writer.write(_response("503 Service Unavailable", b'{"error":"down"}'))
        elif mode == "hang":
            await asyncio.sleep(30)
        elif mode == "notjson":
            writer.write(_response("200 OK", b"<html>oops</html>", "text/html"))
        elif mode == "huge":
            writer.write(_response("200 OK", b"[" + b" " * 50_000 + b"]"))
        elif mode == "stream":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(10_000):  # bounded: ~80 MB at most, the client stops far earlier
                writer.write(b"2000\r\n" + b" " * 0x2000 + b"\r\n")
                await writer.drain()
        elif mode == "raw":
            writer.write(self.body)
        elif mode == "gzip":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(self.body), 0x4000):
                piece = self.body[i:i + 0x4000]
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif mode == "reset":
            writer.transport.abort()
            return
        elif mode == "json":
            writer.write(_response("200 OK", self.body))
        elif mode == "gated":
            await self.gate.wait()
            writer.write(_response("200 OK", self.body))
        elif mode == "slow":
            await asyncio.sleep(self.delay)
            writer.write(_response("200 OK", self.body))
        await writer.drain()
