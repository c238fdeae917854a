"""times.time_ns: the per-day arithmetic gives what one timegm per stamp gave, for any stamp."""

from __future__ import annotations

import re
from calendar import timegm

from hypothesis import given, settings
from hypothesis import strategies as st

from execguard import times

_WHOLE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)")


def _reference(date_time: str) -> int | None:
    """The whole-second parse as it was: one pattern, the ranges, one timegm."""
    m = _WHOLE.fullmatch(date_time)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups())
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s <= 60):
        return None
    return timegm((y, mo, d, h, mi, s, 0, 0, 0))


whole = st.builds(
    lambda y, mo, d, sep, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}",
    st.integers(1, 9999), st.integers(0, 13), st.integers(0, 32), st.sampled_from(["T", "t", " ", "x"]),
    st.integers(0, 24), st.integers(0, 60), st.integers(0, 61),
)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(whole, st.text(alphabet="0123456789-:T ٣", min_size=19, max_size=19)))
def test_whole_seconds_as_one_timegm(date_time: str) -> None:
    try:
        want: int | str | None = _reference(date_time)
    except ValueError:  # year 0000: timegm refuses it, then as now
        want = "ValueError"
    try:
        got: int | str | None = times._seconds.__wrapped__(date_time)
    except ValueError:
        got = "ValueError"
    assert got == want


def test_usual_stamps() -> None:
    assert times.time_ns("2026-03-01T10:00:00.123456Z") == (timegm((2026, 3, 1, 10, 0, 0)) * 10**9) + 123_456_000
    assert times.time_ns("2024-02-29T23:59:60Z") == timegm((2024, 3, 1, 0, 0, 0)) * 10**9  # a leap second rolls over
    assert times.time_ns("2026-02-31T00:00:00Z") == timegm((2026, 3, 3, 0, 0, 0)) * 10**9  # as timegm always took it
    assert times.time_ns("2026-13-01T00:00:00Z") is None
    assert times.time_ns("2026-03-01T24:00:00Z") is None
