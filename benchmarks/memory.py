"""Memory of a long-running watch: RSS (every watch process) and spool bytes under a steady load.

Starts a real `execguard watch` on loopback with the audit webhook (TLS + bearer token) and a tailed
file, posts one EventList of --rate events every second (one event in --exec-every an exec, distinct
auditIDs) and appends --tail-rate exec records a second to the tailed file (renamed away every
--rotate-minutes, as logrotate does), and samples every --every seconds: the RSS of watch and of its
child processes (from /proc), the spool's bytes on disk, --out's size and the events watch has counted
(/metrics). Stops by itself after --minutes; SIGTERM to watch, then a count of alerts lost or doubled.

    nice .venv/bin/python benchmarks/memory.py --minutes 60 --rate 200 --log benchmarks/out/memory.jsonl

The load is light on purpose (a few % of one core): it measures growth over time, not throughput.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from execguard.testing.dockerd import free_port, make_test_certs
from webhook_util import Client, alerts_by_audit_id, event_list, start_watch, stop, wait_healthy

TOKEN = "memory-benchmark-token"


def children(pid: int) -> list[int]:
    """pid and every process below it (watch's receiver process, if any)."""
    found = [pid]
    for p in found:
        try:  # each thread's children: a process is listed under the thread that started it
            kids = [k for task in Path(f"/proc/{p}/task").glob("*/children") for k in task.read_text().split()]
        except OSError:
            continue
        found.extend(int(k) for k in kids)
    return found


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tailed(i: int) -> bytes:
    """A docker-events exec record (one alert each; its exec ID is the alert's event_id)."""
    obj = {
        "Type": "container", "Action": f"exec_start: sh -c id {i}", "timeNano": 1_764_000_000_000_000_000 + i,
        "Actor": {"ID": "c" * 64, "Attributes": {"execID": f"tail-{i:08d}", "name": "web", "image": "bb"}},
    }  # fmt: skip
    return orjson.dumps(obj) + b"\n"


def events_counted(client: Client) -> float:
    try:
        status, _, body = client.request("GET", "/metrics")
    except (OSError, http.client.HTTPException):
        return float("nan")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("execguard_events_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total if status == 200 else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=200, help="webhook events per second (one POST a second)")
    ap.add_argument("--exec-every", type=int, default=10, help="one event in N is an exec, the rest reads")
    ap.add_argument("--tail-rate", type=int, default=20, help="records per second appended to the tailed file")
    ap.add_argument("--rotate-minutes", type=float, default=10.0, help="rename the tailed file away this often")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--log", type=Path, help="write each sample as a JSON line here too")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="eg-memory-bench-") as tmp:
        d = Path(tmp)
        certs = make_test_certs(d / "certs")
        (d / "token").write_text(TOKEN)
        port = free_port()
        out, log, spool = d / "alerts.jsonl", d / "app.log", d / "spool"
        log.touch()
        proc = start_watch(
            ["--audit-webhook", f"127.0.0.1:{port}", "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
             "--token-file", str(d / "token"), "--spool", str(spool), "--tail", str(log), "--tail-from-start",
             "-o", "jsonl", "--out", str(out)],
            d / "stderr.txt",
        )  # fmt: skip
        samples: list[dict[str, float]] = []
        accepted: list[str] = []
        refused = 0
        written = 0
        sink = args.log.open("w") if args.log else None
        try:
            wait_healthy(port, proc, certs.ca)
            client = Client(port, certs.ca, TOKEN, timeout=30.0)
            started = time.monotonic()
            end_at = started + args.minutes * 60
            next_sample = started
            next_rotate = started + args.rotate_minutes * 60
            n = 0
            while time.monotonic() < end_at:
                tick = time.monotonic()
                ids = [f"m{n}-{i}" for i in range(args.rate)]
                try:
                    status = client.post(event_list(ids, args.exec_every))
                except (OSError, http.client.HTTPException):
                    status = -1
                if status == 200:
                    accepted.extend(ids[:: args.exec_every])
                else:
                    refused += 1
                with log.open("ab") as f:
                    f.write(b"".join(tailed(written + k) for k in range(args.tail_rate)))
                written += args.tail_rate
                n += 1
                if tick >= next_rotate:
                    log.rename(log.with_suffix(".log.1"))  # the tail finishes the old file and picks up the new one
                    log.touch()
                    next_rotate += args.rotate_minutes * 60
                if tick >= next_sample:
                    pids = children(proc.pid)
                    spool_bytes = sum(p.stat().st_size for p in spool.glob("seg-*.log"))
                    s = {
                        "minute": round((tick - started) / 60, 2),
                        "rss_mb": round(sum(rss_kb(p) for p in pids) / 1024, 1),
                        "rss_by_process_mb": [round(rss_kb(p) / 1024, 1) for p in pids],  # type: ignore[dict-item]
                        "spool_mb": round(spool_bytes / 2**20, 2),
                        "out_mb": round(out.stat().st_size / 2**20, 2) if out.exists() else 0.0,
                        "events": events_counted(client),
                        "load1": os.getloadavg()[0],
                    }
                    samples.append(s)
                    print(orjson.dumps(s).decode(), flush=True)
                    if sink:
                        sink.write(orjson.dumps(s).decode() + "\n")
                        sink.flush()
                    next_sample += args.every
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
            client.close()
            want = len(accepted) + written
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and sum(1 for _ in out.open("rb")) < want:
                time.sleep(1)
        finally:
            stop(proc)
            if sink:
                sink.close()
        counts = alerts_by_audit_id(out)
        ids = accepted + [f"tail-{i:08d}" for i in range(written)]
        lost = sum(1 for i in ids if counts[i] == 0)
        doubled = sum(1 for c in counts.values() if c > 1)
    if len(samples) >= 4:
        q = max(1, len(samples) // 6)
        first = statistics.median(s["rss_mb"] for s in samples[1 : 1 + q])  # after the first sample's warm-up
        last = statistics.median(s["rss_mb"] for s in samples[-q:])
        peak = max(s["rss_mb"] for s in samples)
        print(f"RSS (all watch processes): early median {first:.1f} MB, late median {last:.1f} MB, peak {peak:.1f} MB, "
              f"change {last - first:+.1f} MB over {samples[-1]['minute']:.0f} min")  # fmt: skip
        print(f"spool: max {max(s['spool_mb'] for s in samples):.2f} MB, last {samples[-1]['spool_mb']:.2f} MB")
    print(f"posted {len(accepted) * args.exec_every} webhook events ({refused} POSTs refused), {written} tailed records")
    print(f"{len(ids)} alerts expected: lost {lost}, alerted twice {doubled}")
    return 1 if lost or doubled else 0


if __name__ == "__main__":
    sys.exit(main())
