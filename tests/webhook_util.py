"""Helpers for the audit webhook tests: EventList bodies in the wire format, a client, a watch process."""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson


def exec_event(audit_id: str, pod: str = "web", user: str = "alice") -> dict[str, object]:
    """One audit.k8s.io/v1 Event of an interactive `kubectl exec ... -- sh`, as kube-apiserver logs it (ResponseStarted)."""
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": audit_id,
        "stage": "ResponseStarted",
        "requestURI": f"/api/v1/namespaces/default/pods/{pod}/exec?command=sh&container=app&stdin=true&stdout=true&tty=true",
        "verb": "create",
        "user": {"username": user, "uid": "u-1", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.31.0 (linux/amd64) kubernetes/abcdef",
        "objectRef": {"resource": "pods", "namespace": "default", "name": pod, "apiVersion": "v1", "subresource": "exec"},
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": "2026-12-02T05:00:00.000000Z",
        "stageTimestamp": "2026-12-02T05:00:00.050000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }


def read_event(audit_id: str, pod: str = "web") -> dict[str, object]:
    """A `get pod` by a controller: the bulk of real audit traffic, which no T1609 rule matches."""
    ev = exec_event(audit_id, pod, "system:serviceaccount:kube-system:replicaset-controller")
    ev.update(verb="get", requestURI=f"/api/v1/namespaces/default/pods/{pod}", stage="ResponseComplete",
              objectRef={"resource": "pods", "namespace": "default", "name": pod, "apiVersion": "v1"},
              responseStatus={"metadata": {}, "code": 200})  # fmt: skip
    return ev


def event_list(ids: list[str], exec_every: int = 1) -> bytes:
    """An EventList; with exec_every=N only every Nth event is an exec, the others reads."""
    items = [exec_event(x) if i % exec_every == 0 else read_event(x) for i, x in enumerate(ids)]
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})


class Client:
    """One keep-alive connection, as kube-apiserver's webhook backend keeps one."""

    def __init__(self, port: int, ca: Path | None = None, token: str | None = None,
                 cert: tuple[Path, Path] | None = None, timeout: float = 10.0) -> None:  # fmt: skip
        self.port, self.token, self.timeout = port, token, timeout
        self.ctx: ssl.SSLContext | None = None
        if ca is not None:
            self.ctx = ssl.create_default_context(cafile=str(ca))
            if cert is not None:
                self.ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        if self.ctx is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=self.timeout, context=self.ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self._connect()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = self._connect()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def post(self, body: bytes, path: str = "/audit") -> int:
        return self.request("POST", path, body)[0]

    def close(self) -> None:
        self.conn.close()


def start_watch(args: list[str], stderr: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("execguard")
    return subprocess.Popen([str(exe), "watch", *args], stdout=subprocess.DEVNULL, stderr=open(stderr, "ab"))


def wait_healthy(port: int, proc: subprocess.Popen[bytes], ca: Path | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"watch exited with {proc.returncode}")
        try:
            client = Client(port, ca, timeout=1.0)
            status = client.request("GET", "/healthz")[0]
            client.close()
            if status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise AssertionError("watch did not come up")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("watch did not stop") from None


def alerts_by_audit_id(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    if not path.exists():
        return counts
    data = path.read_bytes()
    # watch may be writing while we read: a last line without its newline is not complete yet
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        if line.strip():
            alert = orjson.loads(line)
            counts[alert.get("event_id") or ""] += 1
    return counts


def post_until(client: Client, prefix: str, size: int, done: threading.Event, accepted: list[str], unsure: list[str]) -> None:
    """Post batches of `size` exec events (ids PREFIX-BATCH-I) until `done`; each id lands in `accepted` (answered 200)
    or, when the connection fails, in `unsure` and the poster stops (the server died mid-request)."""
    b = 0
    while not done.is_set():
        ids = [f"{prefix}-{b}-{i}" for i in range(size)]
        b += 1
        try:
            status = client.post(event_list(ids))
        except (OSError, http.client.HTTPException):
            unsure.extend(ids)  # the process died mid-request: spooled or not, either is right
            return
        if status == 200:
            accepted.extend(ids)
