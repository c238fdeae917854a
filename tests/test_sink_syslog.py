"""The syslog sink against real UDP and TCP listeners on loopback, parsed as RFC 5424 (and RFC 6587 octet counting)."""

from __future__ import annotations

from dataclasses import replace

from execguard.model import Alert
from execguard.sinks.syslog import FACILITIES, SD_ID, SEVERITY, SyslogSink
from execguard.testing.dockerd import free_port
from sinks_helpers import TcpCollector, parse_syslog, sample_alerts, udp_listener, wait_for


def test_udp_messages_are_rfc5424() -> None:
    listener, port = udp_listener()
    sink = SyslogSink("127.0.0.1", port, transport="udp", facility="auth")
    alerts = [a for a in sample_alerts() if a.event.target.namespace][:5]
    try:
        for alert in alerts:
            sink.write(alert)
        got = [parse_syslog(listener.recvfrom(65536)[0]) for _ in alerts]
        sink.close()
    finally:
        listener.close()
    for alert, msg in zip(alerts, got, strict=True):
        assert msg["pri"] == FACILITIES["auth"] * 8 + SEVERITY[alert.severity]
        assert msg["msgid"] == alert.lead.rule_id and msg["sd_id"] == SD_ID and msg["bom"]
        assert msg["ts"].endswith("Z") and "T" in msg["ts"]
        p = msg["params"]
        assert p["rule"] == alert.lead.rule_id and p["severity"] == alert.severity and p["time"] == alert.event.time
        assert p["namespace"] == alert.event.target.namespace
        assert p.get("user") == alert.event.actor.user
        assert alert.lead.title in msg["msg"]


def test_structured_data_escapes_and_udp_size() -> None:
    listener, port = udp_listener()
    sink = SyslogSink("127.0.0.1", port)
    base = sample_alerts()[0]
    odd = 'pod"with]odd\\chars'
    alert = Alert(replace(base.event, target=replace(base.event.target, pod=odd), command=["sh", "-c", "x" * 5000]), base.matches)
    try:
        sink.write(alert)
        data = listener.recvfrom(65536)[0]
        sink.close()
    finally:
        listener.close()
    assert len(data) <= 2048  # RFC 5426: what every receiver takes
    assert parse_syslog(data)["params"]["pod"] == odd


def test_tcp_octet_counting_and_reconnect() -> None:
    port = free_port()
    sink = SyslogSink("127.0.0.1", port, transport="tcp", backoff=0.05)
    alerts = sample_alerts()
    for alert in alerts[:10]:  # the collector is down: queued, retried
        sink.write(alert)
    assert wait_for(lambda: sink.stats.failed >= 1)
    collector = TcpCollector(port)
    try:
        assert wait_for(lambda: len(collector.frames) == 10)
        for alert in alerts[10:20]:
            sink.write(alert)
        assert wait_for(lambda: len(collector.frames) == 20)
        sink.close()
    finally:
        collector.close()
    msgs = [parse_syslog(f) for f in collector.frames]
    assert [m["msgid"] for m in msgs] == [a.lead.rule_id for a in alerts[:20]]  # in order, each once
    assert sink.stats.sent == 20 and sink.stats.dropped == 0
