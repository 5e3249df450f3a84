"""Reading a backend's body within `max_response_bytes`, decompressed as it arrives.

    body = await read_capped(response, cap=10 * MiB, service="users")

The cap applies to the decoded bytes, counted while they are produced: a gzip
bomb (200 MB of zeros in 200 KB) is refused after `cap` bytes of output, never
inflated whole, and no single piece is larger than `PIECE` bytes, so a refused
answer leaves no large block behind. Only the encodings Tessera asks for
(`ACCEPT_ENCODING`) are decoded; any other is a bad response.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import httpx

from ..errors import BackendBadResponse

ACCEPT_ENCODING = "gzip, deflate"
PIECE = 64 * 1024  # the most one decompression step may produce


class _Inflater:
    """zlib with a bounded output per step; `deflate` may be zlib-wrapped or raw."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._inflate = zlib.decompressobj(wbits)
        self._started = False

    def pieces(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._pieces(data)
        except zlib.error:
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise
            # Some servers send raw deflate under "deflate" (as httpx also allows).
            self._wbits, self._inflate = -zlib.MAX_WBITS, zlib.decompressobj(-zlib.MAX_WBITS)
            yield from self._pieces(data)

    def _pieces(self, data: bytes) -> Iterator[bytes]:
        while data and not self._inflate.eof:
            piece = self._inflate.decompress(data, PIECE)
            self._started = True
            if piece:
                yield piece
            data = self._inflate.unconsumed_tail

    def rest(self) -> Iterator[bytes]:
        """What zlib still holds once the input has ended, in bounded pieces."""
        while not self._inflate.eof:
            piece = self._inflate.decompress(b"", PIECE)
            if not piece:
                return
            yield piece


def _decoder(encoding: str, service: str) -> Callable[[], _Inflater] | None:
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return lambda: _Inflater(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return lambda: _Inflater(zlib.MAX_WBITS)
    raise BackendBadResponse(service, f"answered with an unsupported content-encoding "
                             f"({name[:20]!r})")


def too_large(service: str, cap: int) -> BackendBadResponse:
    return BackendBadResponse(service, f"answered with more than {cap} bytes")


def plain_length(headers: Mapping[str, str]) -> int | None:
    """The length a body declares when it arrives as it is (no content-encoding, or
    identity): then it is exactly that many bytes; None otherwise."""
    declared = headers.get("content-length")
    if declared is None or not declared.isdigit() \
            or headers.get("content-encoding", "").strip().lower() not in ("", "identity"):
        return None
    return int(declared)


async def read_capped(response: httpx.Response, cap: int, service: str) -> bytes:
    """An httpx response's body, decoded, or BackendBadResponse once more than `cap`
    bytes arrive (see `read_chunks`)."""
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport in tests)
        if len(response.content) > cap:
            raise too_large(service, cap)
        return response.content
    return await read_chunks(response.headers, response.aiter_raw(PIECE), cap, service)


async def read_chunks(headers: Mapping[str, str], raw: AsyncIterator[bytes], cap: int,
                      service: str) -> bytes:
    """The body arriving as `raw` (as sent: still encoded), decoded, or
    BackendBadResponse once more than `cap` bytes arrive (see `Collector`)."""
    declared = plain_length(headers)
    if declared is not None and declared > cap:
        raise too_large(service, cap)
    collector = Collector(headers.get("content-encoding", ""), cap, service)
    async for piece in raw:
        collector.add(piece)
    return collector.finish()


class Collector:
    """A body fed as it arrives (`add`), decoded per its content-encoding, and
    whole at the end (`finish`); BackendBadResponse once more than `cap` decoded
    bytes arrive, or for bytes that cannot be decoded.

    What was read is dropped before the error is raised: the error's traceback
    keeps the frames that read it alive (in a loader's result, in a reference cycle
    until the collector runs), and they must not keep `cap` bytes alive with it."""

    def __init__(self, encoding: str, cap: int, service: str) -> None:
        make = _decoder(encoding, service)
        self._inflater = make() if make is not None else None
        self._cap = cap
        self._service = service
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        if self._inflater is None:
            self._keep(data)
            return
        try:
            for piece in self._inflater.pieces(data):
                self._keep(piece)
        except zlib.error:
            self._refuse(BackendBadResponse(self._service, "answered with a body that "
                                            "cannot be decompressed"))

    def finish(self) -> bytes:
        if self._inflater is not None:
            try:
                for piece in self._inflater.rest():
                    self._keep(piece)
            except zlib.error:
                self._refuse(BackendBadResponse(self._service, "answered with a body "
                                                "that cannot be decompressed"))
        chunks = self._chunks
        self._chunks = []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._cap:
            self._refuse(too_large(self._service, self._cap))
        self._chunks.append(piece)

    def _refuse(self, error: BackendBadResponse) -> None:
        self._chunks.clear()
        raise error
