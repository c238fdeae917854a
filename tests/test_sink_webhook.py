"""The webhook sink against a real HTTP(S) server on loopback: down then up, slow, refusals, restart, TLS."""

from __future__ import annotations

import json
import ssl
import threading
from pathlib import Path

import pytest

from execguard.sinks.alert_json import alert_dict
from execguard.sinks.background import BackgroundSink
from execguard.sinks.webhook import WebhookSink, chat_text, public_url
from execguard.testing.dockerd import DockerdUnavailable, free_port, make_test_certs
from sinks_helpers import Receiver, sample_alerts, wait_for


def ids(bodies: list[dict]) -> list[tuple]:
    return [(b["alert"]["rule_id"], b["alert"]["time"], b["alert"]["source"]["line"]) for b in bodies]


def expected(n: int) -> list[tuple]:
    return [(d["rule_id"], d["time"], d["source"]["line"]) for d in (alert_dict(a) for a in sample_alerts()[:n])]


def test_down_then_up_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    warnings: list[str] = []
    sink = WebhookSink(f"http://127.0.0.1:{port}/hooks/T0SECRET/B1SECRET", queue_size=4, spill=tmp_path / "spill.jsonl",
                       backoff=0.05, warn=warnings.append)  # fmt: skip
    alerts = sample_alerts()
    for alert in alerts:  # nobody listens: a few wait in the queue, the rest go to the spill file
        sink.write(alert)
    assert sink.stats.spilled >= len(alerts) - 5
    assert wait_for(lambda: sink.stats.failed >= 2)
    receiver = Receiver(port=port).start()
    try:
        assert wait_for(lambda: len(receiver.bodies) == len(alerts))
        sink.close()
        assert sorted(ids(receiver.bodies)) == sorted(expected(len(alerts)))  # each one, once
        assert sink.stats.dropped == 0 and sink.stats.sent == len(alerts)
    finally:
        receiver.stop()
    assert any("retrying" in w for w in warnings) and any("delivering again" in w for w in warnings)
    assert not any("SECRET" in w for w in warnings)  # a webhook URL's path is its secret


def test_slow_receiver_never_blocks_writes() -> None:
    gate = threading.Event()  # the receiver holds every request until the test opens it
    receiver = Receiver(gate=gate).start()
    sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/", queue_size=8, drain=10)
    alerts = sample_alerts()
    done = threading.Event()

    sink.write(alerts[0])
    assert wait_for(lambda: receiver.arrived == 1)  # the sender is now stuck on the first request

    def detect() -> None:
        for alert in alerts[1:]:
            sink.write(alert)
        done.set()

    threading.Thread(target=detect, daemon=True).start()
    try:
        assert done.wait(10)  # every write returned while the receiver was still holding the first request
        assert receiver.bodies == []
        assert sink.stats.dropped == len(alerts) - 8 - 1  # no spill file: counted, never silent
        gate.set()
        sink.close()
        assert len(receiver.bodies) == 9
    finally:
        receiver.stop()


def test_retry_after_then_refusal(tmp_path: Path) -> None:
    receiver = Receiver(status=[503, 429, 400]).start()
    warnings: list[str] = []
    sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/x", backoff=0.01, warn=warnings.append)
    alerts = sample_alerts()[:2]
    try:
        for alert in alerts:
            sink.write(alert)
        sink.close()
    finally:
        receiver.stop()
    # the first alert: 503, 429 (Retry-After: 0), 400 refused for good; the second delivered
    assert sink.stats.failed == 3 and sink.stats.rejected == 1 and sink.stats.sent == 1
    assert ids(receiver.bodies) == expected(2)[1:]
    assert any("refused: HTTP 400" in w for w in warnings)


def test_restart_replays_the_spill_file(tmp_path: Path) -> None:
    port = free_port()
    spill = tmp_path / "spill.jsonl"
    alerts = sample_alerts()
    first = WebhookSink(f"http://127.0.0.1:{port}/", spill=spill, drain=0.3, backoff=0.05)
    for alert in alerts:
        first.write(alert)
    first.close()  # the receiver never came up: everything is on disk
    assert first.stats.dropped == 0 and len(spill.read_bytes().splitlines()) == len(alerts)
    receiver = Receiver(port=port).start()
    try:
        second = WebhookSink(f"http://127.0.0.1:{port}/", spill=spill, backoff=0.05)
        assert wait_for(lambda: len(receiver.bodies) == len(alerts))
        second.close()
    finally:
        receiver.stop()
    assert sorted(ids(receiver.bodies)) == sorted(expected(len(alerts)))
    assert not spill.exists() or spill.stat().st_size == 0


def test_body_has_slack_text_and_the_alert() -> None:
    receiver = Receiver().start()
    sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/")
    alert = next(a for a in sample_alerts() if a.severity == "critical" and a.event.actor.user)
    try:
        sink.write(alert)
        sink.close()
    finally:
        receiver.stop()
    (body,) = receiver.bodies
    assert body["alert"] == alert_dict(alert)
    assert body["text"] == chat_text(alert_dict(alert)) and body["text"].startswith("[CRITICAL] ")
    assert str(alert.event.actor.user) in body["text"]


def test_tls_is_verified(tmp_path: Path) -> None:
    try:
        tls = make_test_certs(tmp_path / "certs")
    except DockerdUnavailable as exc:
        pytest.skip(str(exc))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls.server_cert, tls.server_key)
    receiver = Receiver(tls=ctx).start()
    url = f"https://127.0.0.1:{receiver.port}/"
    alert = sample_alerts()[0]
    warnings: list[str] = []
    try:
        untrusted = WebhookSink(url, drain=0.5, backoff=0.05, warn=warnings.append)
        untrusted.write(alert)
        untrusted.close()
        assert receiver.bodies == [] and untrusted.stats.dropped == 1
        assert any("CERTIFICATE_VERIFY_FAILED" in w or "certificate verify failed" in w for w in warnings)
        trusted = WebhookSink(url, ca=tls.ca)
        trusted.write(alert)
        trusted.close()
        assert len(receiver.bodies) == 1
    finally:
        receiver.stop()


def test_public_url_hides_the_path() -> None:
    assert public_url("https://hooks.slack.com/services/T0/B0/XyZ?token=1") == "https://hooks.slack.com"
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookSink("ftp://example.com/secret")


def test_damaged_spill_line_is_skipped_and_the_rest_delivered(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    good = [alert_dict(a) for a in sample_alerts()[:3]]
    spill.write_bytes(b"".join([json_line(good[0]), b'{"truncated\n', json_line(good[1]), json_line(good[2])]))
    receiver = Receiver().start()
    warnings: list[str] = []
    try:
        sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/", spill=spill, warn=warnings.append)
        assert wait_for(lambda: len(receiver.bodies) == 3)
        sink.close()
    finally:
        receiver.stop()
    assert [b["alert"] for b in receiver.bodies] == good
    assert sink.stats.rejected == 1 and any("not JSON" in w for w in warnings)


def test_an_unexpected_error_is_retried_not_fatal() -> None:
    delivered: list[dict] = []
    failures = [RuntimeError("boom")]

    def deliver(record: dict) -> None:
        if failures:
            raise failures.pop()
        delivered.append(record)

    sink = BackgroundSink("test", deliver, backoff=0.01)
    sink.write(sample_alerts()[0])
    assert wait_for(lambda: len(delivered) == 1)
    sink.close()
    assert sink.stats.failed == 1 and sink.stats.sent == 1


def json_line(d: dict) -> bytes:
    return json.dumps(d).encode() + b"\n"
