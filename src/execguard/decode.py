"""Decode what attackers hide in argv: base64 blobs, so rules can match the payload too.

Decoded text is redacted like argv itself: a secret hidden in a blob must not reach a reason.
"""

from __future__ import annotations

import base64
import binascii
import re

from . import redact

_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_MAX_DEPTH = 2


def _printable(data: bytes) -> str | None:
    # PowerShell -EncodedCommand is base64 of UTF-16LE: ASCII text with a NUL after every byte
    utf16 = len(data) >= 4 and len(data) % 2 == 0 and not any(data[1::2])
    try:
        text = data.decode("utf-16-le" if utf16 else "utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    good = sum(ch.isprintable() or ch in "\n\r\t" for ch in text)
    return text if good / len(text) >= 0.9 else None


def _decode_one(blob: str) -> str | None:
    padded = blob + "=" * (-len(blob) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return _printable(decoder(padded))
        except (binascii.Error, ValueError):
            continue
    return None


def decoded_blobs(argv: list[str]) -> str:
    """Text of every base64 blob in argv that decodes to readable text, nested blobs included."""
    out: list[str] = []
    pending = [(arg, 0) for arg in argv]
    while pending:
        text, depth = pending.pop(0)
        if depth >= _MAX_DEPTH or len(text) < 16:
            continue
        for m in _B64.finditer(text):
            blob = m.group(0)
            # plain words and paths are not payloads
            if blob.isalpha() and (blob.islower() or blob.isupper()):
                continue
            plain = _decode_one(blob)
            if plain:
                plain = redact.text(plain)
                out.append(plain)
                pending.append((plain, depth + 1))
    return "\n".join(out)


def command_text(line: str, decoded: str) -> str:
    return f"{line}\n{decoded}" if decoded else line
