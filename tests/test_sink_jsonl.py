"""JsonlSink: one line per alert, flushed per alert on a stream, in blocks in a sorted hunt; the same bytes either way."""

from __future__ import annotations

import io

import pytest
from pytest import MonkeyPatch

from execguard import sinks
from execguard.sinks.alert_json import alert_json
from execguard.sinks.jsonl import JsonlSink
from sinks_helpers import sample_alerts


class Counting(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = self.flushes = 0

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(b)

    def flush(self) -> None:
        self.flushes += 1


def test_blocks_give_the_lines_a_flush_per_alert_gives() -> None:
    alerts = sample_alerts() * 40
    want = b"".join(alert_json(a) + b"\n" for a in alerts)
    each, blocks = Counting(), Counting()
    one, many = JsonlSink(each), JsonlSink(blocks, block=4096)
    for alert in alerts:
        one.write(alert)
        many.write(alert)
    assert each.getvalue() == want and each.writes == each.flushes == len(alerts)
    assert 1 < blocks.writes < len(alerts) // 2 and blocks.flushes == 0  # nothing is flushed before the end
    held = len(want) - len(blocks.getvalue())
    assert 0 < held < 4096 + max(map(len, want.splitlines(keepends=True)))
    many.close()
    assert blocks.getvalue() == want and blocks.flushes == 1
    many.close()  # a second close writes nothing again
    assert blocks.getvalue() == want


def test_hunt_sink_writes_blocks_unless_alerts_go_out_as_found() -> None:
    out = Counting()
    sorted_sink, stream_sink = sinks.make("jsonl", out, None, live=False), sinks.make("jsonl", out, None, live=True)  # type: ignore[arg-type]
    assert isinstance(sorted_sink, JsonlSink) and sorted_sink.block > 0
    assert isinstance(stream_sink, JsonlSink) and stream_sink.block == 0


def _leftovers() -> set[str]:
    import glob
    import tempfile

    return set(glob.glob(f"{tempfile.gettempdir()}/execguard-lines-*"))


def test_a_sorted_hunts_later_alerts_are_rendered_by_a_helper_in_order() -> None:
    """Told every alert it will get (``ahead``, a sorted hunt's), the sink forks a helper that renders the later
    part while this process renders the first: the bytes are the same as one process writes, in the same order."""
    import os

    from execguard.sinks import jsonl

    alerts = sample_alerts() * 900
    assert len(alerts) >= jsonl.HELPER_MIN
    want = b"".join(alert_json(a) + b"\n" for a in alerts)
    before = _leftovers()
    out = Counting()
    sink = JsonlSink(out, block=4096)
    sink.ahead(alerts)
    helper = sink._helper
    assert helper is not None and helper.count == len(alerts) - int(len(alerts) * jsonl.OWN_SHARE)
    for alert in alerts:
        sink.write(alert)
    sink.close()
    assert out.getvalue() == want
    with pytest.raises(ChildProcessError):
        os.waitpid(helper.pid, os.WNOHANG)  # reaped
    assert _leftovers() == before
    few = Counting()
    small = JsonlSink(few, block=4096)
    small.ahead(alerts[: jsonl.HELPER_MIN - 1])  # not worth a fork
    assert small._helper is None


def test_no_temp_file_for_a_helper_leaves_every_line_to_the_sink(monkeypatch: MonkeyPatch) -> None:
    import tempfile

    from execguard.sinks import jsonl

    def full(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(28, "No space left on device")

    alerts = sample_alerts() * 900
    monkeypatch.setattr(tempfile, "mkstemp", full)
    out = Counting()
    sink = JsonlSink(out, block=4096)
    sink.ahead(alerts)
    assert sink._helper is None and jsonl.HELPER_MIN <= len(alerts)
    for alert in alerts:
        sink.write(alert)
    sink.close()
    assert out.getvalue() == b"".join(alert_json(a) + b"\n" for a in alerts)


def test_a_failed_helper_leaves_its_part_to_the_sink_and_a_stop_leaves_nothing(monkeypatch: MonkeyPatch) -> None:
    import os

    from execguard.sinks import jsonl

    alerts = sample_alerts() * 900
    want = b"".join(alert_json(a) + b"\n" for a in alerts)
    before = _leftovers()
    calls = {"n": 0}

    def failing(alert: object) -> bytes:  # in the helper only: this process has rendered its part by then
        calls["n"] += 1
        if os.getpid() != parent:
            raise RuntimeError("helper fails")
        return alert_json(alert)  # type: ignore[arg-type]

    parent = os.getpid()
    monkeypatch.setattr(jsonl, "alert_json", failing)
    out = Counting()
    sink = JsonlSink(out, block=4096)
    sink.ahead(alerts)
    for alert in alerts:
        sink.write(alert)
    sink.close()
    assert out.getvalue() == want and calls["n"] == len(alerts)  # every line rendered here
    assert _leftovers() == before
    # stopped before the helper's part was reached (an interrupt, a closed pipe): it is killed, its file removed
    monkeypatch.undo()
    stopped = JsonlSink(Counting(), block=4096)
    stopped.ahead(alerts)
    helper = stopped._helper
    assert helper is not None
    stopped.write(alerts[0])
    stopped.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(helper.pid, os.WNOHANG)
    assert _leftovers() == before


def test_a_sorted_pipeline_shows_the_sink_its_alerts_and_the_output_is_unchanged(monkeypatch: MonkeyPatch) -> None:
    """The time sort, holding every alert in memory, shows them to the sink before the first goes (``ahead``): the
    same bytes as a sink that renders every line itself, the helper used once."""
    from execguard.pipeline.dedupe import docker_exec
    from execguard.pipeline.stages import Pipeline
    from execguard.sinks import jsonl

    # repeated objects: none the Docker de-duplication would fold into another (and so change between the runs)
    alerts = [a for a in sample_alerts() if not docker_exec(a)] * 200  # held in memory by the sort (RUN)
    assert len(alerts) >= jsonl.HELPER_MIN
    started: list[int] = []
    real = jsonl._Helper.start
    monkeypatch.setattr(jsonl._Helper, "start", classmethod(lambda cls, part: started.append(len(part)) or real(part)))
    outs = []
    for ahead in (False, True):
        out = Counting()
        sink = JsonlSink(out, block=4096)
        Pipeline(sort="time", ahead=sink.ahead if ahead else None).run(alerts, sink.write)
        sink.close()
        outs.append(out.getvalue())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == len(alerts)
    assert started == [len(alerts) - int(len(alerts) * jsonl.OWN_SHARE)]
