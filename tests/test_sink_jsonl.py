"""JsonlSink: one line per alert, flushed per alert on a stream, in blocks in a sorted hunt; the same bytes either way."""

from __future__ import annotations

import io

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
