"""Reader framing: exact line numbers, blocks, long lines, documents, gzip, stdin, directories."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from execguard.sources import rawinput
from execguard.sources import reader as reader_mod
from execguard.sources.reader import Reader

URI = "/api/v1/namespaces/default/pods/web-{i}/exec?command=sh&command=-c&command=id&container=app"


def audit(i: int, uri: str | None = None, **extra: Any) -> dict[str, Any]:
    ev = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"id-{i}",
        "stage": "ResponseStarted",
        "verb": "create",
        "requestURI": uri or URI.format(i=i),
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "default", "name": f"web-{i}"},
        "responseStatus": {"code": 101},
        "stageTimestamp": "2024-05-01T10:00:00.000000Z",
    }
    ev.update(extra)
    return ev


def other(i: int) -> dict[str, Any]:
    """An audit event no exec rule can match (no prefilter literal)."""
    return audit(i, uri=f"/api/v1/namespaces/default/configmaps/c{i}", objectRef={"resource": "configmaps"})


def line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Run:
    def __init__(self, **kw: Any) -> None:
        self.warnings: list[tuple[str, int | None, str]] = []
        self.reader = Reader(warn=lambda f, n, m: self.warnings.append((f, n, m)), **kw)

    def __call__(self, *paths: str | Path) -> list[tuple[str | None, int | None]]:
        return [(ev.event_id, ev.source.line) for ev in self.reader.read([str(p) for p in paths])]

    @property
    def stats(self) -> reader_mod.Stats:
        return self.reader.stats

    def warned(self) -> list[tuple[int | None, str]]:
        return [(n, m) for _, n, m in self.warnings]


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few dozen bytes, so every test crosses many block boundaries."""
    monkeypatch.setattr(reader_mod, "BLOCK", 64)
    monkeypatch.setattr(reader_mod, "HEAD", 64)
    monkeypatch.setattr(rawinput, "GZ_CHUNK", 7)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ---- line-delimited ---------------------------------------------------------------------------
@pytest.mark.parametrize("block", [None, 64, 97, 1000])
@pytest.mark.parametrize("prefilter", [False, True])
def test_line_numbers_exact_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int | None, prefilter: bool) -> None:
    if block:
        monkeypatch.setattr(reader_mod, "BLOCK", block)
        monkeypatch.setattr(reader_mod, "HEAD", block)
    lines = []
    want = []
    for i in range(1, 200):
        if i % 7 == 0:
            lines.append(b"")  # blank lines count as lines
        elif i % 3 == 0:
            lines.append(line(audit(i)))
            want.append((f"id-{i}", i))
        else:
            lines.append(line(other(i)))
            if not prefilter:
                want.append((f"id-{i}", i))
    p = write(tmp_path, "a.log", b"\n".join(lines) + b"\n")
    run = Run(literals=[b"/exec"] if prefilter else None)
    got = run(p)
    if prefilter:
        got = [g for g in got if int(g[0][3:]) % 3 == 0]  # type: ignore[index]
    assert got == want
    assert run.warnings == []
    assert run.stats.lines == 199
    assert run.stats.peak_buffer <= 2 * reader_mod.BLOCK + run.reader.max_line


def test_last_line_without_newline_crlf_and_bom(tmp_path: Path, tiny: None) -> None:
    data = b"\xef\xbb\xbf" + line(audit(1)) + b"\r\n" + line(audit(2)) + b"\r\n\r\n" + line(audit(4))
    run = Run(literals=[b"/exec"])
    assert run(write(tmp_path, "c.log", data)) == [("id-1", 1), ("id-2", 2), ("id-4", 4)]
    assert run.warnings == []
    assert run.stats.lines == 4


