"""``execguard watch``: live T1609 detection from the audit webhook, Docker daemons and tailed logs (docs/watch.md)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..engine.load import load_rules
from ..engine.match import Engine
from ..engine.rule import RuleError
from ..model import SEVERITIES, severity_rank
from ..policy import PolicyError, PolicyFilter, load_policy
from ..sources import FORMATS
from .options import severity_option
from .util import check_output, error, fail, note, plural, silence_stdout, warning

if TYPE_CHECKING:
    from ..live.inputs import Input
    from ..live.runner import Detector, Runner, Sink
    from ..live.spool import Spool
    from ..live.webhook import Receiver

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
    from ..engine.join import Joiner
    from ..live.runner import Detector

    loaded = load_rules(rules, builtin=not no_builtin)
    if not loaded:
        raise RuleError("rules", "no rules to run")
    policy = PolicyFilter(load_policy(policy_file), min_severity) if policy_file is not None else None
    # a policy re-rates before the severity floor, so the engine must not apply the floor first
    engine = Engine(loaded, min_severity="info" if policy else min_severity)
    engine.join = True  # tailed files: the prefilter keeps the lines the join reads
    # the join, with nothing held back (docs/node.md): identities on processes whose record came first
    join = Joiner(hold=False, expected=policy.matcher.expected if policy is not None else None)
    return Detector(engine, policy, severity_rank(min_severity), join)


def _problem(exc: Exception) -> str:
    if isinstance(exc, PolicyError):
        return "; ".join(exc.lines())
    return str(exc)


def _warn_line(file: str, line: int | None, message: str) -> None:
    warning(f"{file}:{line}: {message}" if line else f"{file}: {message}")


def _token(token_file: Path | None) -> str | None:
    if token_file is None:
        return None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{token_file}: {getattr(exc, 'strerror', None) or exc}")
    if not token:
        fail(f"{token_file}: empty token file")
    return token


def _check_webhook(
    address: str, tls_cert: Path | None, tls_key: Path | None, client_ca: Path | None, no_tls: bool, insecure: bool
) -> tuple[str, int]:
    from ..live.webhook import is_loopback, listen_address

    try:
        host, port = listen_address(address)
    except ValueError as exc:
        fail(f"--audit-webhook {exc}")
    if no_tls:
        if tls_cert or tls_key or client_ca:
            fail("--no-tls with --tls-cert/--tls-key/--client-ca: choose one")
        if not is_loopback(host) and not insecure:
            fail(f"--no-tls on {host}, not a loopback address: audit events would cross the network in clear (add --insecure-listen)")
    elif tls_cert is None or tls_key is None:
        fail("the webhook needs --tls-cert and --tls-key (or --no-tls on loopback)")
    return host, port


def _sink(output: WatchOutput, stream: Any) -> Sink:
    if output is WatchOutput.jsonl:
        from ..sinks.jsonl import JsonlSink

        return JsonlSink(stream)
    if output is WatchOutput.ocsf:
        from ..sinks.ocsf import OcsfSink

        return OcsfSink(stream)
    from ..sinks.table import LiveSink

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
    docker: Annotated[
        list[str] | None,
        typer.Option("--docker", metavar="URL", help="Follow this Docker Engine API (unix://PATH, tcp://HOST:PORT); repeatable."),
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="--docker: use TLS (implied by --tlsverify; env DOCKER_TLS).")] = False,
    tlsverify: Annotated[
        bool | None, typer.Option("--tlsverify/--no-tlsverify", help="--docker: verify the daemon's certificate (env DOCKER_TLS_VERIFY).")
    ] = None,
    tlscacert: Annotated[str | None, typer.Option("--tlscacert", help="CA of the daemon certificate (DOCKER_CERT_PATH/ca.pem).")] = None,
    tlscert: Annotated[str | None, typer.Option("--tlscert", help="Client certificate (default DOCKER_CERT_PATH/cert.pem).")] = None,
    tlskey: Annotated[str | None, typer.Option("--tlskey", help="Client key (default DOCKER_CERT_PATH/key.pem).")] = None,
    containerd: Annotated[
        list[str] | None,
        typer.Option(
            "--containerd", metavar="URL", help="Follow this containerd's task events (unix:///run/containerd/containerd.sock); repeatable."
        ),
    ] = None,
    proc_root: Annotated[
        Path,
        typer.Option("--proc", help="--containerd: the host's /proc (default /proc, with hostPID; or a hostPath mount: /host/proc)."),
    ] = Path("/proc"),
    tail: Annotated[
        list[str] | None,
        typer.Option("--tail", metavar="PATH", help="Follow this log file like tail -F, in any format hunt reads; globs; repeatable."),
    ] = None,
    tail_from_start: Annotated[
        bool, typer.Option("--tail-from-start", help="Files already there at the first start are read from their start, not their end.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help=f"--tail input format: {', '.join(FORMATS)}.")] = "auto",
    state_path: Annotated[
        Path | None,
        typer.Option(
            "--state",
            "--tail-state",
            help="The process's checkpoint: --out size and every input's position (default with --audit-webhook: SPOOL/state.json).",
        ),
    ] = None,
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
    from ..audit.gather import docker_live
    from ..audit.gather.live import LiveError
    from ..live.checkpoint import StateError, StateFile
    from ..live.containerd import ContainerdInput, node_name, socket_path
    from ..live.docker import DockerInput
    from ..live.inputs import EventStream
    from ..live.metrics import Metrics
    from ..live.runner import OutFile, Runner
    from ..live.spool import Position, Spool, SpoolError
    from ..live.tail import TailInput
    from ..live.webhook import Receiver, SpoolInput, tls_context

    if not (audit_webhook or docker or tail or containerd):
        fail("give an input: --audit-webhook HOST:PORT, --docker URL, --containerd URL or --tail PATH")
    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    host, port = _check_webhook(audit_webhook, tls_cert, tls_key, client_ca, no_tls, insecure_listen) if audit_webhook else ("", 0)
    token = _token(token_file)
    check_output(out)
    level = min_severity or "info"
    try:
        detector = _detector(rules or [], no_builtin, policy_file, level)
    except (RuleError, PolicyError) as exc:
        fail(_problem(exc))
    streams: list[Input] = []
    for url in docker or []:
        try:
            docker_tls = docker_live.client_tls(tls, tlsverify, tlscacert, tlscert, tlskey) if url.startswith("tcp://") else None
            streams.append(EventStream(DockerInput(url, docker_tls, warn=warning)))
        except (LiveError, ValueError, OSError) as exc:  # a bad URL, a missing certificate file
            fail(f"--docker {url}: {exc}")
    for address in containerd or []:
        try:
            socket_path(address)
        except ValueError as exc:
            fail(f"--containerd {exc}")
    if containerd and not (proc_root / "stat").is_file():
        fail(f"--proc {proc_root}: not a proc file system (no {proc_root / 'stat'})")
    server_tls = None
    if audit_webhook and not no_tls:
        assert tls_cert is not None and tls_key is not None
        try:
            server_tls = tls_context(tls_cert, tls_key, client_ca)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            fail(f"TLS files ({tls_cert}, {tls_key}{', ' + str(client_ca) if client_ca else ''}): {getattr(exc, 'strerror', None) or exc}")
    sp: Spool | None = None
    if audit_webhook:
        try:
            sp = Spool(spool or default_spool(), max_bytes=spool_max << 20)
        except SpoolError as exc:
            fail(exc)
        if sp.truncated:
            warning(f"spool {sp.dir}: cut a torn tail of {plural(sp.truncated, 'byte')} (a batch never acknowledged)")
    where_state = state_path or (sp.dir / "state.json" if sp is not None else None)
    state = StateFile(where_state) if where_state is not None else None
    if state is not None:
        try:
            state.load()
        except StateError as exc:
            fail(exc)
        where = state.positions.get(SpoolInput.name)
        if sp is not None and isinstance(where, dict):
            # the state file is saved before the spool's own checkpoint: it may be one batch ahead
            pos = Position(int(where.get("segment", 0)), int(where.get("offset", 0)))
            if pos > sp.checkpoint:
                sp.commit(pos)
                sp.rewind()
    try:
        out_file = OutFile(out, state.mark if state else {}, text=output is WatchOutput.table) if out is not None else None
    except OSError as exc:
        fail(f"{out}: {exc.strerror or exc}")
    if out_file is not None and out_file.cut:
        note(f"{out}: cut {plural(out_file.cut, 'byte')} of alerts written after the last checkpoint; their events are read again")
    metrics = Metrics(lambda: sp.size, lambda: sp.lag) if sp is not None else Metrics()
    sink = _sink(output, out_file.handle if out_file is not None else (sys.stdout if output is WatchOutput.table else sys.stdout.buffer))
    runner = Runner(detector, sink, metrics, out_file, warning, state=state)
    if state is not None:
        # the --out size goes with the positions at once: a crash before the first batch is saved
        # must still cut that batch's alerts from --out before it is read again
        try:
            state.save(runner.mark)
        except OSError as exc:
            fail(f"{state.path}: {exc.strerror or exc}")
    receiver: Receiver | None = None
    if sp is not None:
        try:
            receiver = Receiver(
                (host, port), sp, metrics, server_tls, token, max_body=max_body << 20, ready=lambda: not runner.stop.is_set()
            )
        except OSError as exc:
            fail(f"--audit-webhook {audit_webhook}: {exc.strerror or exc}")
        streams.insert(0, SpoolInput(sp, metrics))
    for address in containerd or []:
        streams.append(EventStream(ContainerdInput(address, warn=warning, metrics=metrics, node=node_name(), proc_root=proc_root)))
    if tail:
        position = state.positions.get(TailInput.name) if state is not None else None
        streams.append(TailInput(tail, position, from_start=tail_from_start, fmt=fmt, warn=_warn_line))
    _run(runner, streams, receiver, sp, lambda: _detector(rules or [], no_builtin, policy_file, level))
    sink.close()
    if out_file is not None:
        out_file.handle.close()


def _run(runner: Runner, inputs: list[Input], receiver: Receiver | None, sp: Spool | None, reload_detector: Callable[[], Detector]) -> None:
    """Until SIGTERM or Ctrl-C: one thread per input, the engine in this one; then drain."""
    from ..live.inputs import supervise
    from ..live.webhook import serve

    stopping = threading.Event()
    reload = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    threads = [supervise(inp, runner.queue, runner.stop, warning) for inp in inputs]
    if receiver is not None and sp is not None:
        serve(receiver)
        bound_host, bound_port = str(receiver.server_address[0]), int(receiver.server_address[1])
        scheme = "http" if receiver.tls is None else "https"
        note(f"watch: audit webhook on {scheme}://{bound_host}:{bound_port} (spool {sp.dir}, {plural(sp.lag, 'byte')} to replay)")
    note("watch: " + ", ".join(inp.name for inp in inputs))
    while not stopping.is_set() and not runner.broken:
        runner.step(0.2)
        if reload.is_set():
            reload.clear()
            try:
                runner.detector = reload_detector()
                runner.metrics.reloads.labels(result="ok").inc()
                note("watch: rules and policy reloaded")
            except (RuleError, PolicyError, OSError) as exc:
                runner.metrics.reloads.labels(result="failed").inc()
                error(f"reload failed, keeping the rules and policy in use: {_problem(exc)}")
    # drain: refuse new batches, finish the ones being received, alert on everything queued and spooled
    if receiver is not None:
        receiver.draining = True
        receiver.shutdown()
        receiver.wait_idle(DRAIN_SECONDS)
    drained = runner.broken or runner.drain(sp.empty if sp is not None else lambda: True, DRAIN_SECONDS)
    runner.stop.set()
    for t in threads:
        t.join(5)  # the inputs close their files and sockets
    if receiver is not None:
        receiver.server_close()
    if sp is not None:
        sp.close()
    if runner.broken:
        silence_stdout()
    by_sev = ", ".join(f"{runner.counts[s]} {s}" for s in reversed(SEVERITIES) if runner.counts[s]) or "none"
    left = "" if drained or sp is None else f"; {plural(sp.lag, 'byte')} left in the spool for the next start"
    note(f"watch: stopped; {plural(runner.events, 'event')}, alerts: {by_sev}{left}")
