"""The bytes of one input: a file, a range of one, stdin or a pipe; gzip found by its magic and decoded here."""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from typing import IO, Any

GZ_MAGIC = b"\x1f\x8b"
GZ_CHUNK = 1 << 20  # compressed bytes fed to zlib at a time (read at call time: tests patch it small)


class Input:
    """A byte stream with ``read(n)`` that returns n bytes unless at the end, and a raw byte count.

    gzip (found by its magic, also on stdin) is decoded here with zlib, member after member, so that
    every byte decoded before a truncation or corruption is handed out before the error is raised.
    """

    def __init__(self, raw: IO[bytes], owned: bool, plain: bool = False, limit: int | None = None) -> None:
        self.raw = raw
        self.owned = owned
        # a pipe, FIFO or terminal: hand out what has arrived instead of waiting for a full block
        self.stream = is_pipe(raw)
        self.consumed = 0  # raw bytes read from the underlying file
        self.limit = limit  # read no more than this many raw bytes (a range of a file)
        self._head = b"" if plain else self._raw_read(2)
        while len(self._head) == 1:  # a pipe may hand out one byte at a time
            more = self._raw_read(1)
            if not more:
                break
            self._head += more
        self.gzip = self._head == GZ_MAGIC
        self._z: Any = None  # current member's decompressor (None between members)
        self._zin = b""  # compressed input not yet given to zlib
        self._eof = False
        self._error: BaseException | None = None
        if self.gzip:
            self._zin, self._head = self._head, b""

    def _raw_read(self, n: int) -> bytes:
        if self.limit is not None:
            n = min(n, self.limit - self.consumed)
            if n <= 0:
                return b""
        read1 = getattr(self.raw, "read1", None) if self.stream else None
        data = read1(n) if read1 is not None else self.raw.read(n)
        if data is None:  # non-blocking streams
            return b""
        self.consumed += len(data)
        return data

    def readinto(self, buf: bytearray) -> int:
        """Fill buf from a plain stream without a new allocation per block; bytes read (less only at the end)."""
        if self.gzip or self._head:
            data = self.read(len(buf))
            buf[: len(data)] = data
            return len(data)
        got = 0
        with memoryview(buf) as view:
            while got < len(buf):
                want = len(buf) - got
                if self.limit is not None:
                    want = min(want, self.limit - self.consumed)
                    if want <= 0:
                        break
                n = self.raw.readinto(view[got : got + want])  # type: ignore[attr-defined]
                if not n:
                    break
                got += n
                self.consumed += n
        return got

    def read(self, n: int) -> bytes:
        if not self.gzip:
            if self._head:
                out, self._head = self._head[:n], self._head[n:]
                rest = n - len(out)
                while rest > 0:
                    more = self._raw_read(rest)
                    if not more:
                        break
                    out += more
                    rest -= len(more)
                    if self.stream:
                        break
                return out
            out = b""
            while len(out) < n:
                more = self._raw_read(n - len(out))
                if not more:
                    break
                out = more if not out else out + more
                if self.stream:
                    break
            return out
        buf = bytearray()
        while len(buf) < n and not (self.stream and buf):
            if self._error is not None:
                if buf:
                    break
                error, self._error = self._error, None
                self._eof = True
                raise error
            if self._eof:
                break
            self._gunzip_step(n - len(buf), buf)
        return bytes(buf)

    def _gunzip_step(self, want: int, out: bytearray) -> None:
        if not self._zin:
            if self._z is not None:
                # output zlib still holds for input it has already taken
                pending = self._z.decompress(b"", want)
                if pending:
                    out += pending
                    return
            self._zin = self._raw_read(GZ_CHUNK)
            if not self._zin:
                if self._z is None:
                    self._eof = True
                else:
                    self._error = EOFError("compressed data ends before its end-of-stream marker")
                return
        if self._z is None:
            # between members: zero padding is allowed, anything else must be another member
            self._zin = self._zin.lstrip(b"\0")
            if not self._zin:
                return
            if len(self._zin) < 2:
                self._zin += self._raw_read(1)
            if self._zin[:2] != GZ_MAGIC:
                self._error = gzip.BadGzipFile("trailing garbage after compressed data")
                return
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += self._z.decompress(self._zin, want)
        except zlib.error as exc:
            self._error = exc
            return
        if self._z.eof:
            self._zin, self._z = self._z.unused_data, None
        else:
            self._zin = self._z.unconsumed_tail

    def close(self) -> None:
        if self.owned:
            self.raw.close()


def is_pipe(raw: IO[bytes]) -> bool:
    try:
        return not stat.S_ISREG(os.fstat(raw.fileno()).st_mode)
    except (OSError, ValueError):  # an in-memory stream
        return False