@pytest.mark.parametrize("prefilter", [False, True])
def test_long_lines_skipped_with_warning(tmp_path: Path, tiny: None, prefilter: bool) -> None:
    long_ev = line(audit(2, uri="/api/v1/namespaces/x/pods/p/exec?command=" + "A" * 5000))
    data = b"\n".join([line(audit(1)), long_ev, line(audit(3)), b"x" * 3000 + b"/exec", line(audit(5))])
    run = Run(max_line=1000, literals=[b"/exec"] if prefilter else None)
    assert run(write(tmp_path, "l.log", data)) == [("id-1", 1), ("id-3", 3), ("id-5", 5)]
    assert run.warned() == [(2, "line longer than 1000 bytes skipped"), (4, "line longer than 1000 bytes skipped")]
    assert run.stats.bad == 2
    assert run.stats.lines == 5


def test_long_line_inside_one_block(tmp_path: Path) -> None:
    data = b"\n".join([line(audit(1)), b"{" + b" " * 1500 + b"}", line(audit(3))]) + b"\n"
    run = Run(max_line=1000)
    assert run(write(tmp_path, "l.log", data)) == [("id-1", 1), ("id-3", 3)]
    assert run.warned() == [(2, "line longer than 1000 bytes skipped")]


def test_long_last_line_and_long_tail(tmp_path: Path, tiny: None) -> None:
    data = line(audit(1)) + b"\n" + b"z" * 5000
    run = Run(max_line=1000)
    assert run(write(tmp_path, "t.log", data)) == [("id-1", 1)]
    assert run.warned() == [(2, "line longer than 1000 bytes skipped")]
    assert run.stats.lines == 2


def test_bad_lines_do_not_lose_good_ones(tmp_path: Path, tiny: None) -> None:
    data = b"\n".join(
        [
            line(audit(1)),
            b"not json",
            b"\x00\x00\x00",
            b"[1, 2]",
            b'"a string"',
            b'{"kind": "Event", "auditID": "x", "user": "not-an-object"}',
            line(audit(7)) + line(audit(8)),  # two objects on one line
            b'{"truncated": ',
            line(audit(9)).replace(b"alice", b"al\xffce"),  # invalid UTF-8: kept, repaired
            line(audit(10)),
        ]
    )
    run = Run()
    assert run(write(tmp_path, "b.log", data)) == [("id-1", 1), ("id-7", 7), ("id-8", 7), ("id-9", 9), ("id-10", 10)]
    lines = [n for n, _ in run.warned()]
    assert lines == [2, 3, 4, 4, 5, 6, 8, 9]
    assert run.stats.bad == 7
    assert run.stats.repaired == 1


def test_eventlist_line(tmp_path: Path) -> None:
    doc = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [audit(1), audit(2)]}
    run = Run()
    assert run(write(tmp_path, "list.json", line(other(0)) + b"\n" + line(doc) + b"\n")) == [("id-0", 1), ("id-1", 2), ("id-2", 2)]


# ---- documents ----------------------------------------------------------------------------------
def pretty(*objs: Any) -> bytes:
    return b"".join(json.dumps(o, indent=2).encode() + b"\n" for o in objs)


def starts(data: bytes) -> list[int]:
    return [i + 1 for i, ln in enumerate(data.split(b"\n")) if ln.startswith((b"{", b"  {"))]


@pytest.mark.parametrize("small", [False, True])
def test_pretty_printed_start_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: bool) -> None:
    if small:
        monkeypatch.setattr(reader_mod, "BLOCK", 50)
        monkeypatch.setattr(reader_mod, "HEAD", 50)
    data = pretty(audit(1), audit(2), audit(3))
    run = Run()
    first = starts(data)
    assert len(first) == 3 and first[0] == 1
    assert run(write(tmp_path, "p.json", data)) == [("id-1", first[0]), ("id-2", first[1]), ("id-3", first[2])]
    assert run.warnings == []
    assert run.stats.lines == data.count(b"\n")
    assert run.stats.parsed == 3


