"""RFC 3339 stamps as integer nanoseconds: shared by the pipeline's filters and sort and the table sink."""

from __future__ import annotations

import re
from calendar import timegm
from functools import lru_cache

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(?:([Zz])|([+-])(\d\d):?(\d\d))?"
)
NS = 1_000_000_000


# an alert's time is read by the sort, the Docker de-duplication and the filters in turn: parse it once
@lru_cache(maxsize=1024)
def time_ns(value: str | None) -> int | None:
    """An RFC 3339 stamp as nanoseconds since the epoch (no zone means UTC); None when it is not one."""
    if not value:
        return None
    m = _RFC3339.fullmatch(value.strip())
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, _z, sign, oh, om = m.groups()
    secs = _seconds(y, mo, d, h, mi, s)
    if secs is None:
        return None
    if sign:
        offset = int(oh) * 3600 + int(om) * 60
        secs -= offset if sign == "+" else -offset
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return secs * NS + nanos


# a log holds many records per second, each stamp with its own fraction: the calendar arithmetic is kept per second
@lru_cache(maxsize=4096)
def _seconds(y: str, mo: str, d: str, h: str, mi: str, s: str) -> int | None:
    if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31 and int(h) < 24 and int(mi) < 60 and int(s) <= 60):
        return None
    return timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
