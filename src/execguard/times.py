"""RFC 3339 stamps as integer nanoseconds: shared by the pipeline's filters and sort and the table sink."""

from __future__ import annotations

import re
from calendar import timegm
from functools import lru_cache

# a stamp is a fixed-width date and time (19 characters), then an optional fraction and zone
_DATE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)")
_REST = re.compile(r"(?:[.,](\d+))?\s*(?:([Zz])|([+-])(\d\d):?(\d\d))?")
NS = 1_000_000_000


# an alert's time is read by the sort, the Docker de-duplication and the filters in turn: parse it once
@lru_cache(maxsize=1024)
def time_ns(value: str | None) -> int | None:
    """An RFC 3339 stamp as nanoseconds since the epoch (no zone means UTC); None when it is not one."""
    if not value:
        return None
    value = value.strip()
    secs = _seconds(value[:19])
    if secs is None:
        return None
    rest = value[19:]
    if rest == "Z":
        return secs * NS
    frac = rest[1:-1]
    if frac.isdecimal() and rest[0] in ".," and rest[-1] in "Zz":  # the usual shape, .123456Z: no pattern needed
        return secs * NS + int(frac[:9].ljust(9, "0"))
    m = _REST.fullmatch(rest)
    if m is None:
        return None
    frac, _z, sign, oh, om = m.groups()
    if sign:
        offset = int(oh) * 3600 + int(om) * 60
        secs -= offset if sign == "+" else -offset
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return secs * NS + nanos


# a log holds many records per second, each stamp with its own fraction: the calendar arithmetic is kept per
# second, and the day's part of it per day (a dense log has a new second every few records)
@lru_cache(maxsize=4096)
def _seconds(date_time: str) -> int | None:
    m = _DATE_TIME.fullmatch(date_time)
    if m is None:
        return None
    h, mi, s = int(m[4]), int(m[5]), int(m[6])
    if not (h < 24 and mi < 60 and s <= 60):
        return None
    day = _day(m[1], m[2], m[3])
    # what timegm computes: days since the epoch, then hours, minutes and seconds (a 60th second rolls over)
    return None if day is None else day + h * 3600 + mi * 60 + s


@lru_cache(maxsize=256)
def _day(year: str, month: str, day: str) -> int | None:
    """Midnight (UTC) of the day as seconds since the epoch; None for a month or day out of range (timegm
    itself takes a 31st of February as the 3rd of March, as the whole stamp's parse always did)."""
    y, mo, d = int(year), int(month), int(day)
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    return timegm((y, mo, d, 0, 0, 0, 0, 0, 0))
