"""Input nobody should lose: files of no known format named, UTF-16, records around a bad spot in a JSON
document, missing paths and special files, and alerts from a pipe as its records arrive."""

from __future__ import annotations

import gzip
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.pipeline import units
from execguard.sources import reader as reader_mod
from execguard.sources import sniff
from execguard.sources.reader import Reader

DATA = Path(__file__).parent / "data" / "input"
EXE = Path(sys.executable).parent / "execguard"


class Run:
    def __init__(self, **kw: object) -> None:
        self.warnings: list[tuple[str, int | None, str]] = []
        self.reader = Reader(warn=lambda f, n, m: self.warnings.append((f, n, m)), **kw)  # type: ignore[arg-type]

    def ids(self, *paths: str | Path) -> list[str | None]:
        return [ev.event_id for ev in self.reader.read([str(p) for p in paths])]


# ---- no known format ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("random.bin", sniff.BINARY),
        ("passwd", sniff.TEXT),
        ("kube-apiserver.klog", sniff.KLOG_TEXT),
        ("kube-apiserver-json.log", sniff.KLOG_JSON),
    ],
)
def test_unknown_format_is_named_per_file(name: str, kind: str) -> None:
    run = Run()
    assert run.ids(DATA / name) == []
    assert run.reader.stats.unknown_files == {str(DATA / name): kind}
    # binary data is not read; text is read for JSON lines further down, and named when it held none
    assert run.warnings == [(str(DATA / name), None, f"{kind}; not read" if kind == sniff.BINARY else kind)]
    assert run.reader.stats.files == 1 and run.reader.stats.bad == 0


def test_klog_message_says_where_audit_events_are() -> None:
    assert "klog text" in sniff.KLOG_TEXT and "--audit-log-path" in sniff.KLOG_TEXT


def test_audit_events_after_many_klog_lines_are_read(tmp_path: Path) -> None:
    """`kubectl logs kube-apiserver-x` with --audit-log-path=-: klog text first, audit events among it later."""
    klog = (DATA / "kube-apiserver.klog").read_bytes().split(b"\n")[1:4]
    audit = (DATA / "audit.log").read_bytes().split(b"\n")
    mixed = b"\n".join(klog * 40 + [x for a in audit for x in (a, klog[1])]) + b"\n"
    (tmp_path / "apiserver.log").write_bytes(mixed)
    run = Run()
    assert run.ids(tmp_path / "apiserver.log") == Run().ids(DATA / "audit.log")
    assert run.warnings == [] and run.reader.stats.unknown_files == {}


def test_known_formats_are_not_unknown(tmp_path: Path) -> None:
    audit = (DATA / "audit.log").read_bytes()
    run = Run()
    expected = run.ids(DATA / "audit.log")
    assert len(expected) > 40 and run.warnings == []
    # a line of text before the JSON lines: read, the text line is a bad record (when a rule could match it)
    (tmp_path / "preamble.log").write_bytes(b"some header /exec\n" + audit)
    run = Run()
    assert run.ids(tmp_path / "preamble.log") == expected
    assert run.reader.stats.unknown_files == {} and [n for _, n, _ in run.warnings] == [1]
    # klog-like JSON among audit events: an audit log
    klog_json = (DATA / "kube-apiserver-json.log").read_bytes()
    (tmp_path / "mixed.log").write_bytes(klog_json + audit)
    run = Run()
    assert run.ids(tmp_path / "mixed.log") == expected and run.reader.stats.unknown_files == {}
    # dockerd debug log (text) and docker events are known
    run = Run()
    run.ids(DATA.parent / "docker" / "dockerd-debug.log", DATA.parent / "docker" / "docker-events.jsonl")
    assert run.reader.stats.unknown_files == {} and run.reader.stats.events > 0
    # with a format named, text is checked line by line against it instead
    run = Run(fmt="k8s-audit")
    run.ids(DATA / "passwd")
    assert run.reader.stats.unknown_files == {}


@pytest.mark.parametrize("name", ["audit-utf16.log", "audit-utf16le.log", "audit-utf8-bom.log"])
def test_utf16_and_bom_audit_logs_are_read(name: str) -> None:
    plain = Run()
    expected = [(e.event_id, e.source.line) for e in plain.reader.read([str(DATA / "audit.log")])]
    run = Run()
    got = [(e.event_id, e.source.line) for e in run.reader.read([str(DATA / name)])]
    assert got == expected and run.warnings == []


