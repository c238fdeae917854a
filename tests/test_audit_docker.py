"""Docker daemon configuration (daemon.json, dockerd flags in every spelling, systemd units) and a real daemon."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from execguard.audit.docker import parse_dockerd, parse_host
from execguard.audit.run import run_audit
from execguard.testing.dockerd import Dockerd, free_port

DATA = Path(__file__).parent / "data" / "audit" / "docker"


def ids(sub: str) -> list[str]:
    return sorted(f.id for f in run_audit(from_dir=str(DATA / sub)).findings)


@pytest.mark.parametrize(
    "argv",
    [
        ["dockerd", "-H", "tcp://0.0.0.0:2375"],
        ["dockerd", "-H=tcp://0.0.0.0:2375"],
        ["dockerd", "-Htcp://0.0.0.0:2375"],
        ["dockerd", "--host", "tcp://0.0.0.0:2375"],
        ["dockerd", "--host=tcp://0.0.0.0:2375"],
        ["dockerd", "-D", "-H", "fd://", "-DH", "tcp://0.0.0.0:2375"],
    ],
)
def test_host_flag_spellings(argv: list[str]) -> None:
    assert "tcp://0.0.0.0:2375" in parse_dockerd(argv)["host"]


def test_parse_host_defaults() -> None:
    assert parse_host("tcp://:2375", False)["address"] == "127.0.0.1"
    assert parse_host("tcp://", True)["port"] == 2376
    assert parse_host("0.0.0.0:2375", False)["scheme"] == "tcp"
    assert parse_host("fd://", False)["scheme"] == "fd"
    assert parse_host("unix:///var/run/docker.sock", False)["address"] is None
    assert parse_host("tcp://[::1]:2375", False)["loopback"] is True


def test_daemon_json_open() -> None:
    assert ids("open-json") == ["EG-DOCKER-001", "EG-DOCKER-004", "EG-DOCKER-005"]


def test_daemon_json_hosts_as_string() -> None:
    assert "EG-DOCKER-001" in ids("hosts-string")


def test_tls_without_verify() -> None:
    assert "EG-DOCKER-003" in ids("tls-noverify") and "EG-DOCKER-001" not in ids("tls-noverify")


def test_secure_daemon_has_no_findings() -> None:
    assert ids("secure") == []


def test_systemd_unit() -> None:
    res = run_audit(from_dir=str(DATA / "unit"))
    f = next(f for f in res.findings if f.id == "EG-DOCKER-001")
    assert f.facts["host"] == "tcp://0.0.0.0:2375" and f.line == 7


def test_every_spelling_in_a_file() -> None:
    got = ids("spellings")
    assert got.count("EG-DOCKER-001") == 6 and got.count("EG-DOCKER-002") == 1  # tcp://:2375 → 127.0.0.1


def test_loopback_flags_with_userns_and_authz() -> None:
    assert ids("loopback") == ["EG-DOCKER-002"]


# ---------------------------------------------------------------- a real daemon


@pytest.mark.docker
def test_real_daemon_on_loopback_tcp_is_flagged(docker_daemon: Dockerd) -> None:
    assert docker_daemon.tcp_url
    res = run_audit(docker_host=docker_daemon.tcp_url, probes=[docker_daemon.tcp_url.removeprefix("tcp://")])
    assert not res.errors
    got = {f.id for f in res.findings}
    assert {"EG-DOCKER-020", "EG-NET-001"} <= got
    api = next(f for f in res.findings if f.id == "EG-DOCKER-020")
    assert api.facts["version"] and api.facts["loopback"] is True
    assert {"EG-DOCKER-004", "EG-DOCKER-005"} <= got  # live info: no userns, no authz plugin


@pytest.mark.docker
def test_real_daemon_unix_only_is_not_flagged(docker_daemon: Dockerd) -> None:
    closed = free_port()
    res = run_audit(docker_host=docker_daemon.url, probes=[f"127.0.0.1:{closed}"])
    assert not res.errors
    ours = [f for f in res.findings if f.target in (docker_daemon.url, str(docker_daemon.socket_path)) or f.id.startswith("EG-NET")]
    assert {f.id for f in ours} <= {"EG-DOCKER-011"}  # no unauthenticated TCP, closed port silent, socket not world-writable
    assert not any(f.id == "EG-DOCKER-020" for f in res.findings)


def test_probe_closed_port_and_plain_tcp_server() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        res = run_audit(probes=[f"127.0.0.1:{port}"])  # open, but nothing that speaks Docker
    assert not res.errors and not res.findings


def test_unreachable_docker_host_is_an_error() -> None:
    res = run_audit(docker_host=f"tcp://127.0.0.1:{free_port()}")
    assert not res.findings and res.errors and "127.0.0.1" in res.errors[0]


@pytest.mark.parametrize(("mode", "expected"), [(0o666, {"EG-DOCKER-010"}), (0o660, set()), (0o600, set())])
def test_socket_mode(tmp_path: Path, mode: int, expected: set[str]) -> None:
    from execguard.audit.docker_live import local_socket_items
    from execguard.audit.engine import evaluate

    path = tmp_path / "d.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        path.chmod(mode)
        items = local_socket_items((str(path), str(path)))
    assert len(items) == 1 and items[0].facts["mode"] == f"{mode:04o}"
    assert {f.id for f in evaluate(items)} & {"EG-DOCKER-010"} == expected


@pytest.mark.docker
def test_cli_fail_on_real_tcp_daemon(docker_daemon: Dockerd) -> None:
    from typer.testing import CliRunner

    from execguard.cli import app

    assert docker_daemon.tcp_url
    r = CliRunner().invoke(app, ["audit", "--docker-host", docker_daemon.tcp_url, "-o", "json", "--fail-on", "critical"])
    assert r.exit_code == 1, r.output
    assert "EG-DOCKER-020" in r.stdout
    r = CliRunner().invoke(app, ["audit", "--docker-host", docker_daemon.url, "-o", "json", "--fail-on", "critical"])
    assert r.exit_code == 0, r.output


def test_socket_activation_tcp_listener() -> None:
    res = run_audit(from_dir=str(DATA / "socket-activation"))
    f = next(f for f in res.findings if f.id == "EG-DOCKER-001")
    assert f.facts["host"] == "tcp://0.0.0.0:2375" and (f.file or "").endswith("docker.socket") and f.line == 7
    assert ids("socket-unix") == []
