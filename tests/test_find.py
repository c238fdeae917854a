"""line_starts: the Hyperscan path and the bytes.find fallback agree with a plain reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from execguard.sources import find
from execguard.sources.find import line_starts, minimal


def reference(chunk: bytes, literals: list[bytes] | None) -> list[tuple[int, int]]:
    """Split into lines (a last line without a newline counts) and test each with `in`."""
    out = []
    offset = 0
    lines = chunk.split(b"\n")
    if lines[-1] == b"":  # the chunk ends with a newline, or is empty
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        if literals is None or any(lit in line for lit in literals):
            out.append((offset, lineno))
        offset += len(line) + 1
    return out


# the backend is fixed for all of a test's generated inputs, so a function-scoped fixture is safe
@pytest.fixture(params=["hyperscan", "bytes.find"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "hyperscan":
        if find._hs is None:
            pytest.skip("hyperscan not installed")
    else:
        monkeypatch.setattr(find, "_hs", None)
    yield request.param


chunks = st.lists(st.sampled_from([b"a", b"b", b"c", b"ab", b"abc", b"\n", b"\n\n", b"/exec", b"ex"]), max_size=60).map(b"".join)
literal = st.sampled_from([b"a", b"b", b"ab", b"ba", b"abc", b"c\n", b"", b"/exec", b"exec", b"xyz", b"bb"]) | st.binary(max_size=3)
literal_lists = st.none() | st.lists(literal, max_size=5)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk=chunks, literals=literal_lists)
@example(chunk=b"ab\n", literals=[b"ab"])  # literal at both edges of the chunk
@example(chunk=b"ab\nab\n", literals=[b"b", b"a", b"ab"])  # several literals in one line
@example(chunk=b"\n\nab\n\n", literals=[b"ab"])  # empty lines
@example(chunk=b"\n\n", literals=None)
@example(chunk=b"x\nab", literals=[b"ab"])  # no trailing newline
@example(chunk=b"x\nab", literals=None)
@example(chunk=b"ab\n", literals=[b""])
@example(chunk=b"ab\n", literals=[])
@example(chunk=b"a\nb\n", literals=[b"a\nb"])  # a literal across lines is in no line
def test_matches_reference(backend: str, chunk: bytes, literals: list[bytes] | None) -> None:
    assert list(line_starts(chunk, literals)) == reference(chunk, literals)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30), literals=st.lists(literal, max_size=4))
def test_random_bytes(backend: str, lines: list[bytes], literals: list[bytes]) -> None:
    chunk = b"".join(line + b"\n" for line in lines)
    assert list(line_starts(chunk, literals)) == reference(chunk, literals)


def test_large_block_with_rare_literals(backend: str) -> None:
    line = b'{"verb":"get","requestURI":"/api/v1/namespaces/default/pods/web-1"}\n'
    hit = b'{"verb":"create","requestURI":"/api/v1/namespaces/default/pods/web-1/exec?command=sh"}\n'
    chunk = b"".join(hit if i % 997 == 0 or i == 9999 else line for i in range(10000))
    got = list(line_starts(chunk, [b"/exec", b"/attach", b"command"]))
    assert got == reference(chunk, [b"/exec"])
    assert got[-1][1] == 10000


def test_minimal_drops_literals_holding_another() -> None:
    assert minimal([b"/attach", b"attach", b".attach.", b"/exec", b"/exec", b"a\nb"]) == (b"/exec", b"attach")


def test_backend_name() -> None:
    assert find.backend() in ("hyperscan", "bytes.find")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=chunks, chunk=chunks, after=chunks, literals=literal_lists, as_bytearray=st.booleans())
def test_range_of_a_larger_buffer(
    backend: str, before: bytes, chunk: bytes, after: bytes, literals: list[bytes] | None, as_bytearray: bool
) -> None:
    """A range [start, end) of a bigger (reused, mutable) buffer gives the range's own lines, at buffer offsets."""
    before = before if before.endswith(b"\n") or not before else before + b"\n"
    chunk = chunk if chunk.endswith(b"\n") or not chunk else chunk + b"\n"
    data = before + chunk + after
    buf: bytes | bytearray = bytearray(data) if as_bytearray else data
    start, end = len(before), len(before) + len(chunk)
    want = [(offset + start, lineno) for offset, lineno in reference(chunk, literals)]
    assert list(line_starts(buf, literals, start, end)) == want


@pytest.mark.parametrize("numpy", [True, False])
def test_count_newlines_large_ranges(numpy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy (the fast extra) and bytes.count agree on ranges of every size, bytes or a reused bytearray."""
    if numpy and find._numpy() is None:
        pytest.skip("numpy not installed")
    if not numpy:
        monkeypatch.setattr(find, "_np", None)
    import random

    rng = random.Random(5)
    data = bytes(rng.choice(b"ab\n") for _ in range(300_000))
    for buf in (data, bytearray(data)):
        for start, end in [(0, len(data)), (1, 9), (17, 100_017), (250_000, 300_000), (5, 5), (123, 8_315)]:
            assert find.count_newlines(buf, start, end) == data.count(b"\n", start, end)


def test_large_chunk_same_lines_with_and_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    line = b'{"verb":"get","requestURI":"/api/v1/namespaces/default/pods/web-1"}\n'
    hit = b'{"verb":"create","requestURI":"/api/v1/namespaces/default/pods/web-1/exec?command=sh"}\n'
    chunk = bytearray(b"".join(hit if i % 1999 == 0 else line for i in range(50_000)))
    want = reference(bytes(chunk), [b"/exec"])
    assert list(line_starts(chunk, [b"/exec"])) == want
    monkeypatch.setattr(find, "_np", None)
    assert list(line_starts(chunk, [b"/exec"])) == want
