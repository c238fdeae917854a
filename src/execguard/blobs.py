"""Base64 blobs in command text: find them, decode them to readable text, encode text back.

Shared by decode.py (rules match the payload) and redact.py (a secret inside a blob is masked in
the blob itself), so both agree on what counts as a blob.
"""

from __future__ import annotations

import base64
import binascii
import re

BLOB = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


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


def is_word(blob: str) -> bool:
    """Plain words and paths are not payloads."""
    return blob.isalpha() and (blob.islower() or blob.isupper())


def decode(blob: str) -> str | None:
    """Readable text a blob decodes to, or None."""
    padded = blob + "=" * (-len(blob) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return _printable(decoder(padded))
        except (binascii.Error, ValueError):
            continue
    return None


def encode(text: str, like: str) -> str:
    """``text`` encoded in the alphabet and padding style of the blob ``like``."""
    data = text.encode("utf-8")
    out = base64.urlsafe_b64encode(data) if ("-" in like or "_" in like) else base64.b64encode(data)
    encoded = out.decode("ascii")
    return encoded if like.endswith("=") else encoded.rstrip("=")
