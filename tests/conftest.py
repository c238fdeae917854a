from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from execguard.testing.dockerd import Dockerd, DockerdUnavailable, TLSFiles, make_test_certs, start_dockerd, why_unavailable

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[Dockerd]:
    """A real dockerd -D of our own (unique dirs, debug log to a file) with the local/bb:1 busybox image.

    Skipped where it cannot run (not root, no dockerd/busybox); with EXECGUARD_REQUIRE_DOCKER=1 (CI) that fails instead.
    """
    required = os.environ.get("EXECGUARD_REQUIRE_DOCKER") == "1"
    reason = why_unavailable()
    if reason:
        if required:
            pytest.fail(f"EXECGUARD_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    try:
        daemon = start_dockerd(tcp=True)
    except DockerdUnavailable as exc:
        if required:
            pytest.fail(f"EXECGUARD_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA with server and client certificates for the HTTPS tests (a module may define its own ``certs``)."""
    try:
        return make_test_certs(tmp_path_factory.mktemp("certs"))
    except DockerdUnavailable as exc:
        pytest.skip(str(exc))