def test_utf16_pretty_document_and_gzip(tmp_path: Path) -> None:
    first = (DATA / "audit.log").read_text().splitlines()[0]
    pretty = json.dumps(json.loads(first), indent=2)
    (tmp_path / "p.json").write_text(pretty, encoding="utf-16")
    (tmp_path / "a.log.gz").write_bytes(gzip.compress((DATA / "audit-utf16le.log").read_bytes()))
    run = Run()
    assert run.ids(tmp_path / "p.json") == [json.loads(first)["auditID"]]
    assert len(run.ids(tmp_path / "a.log.gz")) == len(Run().ids(DATA / "audit.log"))
    assert run.warnings == []


def test_utf16_detection() -> None:
    assert sniff.utf16("{}\n".encode("utf-16")) == "utf-16"
    assert sniff.utf16('{"kind": "Event"}'.encode("utf-16-be")) == "utf-16-be"
    assert sniff.utf16(b'{"kind": "Event"}') is None
    assert sniff.utf16(b'{"a": "\x00\x00"}') is None  # a few NULs in UTF-8 are not UTF-16


def test_cli_summary_names_unknown_inputs(tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    for name in ("random.bin", "passwd", "kube-apiserver.klog", "audit.log"):
        shutil.copy(DATA / name, d / name)
    env = {**os.environ, "COLUMNS": "2000"}  # one summary line
    p = subprocess.run([str(EXE), "hunt", "-o", "jsonl", str(d)], capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0
    assert len(p.stdout.splitlines()) > 0
    summary = next(line for line in p.stderr.splitlines() if line.startswith("execguard "))  # by rule / by actor follow it
    assert "3 inputs of no known format" in summary
    for name, kind in (("random.bin", "binary data"), ("passwd", "text of no known format"), ("kube-apiserver.klog", "klog text")):
        assert f"{d / name}: {kind}" in p.stderr  # the warning
        assert f"{d / name} ({kind}" in summary
    # alone: no alerts, but the summary says why
    p = subprocess.run([str(EXE), "hunt", str(d / "kube-apiserver.klog")], capture_output=True, text=True, env=env, check=False)
    summary = next(line for line in p.stderr.splitlines() if line.startswith("execguard "))
    assert "No alerts." in p.stdout and "1 input of no known format" in summary


# ---- bad spots in JSON documents -----------------------------------------------------------------------
def export_ids(path: Path) -> list[str]:
    return [json.loads(e["message"])["auditID"] for e in json.loads(path.read_text())["events"] if e["message"].startswith("{")]


def test_cut_export_keeps_every_complete_record() -> None:
    full = Run()
    all_ids = full.ids(DATA / "export-full.json")
    assert all_ids == export_ids(DATA / "export-full.json") and full.warnings == []
    run = Run()
    got = run.ids(DATA / "export-cut.json")
    assert got == all_ids[:-1]  # the last element is cut in the middle
    (line, message), = [(n, m) for _, n, m in run.warnings]
    assert "cut short" in message and "skipped" in message
    text = (DATA / "export-cut.json").read_text()
    assert line == 1 + text[: text.rfind("\n        {\n") + 1].count("\n")  # the line the cut element starts on
    assert run.reader.stats.bad == 1


@pytest.mark.parametrize("name", ["export-bad-element.json", "export-compact-bad-element.json"])
def test_export_with_a_bad_element_keeps_the_others(name: str) -> None:
    all_ids = Run().ids(DATA / "export-full.json")
    run = Run()
    got = run.ids(DATA / name)
    broken = json.loads((DATA / "export-full.json").read_text())["events"][20]  # the element broken in the file
    assert got == [i for i in all_ids if i != json.loads(broken["message"])["auditID"]] and len(got) == len(all_ids) - 1
    assert len(run.warnings) == 1 and "array element skipped" in run.warnings[0][2]


def test_array_with_a_bad_element_on_one_line() -> None:
    full = Run()
    all_events = [(e.event_id, e.action) for e in full.reader.read([str(DATA / "array-full.json")])]
    run = Run()
    got = [(e.event_id, e.action) for e in run.reader.read([str(DATA / "array-bad-element.json")])]
    assert len(got) == len(all_events) - 1 and set(got) <= set(all_events)
    assert len(run.warnings) == 1 and run.reader.stats.bad == 1


def test_broken_object_without_array_is_one_bad_record(tmp_path: Path) -> None:
    """No object in an array to keep: the object costs one warning, as before; a record is not kept in part."""
    (tmp_path / "b.json").write_text('{\n  "kind": "Event",\n  "verb" "x"\n}\n')
    run = Run()
    assert run.ids(tmp_path / "b.json") == []
    assert [m.startswith("not JSON") for _, _, m in run.warnings] == [True]
    event = json.dumps(json.loads((DATA / "audit.log").read_text().splitlines()[0]), indent=2)
    assert '"sourceIPs": [' in event
    cut = event[: event.index("]", event.index('"sourceIPs"')) + 1] + ',\n  "objectRef": {"resource": "pods", '
    (tmp_path / "c.json").write_text(cut + "\n" + event + "\n")
    run = Run()
    assert run.ids(tmp_path / "c.json") == [json.loads(event)["auditID"]]  # the whole one after the broken one
    assert len(run.warnings) == 1 and run.warnings[0][1:] == (1, run.warnings[0][2]) and "not JSON" in run.warnings[0][2]


def test_parallel_gives_the_same_on_bad_spots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(units, "MIN_TOTAL", 0)
    monkeypatch.setattr(units.plan, "__defaults__", (16 << 10,))  # small units: big.log below is cut in ranges
    d = tmp_path / "bad"
    d.mkdir()
    for name in ("export-cut.json", "export-bad-element.json", "export-compact-bad-element.json", "array-bad-element.json",
                 "random.bin", "audit-utf16.log", "audit.log"):  # fmt: skip
        shutil.copy(DATA / name, d / name)
    # a line-delimited file large enough to be cut in ranges, with a bad line
    lines = (DATA / "audit.log").read_text().splitlines(keepends=True) * 8
    lines[100] = lines[100][:50] + "\n"
    (d / "big.log").write_text("".join(lines))
    outs = []
    for jobs in ("1", "2"):
        res = CliRunner().invoke(app, ["hunt", "-o", "jsonl", "-j", jobs, str(d), str(tmp_path / "missing.log")])
        assert res.exit_code == 2  # the missing path
        outs.append((res.stdout, res.stderr))
    assert outs[0] == outs[1]
    assert outs[0][0].count("\n") > 40 and "cut short" in outs[0][1] and "missing.log" in outs[0][1]
    planned = units.plan(Reader(), [str(d)], 16 << 10) or []
    assert sum(u.path.endswith("big.log") for u in planned) > 1  # cut in ranges


# ---- missing paths, special files ---------------------------------------------------------------------
def test_missing_path_first_then_good() -> None:
    res = CliRunner().invoke(app, ["hunt", "-o", "jsonl", "/no/such/file", str(DATA / "audit.log")])
    assert res.exit_code == 2
    alone = CliRunner().invoke(app, ["hunt", "-o", "jsonl", str(DATA / "audit.log")])
    assert res.stdout == alone.stdout and alone.stdout
    assert "/no/such/file: no such file or directory" in res.stderr


def _feed_fifo(path: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as f:  # blocks until the reader opens it
            f.write(data)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_fifo_in_a_directory_is_named_and_skipped_but_read_when_named(tmp_path: Path) -> None:
    shutil.copy(DATA / "audit.log", tmp_path / "audit.log")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    run = Run()
    expected = Run().ids(DATA / "audit.log")
    assert run.ids(tmp_path) == expected  # does not wait on the FIFO
    assert run.warnings == [(str(fifo), None, "skipped: a FIFO (named pipe), not a regular file (name it on the command line to read it)")]
    assert run.reader.stats.skipped == 1 and run.reader.stats.unreadable == 0
    writer = _feed_fifo(fifo, (DATA / "audit.log").read_bytes())
    run = Run()
    assert run.ids(fifo) == expected
    writer.join(30)


def test_kernel_file_systems_are_not_walked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/kmsg is a regular file whose read never ends: a walk (``hunt /``) must not enter /proc, /sys, /dev."""
    from execguard.sources import discover

    table = tmp_path / "mounts"
    (tmp_path / "logs" / "my proc").mkdir(parents=True)
    shutil.copy(DATA / "audit.log", tmp_path / "logs" / "audit.log")
    (tmp_path / "logs" / "my proc" / "audit.log").write_bytes((DATA / "audit.log").read_bytes())
    table.write_text(f"proc {tmp_path}/logs/my\\040proc proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\n")
    assert discover._pseudo_mounts(str(table)) == {f"{tmp_path}/logs/my proc": "proc"}
    monkeypatch.setattr(discover, "_pseudo_mounts", lambda: {f"{tmp_path}/logs/my proc": "proc"})
    run = Run()
    assert run.ids(tmp_path / "logs") == Run().ids(DATA / "audit.log")  # read once, not twice
    assert run.warnings == [(f"{tmp_path}/logs/my proc", None, "skipped: a proc file system, not logs")]


def test_proc_named_as_a_directory_is_skipped() -> None:
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    res = CliRunner().invoke(app, ["hunt", "-o", "jsonl", "/proc"])
    assert res.exit_code == 0 and res.stdout == ""
    assert "/proc: skipped: a proc file system, not logs" in res.stderr


# ---- streams --------------------------------------------------------------------------------------------
def _read_until(fd: int, needle: bytes, timeout: float = 60.0) -> bytes:
    """Output of fd until needle appears (or the generous deadline passes)."""
    got = b""
    deadline = time.monotonic() + timeout
    while needle not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.parametrize("output", ["jsonl", "table"])
def test_alert_printed_when_its_record_arrives(output: str) -> None:
    record = (DATA / "audit.log").read_bytes().split(b"\n")[0] + b"\n"
    audit_id = json.loads(record)["auditID"].encode()
    proc = subprocess.Popen(
        [str(EXE), "hunt", "-o", output, "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(record)
        proc.stdin.flush()
        # the table shows where the record came from, the JSON line its audit ID
        seen = _read_until(proc.stdout.fileno(), audit_id if output == "jsonl" else b"<stdin>:1")
        assert (audit_id if output == "jsonl" else b"<stdin>:1") in seen  # stdin is still open
        proc.stdin.write(record.replace(audit_id, audit_id + b"-2"))
        proc.stdin.flush()
        if output == "jsonl":
            assert audit_id + b"-2" in _read_until(proc.stdout.fileno(), audit_id + b"-2")
        proc.stdin.close()
        assert proc.stderr is not None
        proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert b"2 events" in err


def test_stream_starting_with_klog_is_named_and_read_on() -> None:
    klog = (DATA / "kube-apiserver.klog").read_bytes()
    record = (DATA / "audit.log").read_bytes().split(b"\n")[0] + b"\n"
    proc = subprocess.Popen([str(EXE), "hunt", "-o", "jsonl", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(klog.split(b"\n")[1] + b"\n")
        proc.stdin.flush()
        time.sleep(0.5)  # let the first line arrive alone (not a timing assertion: either way the alert must come)
        proc.stdin.write(record)
        proc.stdin.flush()
        assert json.loads(record)["auditID"].encode() in _read_until(proc.stdout.fileno(), b"\n")
        proc.stdin.close()
        assert proc.stderr is not None
        proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(60)
    finally:
        proc.kill()
    assert b"klog" in err or b"1 event (" in err  # the klog line is named, or (both in one read) the record is simply read


def test_regular_files_are_not_streams(tmp_path: Path) -> None:
    assert not reader_mod.is_stream(str(DATA / "audit.log")) and not reader_mod.is_stream(str(tmp_path))
    os.mkfifo(tmp_path / "f")
    assert reader_mod.is_stream(str(tmp_path / "f"))


@pytest.mark.parametrize("head", [1 << 10, 64 << 10])
def test_one_line_export_cut_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, head: int) -> None:
    """A compact export longer than the sniffed head is framed as a line: its complete records are kept too."""
    monkeypatch.setattr(reader_mod, "HEAD", head)
    full = json.loads((DATA / "export-full.json").read_text())
    compact = json.dumps(full)
    (tmp_path / "cut.json").write_text(compact[: compact.rfind('"message"') + 100])
    all_ids = Run().ids(DATA / "export-full.json")
    run = Run()
    assert run.ids(tmp_path / "cut.json") == all_ids[:-1]
    assert len(run.warnings) == 1 and "cut short" in run.warnings[0][2] and run.warnings[0][1] == 1


def test_utf16_file_is_not_cut_in_ranges(tmp_path: Path) -> None:
    data = (DATA / "audit.log").read_text() * 4
    for codec in ("utf-16", "utf-16-le", "utf-16-be"):
        (tmp_path / "a.log").write_text(data, encoding=codec)
        assert Reader().ranges(str(tmp_path / "a.log"), 4096) is None
    (tmp_path / "a.log").write_text(data)
    assert Reader().ranges(str(tmp_path / "a.log"), 4096)  # the same in UTF-8 is cut
