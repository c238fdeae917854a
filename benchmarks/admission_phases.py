"""Where an admission review's wall time goes: client -> server -> client, phase by phase, and the collector's pauses.

    .venv/bin/python benchmarks/admission_phases.py --requests 2000

Runs the webhook as benchmarks/admission.py does (own process, the CLI, TLS, kept-alive connection), but
through a wrapper that times, in the server, when the request line was read, when the review (decision
and record) started and ended, and when the answer was sent, and records every garbage collection
(``gc.callbacks``). The client sends its own send time in a header; both sides read ``time.perf_counter``
(CLOCK_MONOTONIC, shared by processes), so the phases join up:

- in: client sent -> server read the request line (the server thread waking up, TLS decrypt)
- read: headers and body
- review: JSON parse, events, rules, policy, the record line, the log line
- send: the answer built and sent (``sendall`` wakes the client, which may run before the server returns)
- out: answer sent -> client has read it (the client waking up; negative when it ran first)
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from admission import ROOT, mix, percentile, wait_ready

from execguard.testing import reviews
from execguard.testing.dockerd import free_port, make_test_certs

# Runs inside the webhook process: patch the connection handler, then run the CLI as usual.
WRAPPER = r"""
import atexit, gc, os, sys, time
import execguard.cli
from execguard.guard import admission as A
pauses, marks, start = [], [], {}
def on_gc(phase, info):
    if phase == "start":
        start["t"] = time.perf_counter()
    else:
        pauses.append((info["generation"], start["t"], time.perf_counter()))
gc.callbacks.append(on_gc)
C = A._Connection
one, review = C._one, C._review
class Reader:
    def __init__(self, f, box):
        self.f, self.box = f, box
    def readline(self, n=-1):
        line = self.f.readline(n)
        self.box.setdefault("line", time.perf_counter())
        if line[:7].lower() == b"x-sent:":
            self.box["sent"] = line[7:].strip().decode()
        return line
    def read(self, n=-1):
        return self.f.read(n)
def timed_review(self, data):
    self.box["review"] = time.perf_counter()
    try:
        return review(self, data)
    finally:
        self.box["reviewed"] = time.perf_counter()
def timed_one(self, sock, rfile):
    self.box = {}
    keep = one(self, sock, Reader(rfile, self.box))
    if "sent" in self.box and "review" in self.box:
        b = self.box
        marks.append((b["sent"], b["line"], b["review"], b["reviewed"], time.perf_counter()))
    return keep
C._one, C._review = timed_one, timed_review
def dump():
    with open(os.environ["EG_PHASES"], "w") as f:
        for g, s, e in pauses:
            f.write(f"gc {g} {s!r} {e!r}\n")
        for m in marks:
            f.write("mk " + " ".join(map(str, m)) + "\n")
atexit.register(dump)
sys.argv = ["execguard", *sys.argv[1:]]
execguard.cli.app(prog_name="execguard")
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--policy", default=str(ROOT / "docs" / "policy-example.yml"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wrapper, phases = Path(tmp) / "wrapper.py", Path(tmp) / "phases.txt"
        wrapper.write_text(WRAPPER)
        certs = make_test_certs(Path(tmp) / "certs")
        port = free_port()
        cmd = [sys.executable, str(wrapper), "guard", "admission", "--tls-cert", str(certs.server_cert),
               "--tls-key", str(certs.server_key), "--listen", f"127.0.0.1:{port}", "--state-dir", str(Path(tmp) / "state"),
               "--record", str(Path(tmp) / "decisions.jsonl"), "--policy", args.policy]  # fmt: skip
        log = open(Path(tmp) / "webhook.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "EG_PHASES": str(phases)})
        done: dict[str, float] = {}
        try:
            wait_ready(port, str(certs.ca), proc)
            bodies = [orjson.dumps(review) for _, review, _ in mix()]
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=reviews.client_context(str(certs.ca)), timeout=10)
            for i in range(args.requests + 100):  # the first 100 warm up
                sent = time.perf_counter()
                conn.request("POST", "/", body=bodies[i % len(bodies)], headers={"Content-Type": "application/json", "X-Sent": repr(sent)})
                conn.getresponse().read()
                if i >= 100:
                    done[repr(sent)] = time.perf_counter()
            conn.close()
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
        lines = [line.split() for line in phases.read_text().splitlines()]
    rows = []
    for p in lines:
        if p[0] == "mk" and p[1] in done:
            sent, line, rev, reviewed, answered = float(p[1]), *map(float, p[2:6])
            rows.append((done[p[1]] - sent, line - sent, rev - line, reviewed - rev, answered - reviewed, done[p[1]] - answered))
    names = ("total", "in", "read", "review", "send", "out")
    print(f"{len(rows)} reviews; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for i, name in enumerate(names):
        values = [r[i] for r in rows]
        print(f"  {name:7} p50 {percentile(values, 0.5) * 1e3:6.3f} ms  p99 {percentile(values, 0.99) * 1e3:6.3f} ms  "
              f"max {max(values) * 1e3:6.2f} ms")  # fmt: skip
    slow = sorted(rows, reverse=True)[: max(1, len(rows) // 100)]
    share = [sum(r[i] for r in slow) / sum(r[0] for r in slow) for i in range(1, 6)]
    print("  the slowest 1 %: " + ", ".join(f"{n} {s:.0%}" for n, s in zip(names[1:], share, strict=True)))
    first = min(float(k) for k in done)
    gcs = [(p[1], float(p[3]) - float(p[2])) for p in lines if p[0] == "gc" and float(p[2]) >= first]
    print(f"  garbage collections while measuring: {len(gcs)}")
    for gen in ("0", "1", "2"):
        pauses = [d for g, d in gcs if g == gen]
        if pauses:
            print(f"    generation {gen}: {len(pauses)}, longest {max(pauses) * 1e3:.2f} ms (wall)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
