"""watch --docker over TCP with TLS: the client certificate settings `audit --docker-host` reads, on a real
--tlsverify daemon; without a client certificate the input warns and keeps retrying instead of raising."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from execguard.audit.gather.docker_live import client_tls
from execguard.live.docker import DockerInput
from execguard.model import Event
from execguard.testing.dockerd import IMAGE, Dockerd, DockerdUnavailable, make_test_certs, start_dockerd, why_unavailable

pytestmark = pytest.mark.docker
WAIT = 30.0


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    try:
        d = start_dockerd(tls=make_test_certs(tmp_path_factory.mktemp("tls")), tlsverify=True)
    except DockerdUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield d
    finally:
        d.stop()


def _run(inp: DockerInput, got: list[Event], stop: threading.Event) -> threading.Thread:
    t = threading.Thread(target=inp.run, args=(got.append, stop), daemon=True)
    t.start()
    return t


def test_exec_seen_over_tls_with_client_certificate(tls_daemon: Dockerd) -> None:
    tls = tls_daemon.tls
    assert tls is not None and tls_daemon.tcp_url
    settings = client_tls(tlsverify=True, tlscacert=str(tls.ca), tlscert=str(tls.client_cert), tlskey=str(tls.client_key), env={})
    inp = DockerInput(tls_daemon.tcp_url, settings)
    got: list[Event] = []
    stop = threading.Event()
    t = _run(inp, got, stop)
    try:
        assert inp.connected.wait(WAIT)
        c = tls_daemon.client().containers.run(IMAGE, ["sleep", "60"], detach=True, network_mode="none")
        api = tls_daemon.client().api
        exec_id = api.exec_create(c.id, ["sh", "-c", "id;  echo 'a  b'"])["Id"]
        api.exec_start(exec_id)
        deadline = time.monotonic() + WAIT
        while not any(e.event_id == exec_id for e in got) and time.monotonic() < deadline:
            time.sleep(0.02)
        ev = next(e for e in got if e.event_id == exec_id)
        assert ev.command == ["sh", "-c", "id;  echo 'a  b'"] and ev.source.file == tls_daemon.tcp_url
    finally:
        stop.set()
        t.join(WAIT)
    assert not t.is_alive()


def test_refused_without_client_certificate_warns_and_retries(tls_daemon: Dockerd, tmp_path: Path) -> None:
    tls = tls_daemon.tls
    assert tls is not None and tls_daemon.tcp_url
    warnings: list[str] = []
    inp = DockerInput(tls_daemon.tcp_url, client_tls(tlsverify=True, tlscacert=str(tls.ca), env={}), warn=warnings.append)
    stop = threading.Event()
    t = _run(inp, [], stop)
    deadline = time.monotonic() + WAIT
    while len(warnings) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(WAIT)
    assert not t.is_alive() and not inp.connected.is_set()
    assert len(warnings) >= 2 and all(w.startswith(tls_daemon.tcp_url) and w.endswith("reconnecting") for w in warnings)
