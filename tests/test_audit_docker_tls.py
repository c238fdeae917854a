"""TLS on the Docker side of the audit, against real dockerd instances started with throw-away certificates.

Three TLS daemons (module scope, no image, a second or so each) besides the session's plain-TCP one:
``--tlsverify``; ``--tls --tlsverify=false`` (TLS that serves anyone); ``--tls`` alone, which dockerd >= 20.10
treats as ``--tlsverify`` (the offline analysis relies on that).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from execguard.audit.docker import DockerConfig
from execguard.audit.docker_live import ClientTLS, client_tls
from execguard.audit.engine import Finding
from execguard.audit.live import LiveError
from execguard.audit.probe import docker_anonymous, probe
from execguard.audit.run import run_audit
from execguard.testing.dockerd import Dockerd, DockerdUnavailable, TLSFiles, make_test_certs, start_dockerd, why_unavailable

DATA = Path(__file__).parent / "data" / "audit" / "docker"
MODES = {"verify": True, "noverify": False, "implied": None}  # start_dockerd(tlsverify=...)


def _required() -> bool:
    return os.environ.get("EXECGUARD_REQUIRE_DOCKER") == "1"


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(f"EXECGUARD_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    try:
        return make_test_certs(tmp_path_factory.mktemp("tls"))
    except DockerdUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """Another CA with its own server and client certificates: trusted by nobody here."""
    try:
        return make_test_certs(tmp_path_factory.mktemp("rogue"))
    except DockerdUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="module")
def tls_daemons(certs: TLSFiles) -> Iterator[dict[str, Dockerd]]:
    reason = why_unavailable()
    if reason:
        _unavailable(reason)
    daemons: dict[str, Dockerd] = {}
    try:
        for name, verify in MODES.items():
            daemons[name] = start_dockerd(image=False, tls=certs, tlsverify=verify)
    except DockerdUnavailable as exc:
        for d in daemons.values():
            d.stop()
        _unavailable(str(exc))
    try:
        yield daemons
    finally:
        for d in daemons.values():
            d.stop()


def _mine(certs: TLSFiles) -> ClientTLS | None:
    return client_tls(tlsverify=True, tlscacert=str(certs.ca), tlscert=str(certs.client_cert), tlskey=str(certs.client_key), env={})


def _addr(d: Dockerd) -> str:
    assert d.tcp_url
    return d.tcp_url.removeprefix("tcp://")


def _by_id(findings: list[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in findings}


# ---------------------------------------------------------------- (c) --tlsverify


@pytest.mark.docker
def test_tlsverify_daemon_without_certs_is_not_flagged(tls_daemons: dict[str, Dockerd]) -> None:
    d = tls_daemons["verify"]
    res = run_audit(docker_host=d.tcp_url, probes=[_addr(d)])
    assert not res.errors
    got = _by_id(res.findings)
    assert set(got) == {"EG-DOCKER-022", "EG-NET-005"}  # both info: evidence of the refusal, no weakness
    assert all(f.severity == "info" for f in res.findings)
    api = got["EG-DOCKER-022"].facts
    assert api["transport"] == "tls" and api["client_cert_required"] is True and api["unauthenticated"] is False
    assert api["read"] is False and "no client certificate given" in api["read_with"]
    assert "handshake refused (TLS alert" in got["EG-DOCKER-022"].evidence
    assert "handshake refused (TLS alert" in got["EG-NET-005"].evidence


@pytest.mark.docker
def test_tlsverify_daemon_is_read_with_client_certificate(tls_daemons: dict[str, Dockerd], certs: TLSFiles) -> None:
    d = tls_daemons["verify"]
    res = run_audit(docker_host=d.tcp_url, docker_tls=_mine(certs))
    assert not res.errors
    got = _by_id(res.findings)
    assert set(got) == {"EG-DOCKER-022", "EG-DOCKER-004", "EG-DOCKER-005"}  # info read through the certificate
    api = got["EG-DOCKER-022"].facts
    real = d.client().version()  # the same daemon through its unix socket
    assert api["read"] is True and api["version"] == real["Version"] and api["api_version"] == real["ApiVersion"]
    assert api["read_with"].startswith(f"read with client certificate {certs.client_cert}, server certificate verified")
    assert any(o.startswith("name=seccomp") for o in api["security_options"])
    assert got["EG-DOCKER-004"].target == f"dockerd at {d.tcp_url}"
    assert got["EG-DOCKER-005"].facts["authorization_plugins"] == []


@pytest.mark.docker
def test_cli_honours_docker_tls_verify_and_cert_path(tls_daemons: dict[str, Dockerd], certs: TLSFiles, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from execguard.cli import app

    d = tls_daemons["verify"]
    assert d.tcp_url
    cert_path = tmp_path / "docker-certs"
    cert_path.mkdir()
    for src, name in ((certs.ca, "ca.pem"), (certs.client_cert, "cert.pem"), (certs.client_key, "key.pem")):
        shutil.copy(src, cert_path / name)
    env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(cert_path)}
    r = CliRunner().invoke(app, ["audit", "--docker-host", d.tcp_url, "-o", "json", "--fail-on", "critical"], env=env)
    assert r.exit_code == 0, r.output
    found = {f["id"]: f for f in json.loads(r.stdout)}
    assert {"EG-DOCKER-004", "EG-DOCKER-022"} <= set(found)
    assert found["EG-DOCKER-022"]["facts"]["read"] is True
    key = certs.client_key.read_text()
    body = "".join(key.strip().splitlines()[1:-1])
    assert "PRIVATE KEY" not in r.output and body[:40] not in r.output  # key material never reaches the report

    # explicit options, table output
    r = CliRunner().invoke(
        app,
        ["audit", "--docker-host", d.tcp_url, "--tlsverify", "--tlscacert", str(certs.ca), "--tlscert", str(certs.client_cert),
         "--tlskey", str(certs.client_key)],
        env={"DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": ""},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "EG-DOCKER-004" in r.output and "PRIVATE KEY" not in r.output


@pytest.mark.docker
def test_wrong_ca_or_untrusted_client_certificate_is_an_error(tls_daemons: dict[str, Dockerd], certs: TLSFiles, rogue: TLSFiles) -> None:
    d = tls_daemons["verify"]
    # the daemon's certificate does not chain to the CA we were told to trust
    wrong_ca = client_tls(tlsverify=True, tlscacert=str(rogue.ca), tlscert=str(certs.client_cert), tlskey=str(certs.client_key), env={})
    res = run_audit(docker_host=d.tcp_url, docker_tls=wrong_ca)
    assert res.errors and "CERTIFICATE_VERIFY_FAILED" in res.errors[0]
    assert {f.id for f in res.findings} == {"EG-DOCKER-022"}  # the anonymous test still stands
    # our certificate is not signed by the daemon's CA
    untrusted = client_tls(tlsverify=True, tlscacert=str(certs.ca), tlscert=str(rogue.client_cert), tlskey=str(rogue.client_key), env={})
    res = run_audit(docker_host=d.tcp_url, docker_tls=untrusted)
    assert res.errors and "refused the client certificate (TLS alert bad certificate" in res.errors[0]
    assert not any(f.id == "EG-DOCKER-004" for f in res.findings)


# ---------------------------------------------------------------- (b) TLS that serves anyone


@pytest.mark.docker
def test_tls_without_client_verification_is_flagged(tls_daemons: dict[str, Dockerd]) -> None:
    d = tls_daemons["noverify"]
    res = run_audit(docker_host=d.tcp_url, probes=[_addr(d)])
    assert not res.errors
    got = _by_id(res.findings)
    assert {"EG-DOCKER-021", "EG-NET-001", "EG-DOCKER-004", "EG-DOCKER-005"} <= set(got)
    assert not {"EG-DOCKER-020", "EG-DOCKER-022", "EG-NET-005"} & set(got)
    api = got["EG-DOCKER-021"]
    assert api.severity == "critical" and api.facts["transport"] == "tls" and api.facts["client_cert_required"] is False
    assert "https without a client certificate: /version → 200" in api.evidence
    assert api.facts["read_with"] == "read with no client certificate"
    net = got["EG-NET-001"].facts
    assert net["tls"] is True and net["service"] == "docker-tls"


@pytest.mark.docker
def test_cli_fail_on_critical_for_tls_without_verification(tls_daemons: dict[str, Dockerd], certs: TLSFiles) -> None:
    from typer.testing import CliRunner

    from execguard.cli import app

    d = tls_daemons["noverify"]
    assert d.tcp_url
    args = ["audit", "--docker-host", d.tcp_url, "-o", "json", "--fail-on", "critical"]
    r = CliRunner().invoke(app, args, env={"DOCKER_TLS_VERIFY": ""})
    assert r.exit_code == 1, r.output
    assert "EG-DOCKER-021" in r.stdout
    # holding a valid certificate does not make the daemon any less open
    mine = ["--tlscacert", str(certs.ca), "--tlscert", str(certs.client_cert), "--tlskey", str(certs.client_key)]
    r = CliRunner().invoke(app, [*args, *mine])
    assert r.exit_code == 1 and "EG-DOCKER-021" in r.stdout


# ---------------------------------------------------------------- probes: (a), (b), (c) without credentials


@pytest.mark.docker
@pytest.mark.parametrize("tls_first", [False, True])  # True: the order used for port 2376
def test_anonymous_check_tells_the_three_apart(tls_daemons: dict[str, Dockerd], docker_daemon: Dockerd, tls_first: bool) -> None:
    def check(d: Dockerd) -> dict[str, object]:
        host, port = _addr(d).split(":")
        return docker_anonymous(host, int(port), tls_first=tls_first)

    plain = check(docker_daemon)
    assert (plain["tls"], plain["docker_unauthenticated"], plain["client_cert_required"]) == (False, True, None)
    open_tls = check(tls_daemons["noverify"])
    assert (open_tls["tls"], open_tls["docker_unauthenticated"], open_tls["client_cert_required"]) == (True, True, False)
    for name in ("verify", "implied"):
        closed = check(tls_daemons[name])
        assert (closed["tls"], closed["docker_unauthenticated"], closed["client_cert_required"]) == (True, False, True), name
        assert "handshake refused" in str(closed["answer"])


@pytest.mark.docker
def test_probe_findings_per_daemon(tls_daemons: dict[str, Dockerd], docker_daemon: Dockerd) -> None:
    from execguard.audit.engine import evaluate

    def ids(d: Dockerd) -> set[str]:
        return {f.id for f in evaluate(probe(_addr(d)))}

    assert ids(docker_daemon) == {"EG-NET-001"}
    assert ids(tls_daemons["noverify"]) == {"EG-NET-001"}
    assert ids(tls_daemons["verify"]) == ids(tls_daemons["implied"]) == {"EG-NET-005"}


@pytest.mark.docker
def test_plain_daemon_with_tls_options_is_still_flagged(docker_daemon: Dockerd, certs: TLSFiles) -> None:
    res = run_audit(docker_host=docker_daemon.tcp_url, docker_tls=_mine(certs))
    assert not res.errors
    api = _by_id(res.findings)["EG-DOCKER-020"]
    assert api.facts["transport"] == "plain" and "TLS options were not needed" in api.facts["read_with"]


# ---------------------------------------------------------------- offline reading of the same command lines


@pytest.mark.docker
@pytest.mark.parametrize(("name", "offline", "live"), [
    ("verify", set(), {"EG-DOCKER-022"}),
    ("noverify", {"EG-DOCKER-003"}, {"EG-DOCKER-021"}),
    ("implied", set(), {"EG-DOCKER-022"}),  # --tls alone: dockerd requires client certificates
])  # fmt: skip
def test_offline_reading_of_the_command_line_agrees_with_the_daemon(
    tls_daemons: dict[str, Dockerd], tmp_path: Path, name: str, offline: set[str], live: set[str]
) -> None:
    d = tls_daemons[name]
    (tmp_path / "dockerd.cmdline").write_text(" ".join(d.argv) + "\n")
    listener = {f.id for f in run_audit(from_dir=str(tmp_path)).findings if f.id.startswith("EG-DOCKER-00") and f.id <= "EG-DOCKER-003"}
    assert listener == offline
    assert {f.id for f in run_audit(docker_host=d.tcp_url).findings} & {"EG-DOCKER-020", "EG-DOCKER-021", "EG-DOCKER-022"} == live


# ---------------------------------------------------------------- no daemon: option handling and offline semantics


def _files(tmp_path: Path, *names: str) -> Path:
    for n in names:
        (tmp_path / n).write_text("x")
    return tmp_path


def test_client_tls_follows_the_docker_cli(tmp_path: Path) -> None:
    base = _files(tmp_path, "ca.pem", "cert.pem", "key.pem")
    assert client_tls(env={}) is None
    assert client_tls(env={"DOCKER_CERT_PATH": str(base)}) is None  # the path alone does not turn TLS on
    t = client_tls(env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(base)})
    assert t == ClientTLS(True, str(base / "ca.pem"), str(base / "cert.pem"), str(base / "key.pem"))
    assert client_tls(env={"DOCKER_TLS_VERIFY": "0", "DOCKER_CERT_PATH": str(base)}) is not None  # any non-empty value, as docker
    t = client_tls(tlsverify=False, env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(base)})
    assert t is not None and t.verify is False and t.ca is None and t.cert  # --no-tlsverify: TLS on, no server check
    t = client_tls(env={"DOCKER_TLS": "1", "DOCKER_CONFIG": str(base)})
    assert t is not None and not t.verify and t.cert == str(base / "cert.pem")
    assert client_tls(tlscert=str(base / "cert.pem"), tlskey=str(base / "key.pem"), env={}) is not None  # a file turns TLS on


def test_client_tls_defaults_that_do_not_exist(tmp_path: Path) -> None:
    only_ca = _files(tmp_path, "ca.pem")
    t = client_tls(tlsverify=True, env={"DOCKER_CERT_PATH": str(only_ca)})
    assert t == ClientTLS(True, str(only_ca / "ca.pem"), None, None)  # default cert/key left out when absent
    with pytest.raises(LiveError, match="CA certificate"):
        client_tls(tlsverify=True, env={"DOCKER_CERT_PATH": str(tmp_path / "nowhere")})
    with pytest.raises(LiveError, match="no such file"):
        client_tls(tlscert=str(tmp_path / "missing.pem"), tlskey=str(only_ca / "ca.pem"), env={})
    with pytest.raises(LiveError, match="both --tlscert and --tlskey"):
        client_tls(tls=True, tlscert=str(only_ca / "ca.pem"), env={"DOCKER_CERT_PATH": str(tmp_path / "nowhere")})


def test_cli_tls_options_need_docker_host(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from execguard.cli import app

    r = CliRunner().invoke(app, ["audit", "--from", str(DATA / "secure"), "--tlsverify"])
    assert r.exit_code == 2 and "--docker-host" in r.output
    r = CliRunner().invoke(app, ["audit", "--docker-host", "tcp://127.0.0.1:1", "--tlscert", str(tmp_path / "nope.pem")])
    assert r.exit_code == 2 and "no such file" in r.output


@pytest.mark.parametrize(("tls", "tlsverify", "expected"), [
    (None, None, (False, False)),
    (True, None, (True, True)),  # dockerd >= 20.10 copies tls into an unset tlsverify
    (False, None, (False, False)),
    (None, True, (True, True)),
    (None, False, (True, False)),  # any tlsverify setting turns TLS on
    (True, False, (True, False)),
    (False, False, (True, False)),
])  # fmt: skip
def test_effective_tls_as_dockerd(tls: bool | None, tlsverify: bool | None, expected: tuple[bool, bool]) -> None:
    assert DockerConfig("d", None, None, tls=tls, tlsverify=tlsverify).effective_tls() == expected


def test_offline_tls_alone_is_verified_and_explicit_false_is_not(tmp_path: Path) -> None:
    implied = run_audit(from_dir=str(DATA / "tls-implied")).findings
    assert implied == []
    (tmp_path / "cmdlines.txt").write_text(
        "dockerd -H tcp://0.0.0.0:2376 --tls --tlscacert /etc/docker/ca.pem\n"
        "dockerd -H tcp://0.0.0.0:2377 --tlsverify=false\n"
        "dockerd -H tcp://0.0.0.0:2378 --tls --tlsverify=false\n"
    )
    got = [f for f in run_audit(from_dir=str(tmp_path)).findings if f.id.startswith("EG-DOCKER-00") and f.id <= "EG-DOCKER-003"]
    assert sorted((f.id, f.facts["port"]) for f in got) == [("EG-DOCKER-003", 2377), ("EG-DOCKER-003", 2378)]
