"""`execguard watch` with the Docker and tail inputs (the lead merges it with the audit-webhook watch).

Alerts go to stdout as they are found (jsonl, ocsf, or one block per alert); SIGTERM or Ctrl-C stops
the inputs, works off what they queued and writes the tail checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any

import typer
from rich.console import Console

from .audit.gather import docker_live
from .audit.gather.live import LiveError
from .cli.options import severity_option
from .cli.util import EXIT_USAGE, check_output, error, fail, os_error_line, silence_stdout, warning
from .engine.match import Engine
from .engine.sigma import RuleError, load_rules
from .live.docker import DockerInput
from .live.run_inputs import AlertSink, LiveInput, Runner
from .live.tail import TailInput
from .sources import FORMATS


class WatchOutput(str, Enum):
    table = "table"
    jsonl = "jsonl"
    ocsf = "ocsf"


def _sink(output: WatchOutput, out: IO[bytes]) -> AlertSink:
    if output is WatchOutput.jsonl:
        from .sinks.jsonl import JsonlSink

        return JsonlSink(out)
    if output is WatchOutput.ocsf:
        from .sinks.ocsf import OcsfSink

        return OcsfSink(out)
    from .sinks.table import LiveSink

    console = Console(file=sys.stdout)
    return LiveSink(console, plain=not console.is_terminal)


def _warn_line(file: str, line: int | None, message: str) -> None:
    warning(f"{file}:{line}: {message}" if line else f"{file}: {message}")


def watch_command(
    docker: Annotated[
        list[str] | None,
        typer.Option("--docker", metavar="URL", help="Follow this Docker Engine API (unix://PATH, tcp://HOST:PORT); repeatable."),
    ] = None,
    tail: Annotated[
        list[str] | None,
        typer.Option("--tail", metavar="PATH", help="Follow this log file like tail -F, in any format hunt reads; globs; repeatable."),
    ] = None,
    tail_state: Annotated[
        Path | None, typer.Option("--tail-state", help="Offsets of --tail files, so a restart resumes where it stopped.")
    ] = None,
    tail_from_start: Annotated[
        bool, typer.Option("--tail-from-start", help="Files already there at the first start are read from their start, not their end.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help=f"--tail input format: {', '.join(FORMATS)}.")] = "auto",
    rules: Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules: a directory or file (repeatable).")] = None,
    no_builtin: Annotated[bool, typer.Option("--no-builtin", help="Use only the rules given with --rules.")] = False,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="Report alerts at or above this level.", callback=severity_option)
    ] = "info",
    output: Annotated[WatchOutput, typer.Option("--output", "-o", help="table, jsonl or ocsf.")] = WatchOutput.jsonl,
    out: Annotated[Path | None, typer.Option("--out", help="Append alerts to this file instead of stdout.")] = None,
    tls: Annotated[bool, typer.Option("--tls", help="--docker: use TLS (implied by --tlsverify; env DOCKER_TLS).")] = False,
    tlsverify: Annotated[
        bool | None, typer.Option("--tlsverify/--no-tlsverify", help="--docker: verify the daemon's certificate (env DOCKER_TLS_VERIFY).")
    ] = None,
    tlscacert: Annotated[str | None, typer.Option("--tlscacert", help="CA of the daemon certificate (DOCKER_CERT_PATH/ca.pem).")] = None,
    tlscert: Annotated[str | None, typer.Option("--tlscert", help="Client certificate (default DOCKER_CERT_PATH/cert.pem).")] = None,
    tlskey: Annotated[str | None, typer.Option("--tlskey", help="Client key (default DOCKER_CERT_PATH/key.pem).")] = None,
) -> None:
    """Watch live inputs and report T1609 container administration commands as they happen."""
    if not (docker or tail):
        fail("give --docker URL or --tail PATH")
    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    check_output(out)
    try:
        loaded = load_rules(rules or [], builtin=not no_builtin)
    except RuleError as exc:
        fail(exc)
    if not loaded:
        fail("no rules to run")
    inputs: list[LiveInput] = []
    for url in docker or []:
        try:
            docker_tls = docker_live.client_tls(tls, tlsverify, tlscacert, tlscert, tlskey) if url.startswith("tcp://") else None
            inputs.append(DockerInput(url, docker_tls, warn=warning))
        except (LiveError, ValueError, OSError) as exc:  # a bad URL, a missing certificate file
            fail(f"--docker {url}: {exc}")
    if tail:
        inputs.append(TailInput(tail, tail_state, from_start=tail_from_start, fmt=fmt, warn=_warn_line))
    stream: Any = open(out, "ab") if out else sys.stdout.buffer  # noqa: SIM115 - closed below
    runner = Runner(inputs, Engine(loaded, min_severity=min_severity or "info"), _sink(output, stream), warning)
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    try:
        runner.run(stop)
    except KeyboardInterrupt:
        stop.set()
    except BrokenPipeError:
        silence_stdout()  # the reader of our output went away (| head): stop quietly, as hunt does
    except OSError as exc:  # --out could not be written (a full disk): what was written stays
        error(os_error_line(exc) if exc.filename else f"{out or 'stdout'}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        stop.set()
        if out:
            stream.close()
