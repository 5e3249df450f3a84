"""Framing JSON messages in a byte stream, line by line, with the JSON decoder itself.

    framer = Framer()
    for frame in framer.feed(b'{"a": 1}\n'):      # complete lines (or None: too long)
        frame.value, frame.error                   # a message, or why one was refused
    framer.finish()                                # at end of input

A message may span several lines. Whether the text so far is a message, the start
of one, or garbage is decided by `json.JSONDecoder.raw_decode`: an error at a
position before the end of the text is invalid input (one error for that message);
running out of text means "wait for more". After invalid input, reading starts
again at the next line that opens a message at column 0 (`{` or `[`), so one bad
message costs one error and never swallows the messages after it.

Each line is decoded as UTF-8 on its own (invalid bytes refuse that message, not
the stream); NaN and Infinity are refused (they are not JSON, and an echoed NaN
would make the reply invalid too); nesting too deep for the decoder is refused;
a message over `max_bytes` is refused. Decoding is attempted when a line could
end a message (it ends in `}` or `]`), could start one, or when the text has
doubled since the last attempt, so a long message costs linear work, not
quadratic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BYTES = 1024 * 1024
_OPENERS = ("{", "[")


@dataclass(frozen=True)
class Frame:
    value: Any = None
    error: str | None = None  # set when the message was refused


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


class Framer:
    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._text = ""  # the pending, undecided part of the input
        self._bytes = 0  # its size in bytes
        self._tried = 0  # its length at the last attempt that ran out of text
        self._skipping = False  # after a refused message: until the next one starts

    def feed(self, line: bytes | None) -> Iterator[Frame]:
        """One line of input (with its newline), or None for a line longer than
        `max_bytes` that the reader dropped."""
        if line is None:
            yield from self._refuse(f"a message is at most {self.max_bytes} bytes")
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield from self._refuse("a message must be UTF-8 text")
            return
        if self._skipping:
            if not text.startswith(_OPENERS):
                return
            self._skipping = False
        if not self._text and not text.strip():
            return
        self._text += text
        self._bytes += len(line)
        if self._bytes > self.max_bytes:
            yield from self._refuse(f"a message is at most {self.max_bytes} bytes")
            return
        stripped = text.rstrip()
        if (self._tried == 0 or stripped.endswith(("}", "]")) or text.startswith(_OPENERS)
                or len(self._text) >= 2 * self._tried):
            yield from self._decode(final=False)

    def finish(self) -> Iterator[Frame]:
        """End of input: what is pending is a message, or an incomplete one."""
        yield from self._decode(final=True)
        self._text, self._bytes, self._tried = "", 0, 0

    def _refuse(self, why: str) -> Iterator[Frame]:
        yield Frame(error=why)
        self._text, self._bytes, self._tried, self._skipping = "", 0, 0, True

    def _decode(self, *, final: bool) -> Iterator[Frame]:
        text = self._text
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                text = ""
                break
            try:
                value, pos = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                if _ran_out(text, exc):
                    if final:
                        yield Frame(error="the input ended in the middle of a message")
                        text = ""
                    else:
                        text = text[pos:]
                    break
                yield Frame(error=f"not JSON: {exc.msg.removesuffix(' at')} (line "
                                  f"{exc.lineno} column {exc.colno} of the message)")
                pos = _resync(text, pos, exc.pos)
            except RecursionError:
                yield Frame(error="not JSON: nested too deeply")
                pos = _resync(text, pos, pos)
            except ValueError as exc:  # NaN, Infinity
                yield Frame(error=f"not JSON: {exc}")
                pos = _resync(text, pos, pos)
            else:
                yield Frame(value)
                continue
            if pos == len(text):  # the bad message may go on in lines not read yet
                self._skipping = True
        self._text = text
        self._bytes = len(text.encode("utf-8", "surrogatepass"))
        self._tried = len(text)


def _ran_out(text: str, exc: json.JSONDecodeError) -> bool:
    """Did decoding fail only because the text ended? (A string cannot hold a raw
    line break, so an open string at the end of a line is an error, not a wait.)"""
    return exc.pos >= len(text.rstrip()) and not exc.msg.startswith("Invalid control")


def _resync(text: str, start: int, error_at: int) -> int:
    """Where reading starts again after a bad message that began at `start`: the
    next line, from the one the error is on, that opens a message at column 0."""
    line_start = text.rfind("\n", 0, error_at) + 1
    if line_start > start and text.startswith(_OPENERS, line_start):
        return line_start
    at = error_at
    while (newline := text.find("\n", at)) != -1:
        if text.startswith(_OPENERS, newline + 1):
            return newline + 1
        at = newline + 1
    return len(text)