@pytest.mark.parametrize("small", [False, True])
def test_pretty_printed_resync_after_broken_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: bool) -> None:
    if small:
        monkeypatch.setattr(reader_mod, "BLOCK", 50)
        monkeypatch.setattr(reader_mod, "HEAD", 50)
    broken = json.dumps(audit(2), indent=2).replace('"verb": "create",', '"verb": "create" "oops",').encode() + b"\n"
    data = pretty(audit(1)) + broken + pretty(audit(3)) + b'{\n  "never": "closed",\n'
    run = Run()
    first = starts(data)
    assert run(write(tmp_path, "p.json", data)) == [("id-1", 1), ("id-3", first[2])]
    warned = run.warned()
    assert [n for n, _ in warned] == [first[1], first[3]]
    bad_line = 1 + data.split(b"\n").index(b'  "verb": "create" "oops",')
    assert f"at line {bad_line}" in warned[0][1]
    assert run.stats.bad == 2


def test_concatenated_and_array_documents(tmp_path: Path, tiny: None) -> None:
    concat = line(audit(1)) + line(audit(2)) + b"\n" + line(audit(3)) + b" " + line(audit(4))
    run = Run()
    assert run(write(tmp_path, "c.json", concat)) == [("id-1", 1), ("id-2", 1), ("id-3", 2), ("id-4", 2)]
    assert run.warnings == []
    arr = b"[\n" + b",\n".join(b"  " + line(audit(i)) for i in range(1, 4)) + b"\n]\n"
    run = Run()
    assert run(write(tmp_path, "a.json", arr)) == [("id-1", 2), ("id-2", 3), ("id-3", 4)]
    assert run.warnings == []
    pretty_arr = json.dumps([audit(1), audit(2)], indent=2).encode()
    run = Run()
    assert run(write(tmp_path, "pa.json", pretty_arr)) == [("id-1", 2), ("id-2", starts(pretty_arr)[1])]


def test_array_with_broken_element_resyncs(tmp_path: Path, tiny: None) -> None:
    good = json.dumps([audit(1), audit(2), audit(3)], indent=2)
    bad = good.replace('"auditID": "id-2",', '"auditID": "id-2" ,,', 1).encode()
    run = Run()
    first = starts(bad)
    assert run(write(tmp_path, "a.json", bad)) == [("id-1", 2), ("id-3", first[2])]
    assert [n for n, _ in run.warned()] == [first[1]]


def test_unclosed_array_and_deep_nesting(tmp_path: Path, tiny: None) -> None:
    run = Run()
    assert run(write(tmp_path, "u.json", b"[\n" + line(audit(1)) + b",\n")) == [("id-1", 2)]
    assert [m for _, m in run.warned()] == ["JSON array not closed at end of input"]
    run = Run()
    data = b"[" * 100_000 + b"\n" + pretty(audit(2))
    assert run(write(tmp_path, "d.json", data)) == [("id-2", 2)]
    assert run.stats.bad >= 1
    run = Run()
    data = pretty(audit(1)) + b'{\n  "a": ' + b"1" * 5000 + b"\n}\n" + pretty(audit(3))
    assert run(write(tmp_path, "n.json", data)) == [("id-1", 1), ("id-3", starts(data)[2])]
    assert [n for n, _ in run.warned()] == [starts(data)[1]]


def test_eventlist_document(tmp_path: Path, tiny: None) -> None:
    doc = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [audit(1), audit(2)]}
    run = Run()
    assert run(write(tmp_path, "l.json", b"\n\n" + json.dumps(doc, indent=2).encode())) == [("id-1", 3), ("id-2", 3)]


def test_falco_trace_files(data: Path) -> None:
    run = Run()
    got = run(*sorted((data / "falco").glob("*.json")))
    assert ("ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6", 1) in got
    assert any("not an object" in m or "no known format" in m for _, m in run.warned())  # fal_01_003: {"kind": 0}


# ---- gzip ----------------------------------------------------------------------------------------
def ndjson(n: int, start: int = 1) -> bytes:
    return b"".join(line(audit(i)) + b"\n" for i in range(start, start + n))


