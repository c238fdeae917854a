"""Sink figures: SQLite store insert and replay rate, query latency, webhook and syslog delivery rate.

    .venv/bin/python benchmarks/sinks_bench.py --alerts 200000

Alerts are the bundled samples' alerts with fresh event ids (so each is a new row), spread over 30
days and 50 namespaces. Results go to stdout; figures measured are in RESULTS.md ("Sinks").
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import tempfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from execguard.cli import sample_dir
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import Alert
from execguard.pipeline.filters import parse_when
from execguard.sinks.restore import restore
from execguard.sinks.store import Query, StoreSink, connect, rows
from execguard.sinks.syslog import SyslogSink
from execguard.sinks.webhook import WebhookSink
from execguard.sources.reader import Reader


def alerts(n: int) -> list[Alert]:
    files = [str(p) for p in sorted(sample_dir().iterdir()) if p.suffix != ".md"]
    base = list(Engine(load_rules([])).run(Reader().read(files)))
    out = []
    t0 = time.time() - 30 * 86400
    for i in range(n):
        a = base[i % len(base)]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i * 30 * 86400 / n))
        ev = replace(a.event, time=stamp, event_id=f"bench-{i}", target=replace(a.event.target, namespace=f"ns-{i % 50}"))
        out.append(Alert(ev, a.matches))
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_store(items: list[Alert], db: Path) -> None:
    dicts = [a.to_dict() for a in items]
    for label in ("insert", "replay (all duplicates)"):
        sink = StoreSink(db)
        t = time.perf_counter()
        for d in dicts:
            sink.write_dict(d)
        sink.close()
        dt = time.perf_counter() - t
        rate = f"{len(dicts) / dt:,.0f}/s"
        print(f"store {label}: {len(dicts)} alerts in {dt:.2f} s = {rate} (written {sink.written}, duplicates {sink.duplicates})")
    print(f"store file: {db.stat().st_size / 1e6:.1f} MB; peak RSS so far {rss_mb():.0f} MB")
    c = connect(db, create=False)
    since = parse_when("2d")
    for label, q in (("last 2 days", Query(since=since)), ("namespace ns-7", Query(namespaces=["ns-7"])),
                     ("critical", Query(min_severity="critical")), ("everything", Query())):  # fmt: skip
        t = time.perf_counter()
        n = sum(1 for _rid, d in rows(c, q) if restore(d))
        print(f"query {label}: {n} alerts in {time.perf_counter() - t:.3f} s")
    c.close()


def bench_webhook(items: list[Alert]) -> None:
    got = [0]

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            got[0] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = WebhookSink(f"http://127.0.0.1:{server.server_address[1]}/", queue_size=len(items), drain=600)
    t = time.perf_counter()
    for a in items:
        sink.write(a)
    queued = time.perf_counter() - t
    sink.close()
    dt = time.perf_counter() - t
    server.shutdown()
    print(f"webhook: {len(items)} alerts queued in {queued * 1e3:.0f} ms ({queued / len(items) * 1e6:.1f} µs each), "
          f"delivered {got[0]} in {dt:.2f} s = {got[0] / dt:,.0f}/s")  # fmt: skip


def bench_syslog(items: list[Alert]) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    got = [0]

    def drain() -> None:
        s.settimeout(2)
        try:
            while True:
                s.recv(65536)
                got[0] += 1
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    sink = SyslogSink("127.0.0.1", s.getsockname()[1], queue_size=len(items), drain=600)
    t = time.perf_counter()
    for a in items:
        sink.write(a)
    sink.close()
    dt = time.perf_counter() - t
    time.sleep(0.5)
    print(f"syslog udp: {len(items)} alerts sent in {dt:.2f} s = {len(items) / dt:,.0f}/s, {got[0]} received")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=200_000)
    ap.add_argument("--delivered", type=int, default=5_000, help="alerts for the webhook and syslog runs")
    args = ap.parse_args()
    items = alerts(args.alerts)
    print(f"{len(items)} alerts built; peak RSS {rss_mb():.0f} MB", file=sys.stderr)
    with tempfile.TemporaryDirectory() as d:
        bench_store(items, Path(d) / "bench.db")
    bench_webhook(items[: args.delivered])
    bench_syslog(items[: args.delivered])


if __name__ == "__main__":
    main()
