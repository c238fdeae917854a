"""The spool hand-off between the receiver and the engine (live/handoff.py), both sides in this process: the reader
sees only what the writer fsynced, follows segment rotation, and its commits free the writer's size limit."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from execguard.live.handoff import Shared, SpoolReader, pack, unpack
from execguard.live.spool import Position, Spool, SpoolFull


def pair(tmp_path: Path, **kw: int) -> tuple[Spool, SpoolReader, Shared]:
    shared = Shared(multiprocessing.get_context("spawn"))
    reader = SpoolReader(tmp_path / "spool", shared)

    def on_synced(pos: Position) -> None:
        shared.synced.value = pack(pos)

    writer = Spool(tmp_path / "spool", on_synced=on_synced, committed=lambda: unpack(int(shared.committed.value)), **kw)
    return writer, reader, shared


def test_positions_fit_one_word() -> None:
    for pos in (Position(0, 0), Position(1, 64 << 20), Position(123456, (1 << 40) - 1)):
        assert unpack(pack(pos)) == pos


def test_reader_gets_what_the_writer_synced_across_segments_and_commits_free_its_limit(tmp_path: Path) -> None:
    writer, reader, _ = pair(tmp_path, max_bytes=2000, segment_bytes=1000)
    assert reader.read(8) == [] and reader.empty()
    bodies = [bytes([65 + i]) * 300 for i in range(10)]
    sent = []
    with pytest.raises(SpoolFull):
        for body in bodies:
            writer.append(body)  # rotates every 4 frames; refused past 2000 bytes
            sent.append(body)
    assert 3 <= len(sent) < len(bodies)
    got = []
    while frames := reader.read(2):
        got.extend(f.payload for f in frames)
        reader.commit(frames[-1].end, {"out": "x", "size": len(got)})
    assert got == sent and reader.empty() and reader.lag == 0
    writer.append(bodies[-1])  # the reader's commits freed the writer's accounting: accepted again
    assert [f.payload for f in reader.read(8)] == [bodies[-1]]
    assert len(list((tmp_path / "spool").glob("seg-*.log"))) == 1  # segments the checkpoint passed are gone
    writer.close()


def test_a_new_reader_resumes_at_the_checkpoint(tmp_path: Path) -> None:
    writer, reader, shared = pair(tmp_path)
    for body in (b"one", b"two", b"three"):
        writer.append(body)
    first = reader.read(1)
    reader.commit(first[-1].end)
    writer.close()
    again = SpoolReader(tmp_path / "spool", shared)  # an engine restart (the writer's published end is kept)
    assert [f.payload for f in again.read(8)] == [b"two", b"three"]