@pytest.mark.parametrize("small", [False, True])
def test_gzip_multi_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: bool) -> None:
    if small:
        monkeypatch.setattr(reader_mod, "BLOCK", 64)
        monkeypatch.setattr(reader_mod, "HEAD", 64)
        monkeypatch.setattr(rawinput, "GZ_CHUNK", 5)
    data = gzip.compress(ndjson(20)) + gzip.compress(ndjson(20, 21)) + b"\0" * 10
    run = Run()
    got = run(write(tmp_path, "m.log.gz", data))
    assert got == [(f"id-{i}", i) for i in range(1, 41)]
    assert run.warnings == []


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_gzip_keeps_events_before_the_cut(tmp_path: Path, tiny: None, cut: float) -> None:
    plain = ndjson(200)
    full = gzip.compress(plain)
    run = Run()
    got = run(write(tmp_path, "t.gz", full[: int(len(full) * cut)]))
    assert got == [(f"id-{i}", i) for i in range(1, len(got) + 1)]
    assert len(got) >= 1
    assert any("truncated or corrupt compressed data" in m for _, m in run.warned())
    # nothing decoded is lost: same events as reading the longest decodable prefix without gzip
    d = __import__("zlib").decompressobj(31)
    prefix = d.decompress(full[: int(len(full) * cut)])
    complete = prefix.count(b"\n")
    assert len(got) == complete


def test_gzip_trailing_garbage_and_corruption(tmp_path: Path, tiny: None) -> None:
    run = Run()
    assert run(write(tmp_path, "g.gz", gzip.compress(ndjson(3)) + b"garbage")) == [("id-1", 1), ("id-2", 2), ("id-3", 3)]
    assert any("trailing garbage" in m for _, m in run.warned())
    blob = bytearray(gzip.compress(ndjson(50)))
    blob[len(blob) // 2] ^= 0xFF
    run = Run()
    got = run(write(tmp_path, "c.gz", bytes(blob)))
    assert got == [(f"id-{i}", i) for i in range(1, len(got) + 1)]
    assert run.stats.bad >= 1


def test_gzip_pretty_printed(tmp_path: Path, tiny: None) -> None:
    run = Run()
    data = pretty(audit(1), audit(2))
    assert run(write(tmp_path, "p.json.gz", gzip.compress(data))) == [("id-1", 1), ("id-2", starts(data)[1])]


# ---- stdin, directories, unreadable ----------------------------------------------------------------
class FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


@pytest.mark.parametrize("compress", [False, True])
def test_stdin(monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    data = ndjson(3)
    monkeypatch.setattr(sys, "stdin", FakeStdin(gzip.compress(data) if compress else data))
    run = Run()
    assert run("-") == [("id-1", 1), ("id-2", 2), ("id-3", 3)]
    assert run.reader.stats.files == 1


def test_directory_recursive_sorted_with_unreadable(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    write(tmp_path, "a.log", ndjson(1, 1))
    write(tmp_path / "b", "x.log.gz", gzip.compress(ndjson(1, 2)))
    write(tmp_path / "b" / "c", "y.json", pretty(audit(3)))
    write(tmp_path, ".hidden", ndjson(1, 99))
    write(tmp_path, "empty.log", b"")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    run = Run()
    got = run(tmp_path, tmp_path / "missing.log")
    assert [g[0] for g in got] == ["id-1", "id-2", "id-3"]
    assert run.stats.unreadable == 2
    assert {Path(f).name for f, _, _ in run.warnings} == {"dangling", "missing.log"}


def test_unreadable_file_among_others(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files without permission")
    p = write(tmp_path, "secret.log", ndjson(1))
    p.chmod(0)
    run = Run()
    assert run(p, write(tmp_path, "ok.log", ndjson(1, 5))) == [("id-5", 1)]
    assert run.stats.unreadable == 1


def test_empty_and_whitespace_inputs(tmp_path: Path) -> None:
    for data in (b"", b"\n\n\n", b"   ", b"\xef\xbb\xbf", gzip.compress(b"")):
        run = Run()
        assert run(write(tmp_path, "e", data)) == []
        assert run.warnings == []
