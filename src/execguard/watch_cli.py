"""``execguard watch``: live T1609 detection; here the Kubernetes audit webhook input (docs/watch.md)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from .cli.options import severity_option
from .cli.util import error, fail, note, plural, warning
from .engine.match import Engine
from .engine.sigma import RuleError, load_rules
from .model import SEVERITIES, severity_rank
from .policy import PolicyError, PolicyFilter, load_policy

if TYPE_CHECKING:
    from .live.runner import Detector, Sink

DRAIN_SECONDS = 30.0


class WatchOutput(str, Enum):
    table = "table"
    jsonl = "jsonl"
    ocsf = "ocsf"


def default_spool() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "execguard" / "spool"


def _detector(rules: list[str], no_builtin: bool, policy_file: Path | None, min_severity: str) -> Detector:
    """Rules and policy, loaded; RuleError or PolicyError when either is bad (SIGHUP keeps the last good one)."""
    from .live.runner import Detector

    loaded = load_rules(rules, builtin=not no_builtin)
    if not loaded:
        raise RuleError("rules", "no rules to run")
    policy = PolicyFilter(load_policy(policy_file), min_severity) if policy_file is not None else None
    # a policy re-rates before the severity floor, so the engine must not apply the floor first
    engine = Engine(loaded, min_severity="info" if policy else min_severity)
    return Detector(engine, policy, severity_rank(min_severity))


def _problem(exc: Exception) -> str:
    if isinstance(exc, PolicyError):
        return "; ".join(exc.lines())
    return str(exc)


def _sink(output: WatchOutput, stream: Any) -> Sink:
    if output is WatchOutput.jsonl:
        from .sinks.jsonl import JsonlSink

        return JsonlSink(stream)
    if output is WatchOutput.ocsf:
        from .sinks.ocsf import OcsfSink

        return OcsfSink(stream)
    from .sinks.table import LiveSink

    console = Console(file=stream)
    return LiveSink(console, plain=not console.is_terminal)


def watch_command(
    audit_webhook: Annotated[
        str | None, typer.Option("--audit-webhook", help="Receive kube-apiserver audit webhook batches on HOST:PORT.")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Server certificate (PEM) for the webhook.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Server private key (PEM) for the webhook.")] = None,
    client_ca: Annotated[Path | None, typer.Option("--client-ca", help="Require client certificates signed by this CA (mTLS).")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Require this bearer token (file holds it) on POSTs.")] = None,
    no_tls: Annotated[bool, typer.Option("--no-tls", help="Plain HTTP; only on a loopback address unless --insecure-listen.")] = False,
    insecure_listen: Annotated[bool, typer.Option("--insecure-listen", help="Allow --no-tls on a non-loopback address.")] = False,
    spool: Annotated[Path | None, typer.Option("--spool", help="Spool directory (default: $XDG_STATE_HOME/execguard/spool).")] = None,
    spool_max: Annotated[int, typer.Option("--spool-max-mb", min=1, help="Spool size limit; past it the webhook answers 429.")] = 1024,
    max_body: Annotated[int, typer.Option("--max-body-mb", min=1, help="Largest request body accepted (413 past it).")] = 32,
    policy_file: Annotated[Path | None, typer.Option("--policy", help="Allow, suppress or re-rate alerts (docs/policy.md).")] = None,
    rules: Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules: a directory or file (repeatable).")] = None,
    no_builtin: Annotated[bool, typer.Option("--no-builtin", help="Use only the rules given with --rules.")] = False,
    output: Annotated[WatchOutput, typer.Option("--output", "-o", help="table, jsonl or ocsf.")] = WatchOutput.table,
    out: Annotated[Path | None, typer.Option("--out", help="Append alerts to this file instead of stdout.")] = None,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="Report alerts at or above this level.", callback=severity_option)
    ] = "info",
) -> None:
    """Watch live inputs and report T1609 container administration commands as they happen."""
    from .live.inputs import supervise
    from .live.metrics import Metrics
    from .live.runner import OutFile, Runner
    from .live.spool import Spool, SpoolError
    from .live.webhook import Receiver, SpoolInput, is_loopback, listen_address, serve, tls_context

    if audit_webhook is None:
        fail("give an input: --audit-webhook HOST:PORT")
    try:
        host, port = listen_address(audit_webhook)
    except ValueError as exc:
        fail(f"--audit-webhook {exc}")
    if no_tls:
        if tls_cert or tls_key or client_ca:
            fail("--no-tls with --tls-cert/--tls-key/--client-ca: choose one")
        if not is_loopback(host) and not insecure_listen:
            fail(f"--no-tls on {host}, not a loopback address: audit events would cross the network in clear (add --insecure-listen)")
    elif tls_cert is None or tls_key is None:
        fail("the webhook needs --tls-cert and --tls-key (or --no-tls on loopback)")
    token = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{token_file}: {getattr(exc, 'strerror', None) or exc}")
        if not token:
            fail(f"{token_file}: empty token file")
    level = min_severity or "info"
    try:
        detector = _detector(rules or [], no_builtin, policy_file, level)
    except (RuleError, PolicyError) as exc:
        fail(_problem(exc))
    tls = None
    if not no_tls:
        assert tls_cert is not None and tls_key is not None
        try:
            tls = tls_context(tls_cert, tls_key, client_ca)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            fail(f"TLS files ({tls_cert}, {tls_key}{', ' + str(client_ca) if client_ca else ''}): {getattr(exc, 'strerror', None) or exc}")
    try:
        sp = Spool(spool or default_spool(), max_bytes=spool_max << 20)
    except SpoolError as exc:
        fail(exc)
    if sp.truncated:
        warning(f"spool {sp.dir}: cut a torn tail of {plural(sp.truncated, 'byte')} (a batch never acknowledged)")
    try:
        out_file = OutFile(out, sp.mark, text=output is WatchOutput.table) if out is not None else None
    except OSError as exc:
        fail(f"{out}: {exc.strerror or exc}")
    if out_file is not None and out_file.cut:
        note(f"{out}: cut {plural(out_file.cut, 'byte')} of alerts written after the last checkpoint; their events are replayed")
    metrics = Metrics(lambda: sp.size, lambda: sp.lag)
    sink = _sink(output, out_file.handle if out_file is not None else (sys.stdout if output is WatchOutput.table else sys.stdout.buffer))
    runner = Runner(detector, sink, metrics, out_file, warning, sp.mark)
    # the --out size now goes with the checkpoint at once: a crash before the first batch is
    # committed must still cut that batch's alerts from --out before it is replayed
    sp.commit(sp.checkpoint, runner.mark)
    try:
        receiver = Receiver((host, port), sp, metrics, tls, token, max_body=max_body << 20, ready=lambda: not runner.stop.is_set())
    except OSError as exc:
        fail(f"--audit-webhook {audit_webhook}: {exc.strerror or exc}")

    stopping = threading.Event()
    reload = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    spool_input = SpoolInput(sp, metrics)
    supervise(spool_input, runner.queue, runner.stop, warning)
    serve(receiver)
    bound_host, bound_port = str(receiver.server_address[0]), int(receiver.server_address[1])
    scheme = "http" if tls is None else "https"
    note(f"watch: audit webhook on {scheme}://{bound_host}:{bound_port} (spool {sp.dir}, {plural(sp.lag, 'byte')} to replay)")
    while not stopping.is_set():
        runner.step(0.2)
        if reload.is_set():
            reload.clear()
            try:
                runner.detector = _detector(rules or [], no_builtin, policy_file, level)
                metrics.reloads.labels(result="ok").inc()
                note("watch: rules and policy reloaded")
            except (RuleError, PolicyError, OSError) as exc:
                metrics.reloads.labels(result="failed").inc()
                error(f"reload failed, keeping the rules and policy in use: {_problem(exc)}")
    # drain: refuse new batches, finish the ones being received, alert on everything spooled
    receiver.draining = True
    receiver.shutdown()
    receiver.wait_idle(DRAIN_SECONDS)
    drained = runner.drain(sp.empty, DRAIN_SECONDS)
    runner.stop.set()
    receiver.server_close()
    sink.close()
    if out_file is not None:
        out_file.handle.close()
    sp.close()
    by_sev = ", ".join(f"{runner.counts[s]} {s}" for s in reversed(SEVERITIES) if runner.counts[s]) or "none"
    note(f"watch: stopped; {plural(runner.events, 'event')}, alerts: {by_sev}"
         + ("" if drained else f"; {plural(sp.lag, 'byte')} left in the spool for the next start"))  # fmt: skip
