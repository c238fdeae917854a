"""Dedup and throttle per (rule, actor, target): first passes, repeats counted, one summary per window."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from execguard.model import Alert
from execguard.sinks.alert_json import alert_dict
from execguard.sinks.store import Query, StoreSink, connect, rows
from execguard.sinks.throttle import ThrottledAlert, ThrottleSink
from sinks_helpers import sample_alerts, wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.closed = False

    def write(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        self.closed = True


def repeat(alert: Alert, i: int, pod: str | None = None) -> Alert:
    ev = replace(alert.event, time=f"2026-12-01T10:00:{i:02d}Z", event_id=f"ev-{i}-{pod}")
    if pod:
        ev = replace(ev, target=replace(ev.target, pod=pod))
    return Alert(ev, alert.matches)


def test_first_passes_repeats_are_counted() -> None:
    clock, inner = Clock(), Collect()
    sink = ThrottleSink(inner, window=60, clock=clock)
    base = next(a for a in sample_alerts() if a.event.target.pod)
    for i in range(5):
        sink.write(repeat(base, i))
        clock.now += 1
    sink.write(repeat(base, 9, pod="other-pod"))  # another target: its own window
    assert [a.event.time for a in inner.alerts] == ["2026-12-01T10:00:00Z", "2026-12-01T10:00:09Z"]
    assert sink.passed == 2 and sink.held == 4
    clock.now += 60
    sink.tick()  # the first window closed: one summary with the count
    (summary,) = inner.alerts[2:]
    assert isinstance(summary, ThrottledAlert)
    d = alert_dict(summary)
    assert d["throttled"]["count"] == 4 and d["throttled"]["first"] == "2026-12-01T10:00:00Z"
    assert d["throttled"]["last"] == "2026-12-01T10:00:04Z" and d["event_id"] == "ev-4-None"
    assert d["reasons"][0].startswith("repeated 4 more times within 60s")
    sink.write(repeat(base, 20))  # a new window: passes again
    sink.write(repeat(base, 21))
    sink.close()  # open windows with repeats are summarised at close
    assert len(inner.alerts) == 5 and inner.closed  # + the new first alert and its summary
    assert alert_dict(inner.alerts[4])["throttled"]["count"] == 1


def test_no_repeats_no_summary() -> None:
    inner = Collect()
    sink = ThrottleSink(inner, window=60, clock=Clock())
    for i, alert in enumerate(sample_alerts()[:3]):
        sink.write(repeat(alert, i, pod=f"p{i}"))
    sink.close()
    assert len(inner.alerts) == 3 and not any(isinstance(a, ThrottledAlert) for a in inner.alerts)


def test_summaries_are_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    base = next(a for a in sample_alerts() if a.event.target.pod)
    for _ in range(2):  # the same stream twice: the store holds the first alert and the summary, once each
        sink = ThrottleSink(StoreSink(db), window=60, clock=Clock())
        for i in range(3):
            sink.write(repeat(base, i))
        sink.close()
    db_ = connect(db)
    stored = [d for _, d in rows(db_, Query())]
    db_.close()
    assert len(stored) == 2 and stored[1]["throttled"]["count"] == 2


def test_memory_is_bounded_by_max_keys() -> None:
    inner = Collect()
    sink = ThrottleSink(inner, window=3600, clock=Clock(), max_keys=2)
    base = next(a for a in sample_alerts() if a.event.target.pod)
    sink.write(repeat(base, 0, pod="a"))
    sink.write(repeat(base, 1, pod="a"))  # held
    sink.write(repeat(base, 2, pod="b"))
    sink.write(repeat(base, 3, pod="c"))  # a third key: the window of "a" closes early, with its count
    assert len(sink._open) == 2
    assert [a.event.target.pod for a in inner.alerts] == ["a", "b", "a", "c"]
    assert alert_dict(inner.alerts[2])["throttled"]["count"] == 1
    sink.close()


def test_timer_closes_windows_without_new_alerts() -> None:
    inner = Collect()
    sink = ThrottleSink(inner, window=0.2, timer=True)
    base = sample_alerts()[0]
    for i in range(3):
        sink.write(repeat(base, i))
    assert wait_for(lambda: len(inner.alerts) == 2, timeout=10)  # the summary came on its own
    assert alert_dict(inner.alerts[1])["throttled"]["count"] == 2
    sink.close()
