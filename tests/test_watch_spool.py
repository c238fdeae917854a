"""The webhook spool on real files: framing, commit, recovery from a torn tail, size limit, segment deletion."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from execguard.live.spool import CHECKPOINT, Spool, SpoolError, SpoolFull


def _payloads(spool: Spool) -> list[bytes]:
    out: list[bytes] = []
    while True:
        frames = spool.read(1000)
        if not frames:
            return out
        out.extend(f.payload for f in frames)
        spool.commit(frames[-1].end)


def test_append_read_commit_and_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    for i in range(5):
        sp.append(f"batch {i}".encode())
    frames = sp.read(3)
    assert [f.payload for f in frames] == [b"batch 0", b"batch 1", b"batch 2"]
    sp.commit(frames[1].end, {"out": "x", "size": 7})  # only the first two are done
    sp.close()

    again = Spool(tmp_path)
    assert again.mark == {"out": "x", "size": 7}
    assert _payloads(again) == [b"batch 2", b"batch 3", b"batch 4"]  # from the checkpoint: none lost, none twice
    assert again.empty()
    again.close()
    assert _payloads(Spool(tmp_path)) == []


def test_torn_tail_is_cut_and_the_rest_replayed(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(b"whole one")
    sp.append(b"whole two")
    sp.close()
    seg = next(tmp_path.glob("seg-*.log"))
    whole = seg.stat().st_size
    with open(seg, "ab") as f:  # a frame cut short by kill -9: a header promising more than is there
        f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00PSGE" + b"half")
    again = Spool(tmp_path)
    assert again.truncated == 16
    assert seg.stat().st_size == whole
    again.append(b"after")
    assert _payloads(again) == [b"whole one", b"whole two", b"after"]


def test_corrupt_payload_is_cut_at_the_bad_frame(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(b"good")
    sp.append(b"flipped")
    sp.close()
    seg = next(tmp_path.glob("seg-*.log"))
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF  # the CRC of the last frame no longer matches
    seg.write_bytes(bytes(data))
    assert _payloads(Spool(tmp_path)) == [b"good"]


def test_size_limit_refuses_and_frees_after_commit(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=1000, segment_bytes=300)
    n = 0
    with pytest.raises(SpoolFull):
        while True:
            sp.append(b"x" * 100)
            n += 1
    assert 5 <= n <= 9
    assert len(list(tmp_path.glob("seg-*.log"))) > 1
    got = _payloads(sp)
    assert len(got) == n
    assert len(list(tmp_path.glob("seg-*.log"))) == 1  # fully processed segments are deleted
    sp.append(b"fits again")


def test_concurrent_appends_share_fsyncs_and_lose_nothing(tmp_path: Path) -> None:
    sp = Spool(tmp_path, segment_bytes=4096)

    def writer(k: int) -> None:
        for i in range(50):
            sp.append(f"{k}:{i}".encode())

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sp.close()
    got = _payloads(Spool(tmp_path))
    assert sorted(got) == sorted(f"{k}:{i}".encode() for k in range(8) for i in range(50))


def test_bad_checkpoint_is_one_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT).write_text("{not json")
    with pytest.raises(SpoolError, match=r"checkpoint\.json: not a spool checkpoint"):
        Spool(tmp_path)
