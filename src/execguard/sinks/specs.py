"""Sinks named on the command line: ``make_sink("webhook:https://...")`` for hunt and watch.

    store:PATH                        SQLite alert store (report/store.py)
    file:PATH[?max_bytes=N&keep=K]    rotating JSONL file (report/rotating.py); N may end in K, M or G
    webhook:URL                       JSON POST per alert (report/webhook.py); URL is http:// or https://
    syslog+udp://HOST[:PORT][?facility=F]   RFC 5424 over UDP, port 514 by default
    syslog+tcp://HOST[:PORT][?facility=F]   RFC 5424 over TCP, octet counting

``Options`` carries what a spec cannot (spill directory, CA bundle, timeouts, the warning callback).
``Tee`` fans one alert out to several sinks; a sink that fails is reported once and set aside,
the others go on.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from ..model import Alert
from .store import StoreError

SCHEMES = ("store", "file", "webhook", "syslog+udp", "syslog+tcp")


class Sink(Protocol):
    def write(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class SpecError(ValueError):
    """A --sink value that names no sink we make; one line."""


@dataclass
class Options:
    spill_dir: Path | None = None  # webhook/syslog: alerts that cannot be queued go to a file here
    ca: Path | None = None  # webhook: an extra CA bundle for https
    timeout: float = 5.0
    queue_size: int = 1000
    drain: float = 5.0  # seconds close() keeps delivering before it spills the rest
    warn: Callable[[str], None] | None = None  # None: "warning: ..." lines on stderr


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().removesuffix("b")
    factor = units.get(t[-1:], 1)
    return int(float(t[:-1] if t[-1:] in units else t) * factor)


def _query(spec: str, q: str, allowed: Sequence[str]) -> dict[str, str]:
    found = {k: v[-1] for k, v in parse_qs(q, keep_blank_values=True).items()}
    unknown = sorted(set(found) - set(allowed))
    if unknown:
        raise SpecError(f"--sink {spec}: unknown option {unknown[0]!r}; use {', '.join(allowed)}")
    return found


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _spill(options: Options, name: str) -> Path | None:
    if options.spill_dir is None:
        return None
    options.spill_dir.mkdir(parents=True, exist_ok=True)
    # one spill file per destination, stable across runs so a restart replays it
    return options.spill_dir / f"spill-{hashlib.sha256(name.encode()).hexdigest()[:16]}.jsonl"


def make_sink(spec: str, options: Options | None = None) -> Sink:
    """The sink a --sink value names; SpecError (one line) when it names none."""
    opts = options or Options()
    if opts.warn is None:  # a sink's trouble is never silent
        opts = replace(opts, warn=_stderr)
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in SCHEMES or not rest:
        raise SpecError(f"--sink {spec.split('//')[0]!r}: give store:PATH, file:PATH, webhook:URL, syslog+udp://HOST:PORT or syslog+tcp://HOST:PORT")
    if scheme == "store":
        from .store import StoreSink

        return StoreSink(rest)
    if scheme == "file":
        from .rotating import RotatingJsonlSink

        path, _, q = rest.partition("?")
        found = _query(spec, q, ("max_bytes", "keep"))
        try:
            return RotatingJsonlSink(path, _size(found.get("max_bytes", "100M")), int(found.get("keep", "5")))
        except ValueError as exc:
            raise SpecError(f"--sink {spec}: {exc}") from None
    if scheme == "webhook":
        from .webhook import WebhookSink, public_url

        try:
            return WebhookSink(
                rest, timeout=opts.timeout, ca=opts.ca, queue_size=opts.queue_size, spill=_spill(opts, rest), drain=opts.drain,
                warn=opts.warn,
            )
        except (ValueError, OSError) as exc:
            raise SpecError(f"--sink webhook:{public_url(rest)}: {exc}") from None
    from .syslog import SyslogSink

    parts = urlsplit(spec)
    try:
        port = parts.port or 514
    except ValueError:
        raise SpecError(f"--sink {spec}: the port is not a number from 1 to 65535") from None
    if not rest.startswith("//") or not parts.hostname:
        raise SpecError(f"--sink {spec}: give {scheme}://HOST[:PORT]")
    found = _query(spec, parts.query, ("facility",))
    try:
        return SyslogSink(
            parts.hostname, port, transport=scheme.split("+")[1], facility=found.get("facility", "local0"), timeout=opts.timeout,
            queue_size=opts.queue_size, spill=_spill(opts, spec), drain=opts.drain, warn=opts.warn,
        )
    except ValueError as exc:
        raise SpecError(f"--sink {spec}: {exc}") from None


def open_sinks(specs: Sequence[str], options: Options | None = None) -> Tee:
    """Every --sink of a command as one Tee; if one is refused, those already open are closed and SpecError raised.

    Raises SpecError or StoreError (one line each); an OSError from opening a file is turned into SpecError.
    """
    made: list[Sink] = []
    try:
        for spec in specs:
            made.append(make_sink(spec, options))
    except (SpecError, StoreError, OSError) as exc:
        for sink in made:
            sink.close()
        if isinstance(exc, OSError):
            raise SpecError(f"--sink {spec}: {exc.strerror or exc}") from None
        raise
    names = ["webhook" if s.startswith("webhook:") else s.split("?")[0] for s in specs]  # a webhook URL is a secret
    return Tee(made, (options and options.warn) or _stderr, names=names)


class Tee:
    """Every alert to every sink. A sink whose write fails is reported once (``warn``) and written to no more.

    With ``primary`` the first sink is the command's own output: its errors (a broken pipe, a full disk) go to the caller."""

    def __init__(
        self, sinks: Sequence[Sink], warn: Callable[[str], None], names: Sequence[str] | None = None, primary: bool = False
    ) -> None:
        self.sinks = list(sinks)
        self.primary = primary
        self.names = list(names or [type(s).__name__ for s in sinks])
        self.failed: set[int] = set()
        self.warn = warn

    def write(self, alert: Alert) -> None:
        for i, sink in enumerate(self.sinks):
            if i in self.failed:
                continue
            try:
                sink.write(alert)
            except (OSError, sqlite3.Error, StoreError) as exc:
                if i == 0 and self.primary:
                    raise  # the command's own output (stdout, --out): its caller reports it
                self._fail(i, exc)

    def _fail(self, i: int, exc: Exception) -> None:
        self.failed.add(i)
        self.warn(f"{self.names[i]}: {exc}; no more alerts are written there")

    def close(self) -> None:
        errors: list[Exception] = []
        for i, sink in enumerate(self.sinks):
            try:
                sink.close()
            except Exception as exc:
                if i == 0 and self.primary:
                    errors.append(exc)  # the first sink is the command's own output: its caller reports it
                elif i not in self.failed:
                    self.warn(f"{self.names[i]}: {exc}")
        if errors:
            raise errors[0]
