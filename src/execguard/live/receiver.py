"""The audit webhook's receiver in a process of its own: HTTP(S), the body checks and the spool's fsync.

Why a process: the engine (rules, correlation, sinks) holds the GIL for most of its time, and in one
process the request threads waited behind it, so the answer to kube-apiserver, which must wait for
the fsync anyway, also waited for the engine (ack p99 of 150-550 ms at 20 000 events/s). In its own
process the receiver does only the cheap part of a request and answers as soon as the body is on
disk; the engine catches up from the spool (live/handoff.py).

Lifetime: the engine process starts it (``ReceiverProcess.start``) and stops it with SIGTERM (drain:
503 for new POSTs, requests in flight finish, the spool is closed). It dies with the engine process
(PR_SET_PDEATHSIG), so a kill -9 of the engine leaves no listener behind; if it dies on its own
(kill -9, OOM) the engine starts it again on the same addresses.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .handoff import Shared, SharedStats, pack, unpack
from .spool import Position, Spool, SpoolError

PR_SET_PDEATHSIG = 1
DRAIN_SECONDS = 30.0


class ReceiverError(Exception):
    """The receiver process could not start (one line: a port in use, a bad certificate, a bad spool)."""


@dataclass(frozen=True)
class ReceiverConfig:
    addresses: tuple[tuple[str, int], ...]
    spool: str
    max_bytes: int
    max_body: int
    tls: tuple[str, str, str | None] | None  # certificate, key, client CA; None = plain HTTP
    token: str | None  # passed through the spawn pipe, never on a command line


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the prctl
        os._exit(1)


def receiver_main(config: ReceiverConfig, shared: Shared, status: Connection, parent: int) -> None:
    """The receiver process: serve until SIGTERM or SIGINT, then drain and exit."""
    _die_with_parent(parent)
    from .webhook import Receiver, serve, tls_context

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())  # Ctrl-C reaches the whole process group
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # SIGHUP reloads the engine's rules; connections stay
    wake = shared.wake_w.fileno()
    os.set_blocking(wake, False)

    def on_synced(pos: Position) -> None:
        shared.synced.value = pack(pos)
        with contextlib.suppress(BlockingIOError):  # a full pipe: a wake-up is pending anyway
            os.write(wake, b"\0")

    try:
        spool = Spool(Path(config.spool), config.max_bytes, on_synced=on_synced, committed=lambda: unpack(int(shared.committed.value)))
        tls = tls_context(Path(config.tls[0]), Path(config.tls[1]), Path(config.tls[2]) if config.tls[2] else None) if config.tls else None
        stats = SharedStats(shared)
        servers = []
        for host, port in config.addresses:
            try:
                servers.append(
                    Receiver((host, port), spool, stats, tls, config.token, max_body=config.max_body, ready=lambda: shared.ready.value == 1)
                )
            except OSError as exc:
                raise ReceiverError(f"{host}:{port}: {exc.strerror or exc}") from None
    except (ReceiverError, SpoolError) as exc:
        status.send(("error", str(exc)))
        sys.exit(2)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        status.send(("error", f"TLS files {config.tls}: {getattr(exc, 'strerror', None) or exc}"))
        sys.exit(2)
    for server in servers:
        serve(server)
    status.send(("ok", [(str(s.server_address[0]), int(s.server_address[1])) for s in servers], spool.truncated))
    status.close()
    while not stopping.wait(0.5):
        if os.getppid() != parent:
            break
    for server in servers:
        server.draining = True
        server.shutdown()
    deadline = time.monotonic() + DRAIN_SECONDS
    for server in servers:
        server.wait_idle(max(0.0, deadline - time.monotonic()))
        server.server_close()
    spool.close()


class ReceiverProcess:
    """The engine process's handle on the receiver process: start, restart when it died, stop."""

    def __init__(self, config: ReceiverConfig, shared: Shared, warn: Callable[[str], None]) -> None:
        self.config = config
        self.shared = shared
        self.warn = warn
        self.ctx = multiprocessing.get_context("spawn")  # not fork: the engine process has threads
        self.proc: Any = None
        self.truncated = 0
        self._retry_at = 0.0
        self._delay = 0.5

    def start(self, timeout: float = 60.0) -> list[tuple[str, int]]:
        """Start it; the addresses it listens on. ReceiverError (one line) when it cannot."""
        status_r, status_w = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(
            target=receiver_main, args=(self.config, self.shared, status_w, os.getpid()), name="execguard-webhook", daemon=True
        )
        proc.start()
        status_w.close()
        try:
            if not status_r.poll(timeout):
                proc.kill()
                raise ReceiverError(f"the receiver process did not start within {timeout:.0f}s")
            message = status_r.recv()
        except EOFError:
            proc.join(5)
            raise ReceiverError(f"the receiver process exited with {proc.exitcode}") from None
        finally:
            status_r.close()
        if message[0] != "ok":
            proc.join(5)
            raise ReceiverError(message[1])
        self.proc = proc
        self.truncated = int(message[2])
        bound: list[tuple[str, int]] = message[1]
        # a restart listens where the first start did (port 0 picked a port once)
        self.config = replace(self.config, addresses=tuple(bound))
        return bound

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def check(self) -> None:
        """Start the receiver again if it died, with backoff (0.5 s doubling to 30 s)."""
        if self.proc is None or self.proc.exitcode is None or time.monotonic() < self._retry_at:
            return
        code = self.proc.exitcode
        try:
            self.start()
            self.warn(f"audit webhook receiver exited ({_how(code)}); started again, pid {self.pid}")
            self._delay = 0.5
        except ReceiverError as exc:
            self.warn(f"audit webhook receiver exited ({_how(code)}) and could not start again: {exc}; retrying in {self._delay:.1f}s")
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, 30.0)

    def supervise(self, stopping: threading.Event, timeout: float) -> threading.Thread:
        """A thread that starts the receiver again when it dies and, once ``stopping`` is set, stops it
        (SIGTERM, drain up to ``timeout``); join it to wait for the drain.

        Make it before lowering the engine thread's priority: Linux nice values are per thread and a
        process started from a thread inherits its value. It must live until the receiver is stopped:
        PR_SET_PDEATHSIG fires when the thread that started the process ends."""

        def loop() -> None:
            while not stopping.wait(0.2):
                self.check()
            self.stop(timeout)

        t = threading.Thread(target=loop, name="webhook-receiver", daemon=True)
        t.start()
        return t

    def stop(self, timeout: float) -> bool:
        """SIGTERM, then wait for its drain; True when it exited by itself."""
        if self.proc is None:
            return True
        if self.proc.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            self.proc.kill()
            self.proc.join(5)
            return False
        return True


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"
