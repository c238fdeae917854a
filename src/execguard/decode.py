"""Decode what attackers hide in argv: base64 blobs, so rules can match the payload too.

Argv from a source is already redacted, blobs included (redact.py re-encodes a blob that held a
secret); decoded text is redacted once more so an Event built elsewhere cannot leak through a reason.
"""

from __future__ import annotations

from . import blobs, redact

_MAX_DEPTH = 2


def decoded_blobs(argv: list[str]) -> str:
    """Text of every base64 blob in argv that decodes to readable text, nested blobs included."""
    out: list[str] = []
    pending = [(arg, 0) for arg in argv]
    while pending:
        text, depth = pending.pop(0)
        if depth >= _MAX_DEPTH or len(text) < 16:
            continue
        for m in blobs.BLOB.finditer(text):
            blob = m.group(0)
            if blobs.is_word(blob):
                continue
            plain = blobs.decode(blob)
            if plain:
                plain = redact.text(plain)
                out.append(plain)
                pending.append((plain, depth + 1))
    return "\n".join(out)


def command_text(line: str, decoded: str) -> str:
    return f"{line}\n{decoded}" if decoded else line
