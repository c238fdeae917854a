"""Audit webhook throughput: sustained events/s with 400-event batches, ack latency, loss.

Starts a real `execguard watch --audit-webhook` on loopback (TLS + bearer token, certificates
made with the openssl CLI), posts audit.k8s.io/v1 EventLists of 400 exec events from a few
keep-alive clients for --seconds, then waits until every accepted event has its alert in the
--out file, stops watch with SIGTERM and counts alerts by auditID. Loopback only; it stops by
itself (the load ends after --seconds, the wait for alerts after --drain seconds).

    .venv/bin/python benchmarks/webhook.py --seconds 20 --clients 4
    .venv/bin/python benchmarks/webhook.py --seconds 20 --clients 4 --rate 20000 --exec-every 100   # the issue's goal
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from execguard.testing.dockerd import free_port, make_test_certs
from webhook_util import Client, alerts_by_audit_id, event_list, start_watch, stop, wait_healthy

TOKEN = "benchmark-token"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="how long to post")
    ap.add_argument("--clients", type=int, default=4, help="concurrent keep-alive connections")
    ap.add_argument("--batch", type=int, default=400, help="events per POST (kube-apiserver's default)")
    ap.add_argument("--exec-every", type=int, default=1, help="1 = every event an exec (worst case); N = one in N, the rest reads")
    ap.add_argument("--drain", type=float, default=300.0, help="longest wait for the last alerts")
    ap.add_argument("--watch-arg", action="append", default=[], help="one more argument for watch (repeatable), e.g. --engine-nice=0")
    ap.add_argument("--rate", type=float, default=0.0, help="events/s to offer, spread over the clients (0 = as fast as acked)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="eg-webhook-bench-") as tmp:
        d = Path(tmp)
        certs = make_test_certs(d / "certs")
        (d / "token").write_text(TOKEN)
        port = free_port()
        out = d / "alerts.jsonl"
        proc = start_watch(
            ["--audit-webhook", f"127.0.0.1:{port}", "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
             "--token-file", str(d / "token"), "--spool", str(d / "spool"), "-o", "jsonl", "--out", str(out), *args.watch_arg],
            d / "stderr.txt",
        )  # fmt: skip
        try:
            wait_healthy(port, proc, certs.ca)
            # bodies made before the clock starts: the client's JSON encoding is not the server's cost
            bodies = [
                [event_list([f"c{c}-b{b}-{i}" for i in range(args.batch)], args.exec_every) for b in range(64)] for c in range(args.clients)
            ]
            latencies: list[float] = []
            accepted: list[tuple[int, int, int]] = []  # (client, round, body index)
            other: dict[int, int] = {}
            lock = threading.Lock()
            end_at = time.monotonic() + args.seconds

            def client(c: int) -> None:
                conn = Client(port, certs.ca, TOKEN, timeout=30.0)
                n = 0
                # with --rate, each client posts on a fixed schedule (a late answer does not lower the offered rate)
                every = args.batch * args.clients / args.rate if args.rate else 0.0
                next_at = time.monotonic() + every * c / args.clients
                while time.monotonic() < end_at:
                    if every:
                        time.sleep(max(0.0, next_at - time.monotonic()))
                        next_at += every
                    b = n % 64
                    # each round renames the ids so every accepted event is distinct
                    body = bodies[c][b].replace(b'"auditID":"c', f'"auditID":"r{n // 64}-c'.encode())
                    t0 = time.perf_counter()
                    try:
                        status = conn.post(body)
                    except (OSError, http.client.HTTPException):
                        status = -1
                    dt = time.perf_counter() - t0
                    with lock:
                        if status == 200:
                            latencies.append(dt)
                            accepted.append((c, n // 64, b))
                        else:
                            other[status] = other.get(status, 0) + 1
                    if status == 429:
                        time.sleep(0.05)
                    n += 1
                conn.close()

            started = time.monotonic()
            threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            posted_for = time.monotonic() - started
            want = len(accepted) * args.batch
            alerts_want = len(accepted) * len(range(0, args.batch, args.exec_every))
            deadline = time.monotonic() + args.drain
            while time.monotonic() < deadline:
                if out.exists() and sum(1 for _ in out.open("rb")) >= alerts_want:
                    break
                time.sleep(0.5)
            alerted_after = time.monotonic() - started
            stop(proc)
        finally:
            stop(proc)
        counts = alerts_by_audit_id(out)
        ids = [f"r{r}-c{c}-b{b}-{i}" for c, r, b in accepted for i in range(0, args.batch, args.exec_every)]
        lost = sum(1 for i in ids if counts[i] == 0)
        doubled = sum(1 for n in counts.values() if n > 1)
        lat = sorted(latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        offered = f"offered {args.rate:,.0f} events/s" if args.rate else "as fast as acknowledged"
        print(f"clients {args.clients}, batch {args.batch}, one exec in {args.exec_every}, {offered}, posting {posted_for:.1f}s")
        print(f"accepted: {len(accepted)} batches, {want} events = {want / posted_for:,.0f} events/s acknowledged")
        print(f"ack latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1] * 1000 if lat else 0:.1f} ms")
        print(f"refused or failed: {other or 'none'}")
        print(f"all alerted after {alerted_after:.1f}s = {want / alerted_after:,.0f} events/s end to end")
        print(f"{alerts_want} exec events: lost {lost}, alerted twice {doubled}")
        return 1 if lost or doubled else 0


if __name__ == "__main__":
    sys.exit(main())
