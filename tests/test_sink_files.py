"""The rotating JSONL file sink and the --sink specs (make_sink) with hunt end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.sinks.alert_json import alert_dict
from execguard.sinks.rotating import RotatingJsonlSink
from execguard.sinks.specs import SpecError, Tee, make_sink
from execguard.sinks.store import StoreSink
from execguard.sinks.syslog import SyslogSink
from execguard.sinks.webhook import WebhookSink
from sinks_helpers import sample_alerts


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rotation_by_size_keeps_n(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    alerts = sample_alerts()
    sink = RotatingJsonlSink(path, max_bytes=8000, keep=2)
    for alert in alerts:
        sink.write(alert)
    sink.close()
    assert sink.rotations >= 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2"]
    kept = lines(path.with_name("alerts.jsonl.2")) + lines(path.with_name("alerts.jsonl.1")) + lines(path)
    assert kept == [alert_dict(a) for a in alerts[-len(kept):]]  # whole lines, the newest, in order
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 8000 or len(p.read_text().splitlines()) == 1  # one alert bigger than the limit stands alone
    again = RotatingJsonlSink(path, max_bytes=10**9, keep=2)  # a restart appends
    again.write(alerts[0])
    again.close()
    assert lines(path)[-1] == alert_dict(alerts[0])


def test_make_sink_specs(tmp_path: Path) -> None:
    made = [
        make_sink(f"store:{tmp_path / 'a.db'}"),
        make_sink(f"file:{tmp_path / 'a.jsonl'}?max_bytes=1M&keep=3"),
        make_sink("webhook:https://hooks.example.com/services/T/B/SECRET"),
        make_sink("syslog+udp://127.0.0.1:5514?facility=local3"),
        make_sink("syslog+tcp://127.0.0.1"),
    ]
    try:
        assert [type(s) for s in made] == [StoreSink, RotatingJsonlSink, WebhookSink, SyslogSink, SyslogSink]
        rotating = made[1]
        assert isinstance(rotating, RotatingJsonlSink) and rotating.max_bytes == 1024**2 and rotating.keep == 3
        assert isinstance(made[4], SyslogSink) and made[4].address == ("127.0.0.1", 514) and made[4].transport == "tcp"
    finally:
        for s in made:
            if isinstance(s, (WebhookSink, SyslogSink)):
                s.drain = 0
            s.close()
    for bad, why in [
        ("nothing", "give store:PATH"),
        ("kafka:broker", "give store:PATH"),
        ("file:x.jsonl?size=1", "unknown option 'size'"),
        ("syslog+udp://h:99999", "port"),
        ("syslog+tcp://h?facility=mail2", "facility"),
        ("webhook:ftp://h/SECRET", "http:// or https://"),
    ]:
        with pytest.raises(SpecError, match=why) as info:
            make_sink(bad)
        assert "SECRET" not in str(info.value) and "\n" not in str(info.value)


def test_hunt_with_sinks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "a.jsonl"
    r = runner.invoke(app, ["hunt", "--samples", "-q", "-o", "jsonl", "--sink", f"file:{out}", "--store", str(tmp_path / "a.db")])
    assert r.exit_code == 0
    assert lines(out) == [json.loads(x) for x in r.stdout.splitlines()]
    r = runner.invoke(app, ["hunt", "--samples", "-q", "--sink", "bogus:x"])
    assert r.exit_code == 2 and "give store:PATH" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_tee_sets_a_failed_sink_aside(tmp_path: Path) -> None:
    class Broken:
        def write(self, alert: object) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    warnings: list[str] = []
    out = tmp_path / "ok.jsonl"
    good = RotatingJsonlSink(out)
    tee = Tee([Broken(), good], warnings.append, names=["broken", "file"])
    for alert in sample_alerts()[:3]:
        tee.write(alert)
    tee.close()
    assert len(lines(out)) == 3 and len(warnings) == 1 and "No space left" in warnings[0]
