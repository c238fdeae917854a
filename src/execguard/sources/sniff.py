"""Name what a file is when it is none of the formats execguard reads, and find UTF-16 text.

Used by the reader on a file's first bytes once no JSON record and no known text format was found
there: the file is then named (binary data, klog text, other text) instead of reading as "No alerts".
"""

from __future__ import annotations

import re

# kube-apiserver's own log (what `kubectl logs kube-apiserver-x` prints): klog text, e.g.
# I1202 04:42:44.123456       1 httplog.go:132] "HTTP" verb="GET" URI="/readyz" ...
_KLOG = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6}\s+\d+ [^ :\]]+:\d+\] ", re.MULTILINE)

KLOG_TEXT = "klog text (the API server's own log), not audit events: read the audit log file (--audit-log-path) instead"
KLOG_JSON = "klog JSON (the API server's own log), not audit events: read the audit log file (--audit-log-path) instead"
BINARY = "binary data of no known format"
TEXT = "text of no known format (no JSON record and no dockerd or auditd log line near its start)"

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def utf16(head: bytes) -> str | None:
    """The codec of a UTF-16 head ('utf-16' with a byte order mark, else 'utf-16-le'/'utf-16-be'), or None.

    Without a mark, UTF-16 text of ASCII (all a log holds outside its strings) has a NUL in every
    other byte, which no UTF-8 log does.
    """
    if head[:2] in UTF16_BOMS:
        return "utf-16"
    sample = head[:1024]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def unknown_kind(head: bytes) -> str:
    """What a head holding no JSON record and no known text format is, as a phrase for a warning."""
    if _KLOG.search(head):
        return KLOG_TEXT
    if is_binary(head):
        return BINARY
    return TEXT


def is_binary(head: bytes) -> bool:
    """NUL bytes, or many bytes that are neither text controls nor valid UTF-8."""
    sample = head[:8192]
    if not sample:
        return False
    if b"\0" in sample:
        return True
    text = sample.decode("utf-8", errors="replace")
    odd = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in "\t\n\r\f\v\x1b"))
    return odd > 0.1 * len(text)


def klog_json(obj: dict[str, object]) -> bool:
    """A structured (JSON) klog line: ``{"ts": 1.7e9, "caller": "x.go:1", "msg": "..."}``."""
    return "ts" in obj and "msg" in obj and ("caller" in obj or "v" in obj)
