"""``execguard watch``: live T1609 detection from the audit webhook, Docker daemons and tailed logs (docs/watch.md)."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..engine.load import load_rules
from ..engine.match import Engine
from ..engine.rule import RuleError
from ..model import SEVERITIES, severity_rank
from ..policy import PolicyError, PolicyFilter, load_policy
from ..sources import FORMATS
from .options import JoinSkew, JoinWindow, MinSeverity, NoBuiltin, Rules, Sinks, Store
from .util import Group, check_output, error, fail, note, plural, silence_stdout, warning
from .watch_listen import check_listen, read_token, tls_for_server
from .watch_manifests import manifests_command

if TYPE_CHECKING:
    from ..live.inputs import Input
    from ..live.runner import Detector, Sink

DRAIN_SECONDS = 30.0
LATE = 30.0  # seconds a record may arrive after the exec: kube-apiserver's --audit-webhook-batch-max-wait default
PROMPT = 2.0


class WatchOutput(str, Enum):
    table = "table"
    jsonl = "jsonl"
    ocsf = "ocsf"


def default_spool() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "execguard" / "spool"


@dataclass(frozen=True)
class LiveJoin:
    window: float
    skew: float
    lag: float  # seconds a record may arrive after the exec it caused
    covered: frozenset[str]  # 'docker': a Docker input delivers every exec record


def _detector(rules: list[str], no_builtin: bool, policy_file: Path | None, min_severity: str, lj: LiveJoin) -> Detector:
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
    # the join, with nothing held back (docs/node.md): identities on processes whose record came first, and
    # bypass verdicts that wait beside the alerts already written
    expected = policy.matcher.expected if policy is not None else None
    join = Joiner(lj.window, lj.skew, expected=expected, covered=lj.covered, hold=False, verdicts=True, verdict_lag=lj.lag)
    return Detector(engine, policy, severity_rank(min_severity), join)


def _problem(exc: Exception) -> str:
    if isinstance(exc, PolicyError):
        return "; ".join(exc.lines())
    return str(exc)


def _warn_line(file: str, line: int | None, message: str) -> None:
    warning(f"{file}:{line}: {message}" if line else f"{file}: {message}")


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
    ctx: typer.Context,
    audit_webhook: Annotated[
        list[str] | None,
        typer.Option("--audit-webhook", metavar="HOST:PORT", help="Receive kube-apiserver audit webhook batches here; repeatable."),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Server certificate (PEM) for the webhook and --metrics.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Server private key (PEM) for the webhook and --metrics.")] = None,
    client_ca: Annotated[Path | None, typer.Option("--client-ca", help="Require client certificates signed by this CA (mTLS).")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Require this bearer token (file holds it) on POSTs.")] = None,
    no_tls: Annotated[bool, typer.Option("--no-tls", help="Plain HTTP; only on a loopback address unless --insecure-listen.")] = False,
    insecure_listen: Annotated[bool, typer.Option("--insecure-listen", help="Allow --no-tls on a non-loopback address.")] = False,
    metrics_addr: Annotated[
        list[str] | None,
        typer.Option("--metrics", metavar="HOST:PORT", help="Serve /metrics /healthz /readyz here (TLS as the webhook); repeatable."),
    ] = None,
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
    rules: Rules = None,
    no_builtin: NoBuiltin = False,
    output: Annotated[WatchOutput, typer.Option("--output", "-o", help="table, jsonl or ocsf.")] = WatchOutput.table,
    out: Annotated[Path | None, typer.Option("--out", help="Append alerts to this file instead of stdout.")] = None,
    min_severity: MinSeverity = "info",
    store: Store = None,
    sink_specs: Sinks = None,
    engine_nice: Annotated[
        int,
        typer.Option(
            "--engine-nice", min=0, max=19, help="With --audit-webhook: lower the engine's CPU priority by N so acks stay fast; 0 = off."
        ),
    ] = 10,
    join_window: JoinWindow = 10.0,
    join_skew: JoinSkew = 3.0,
    throttle: Annotated[
        float,
        typer.Option(
            "--throttle", min=0, metavar="SECONDS", help="--sink: one alert per (rule, actor, target) per window, then a count; 0 = off."
        ),
    ] = 0.0,
) -> None:
    """Watch live inputs and report T1609 container administration commands as they happen.

    `execguard watch manifests` prints the Kubernetes objects that run the audit webhook receiver."""
    if ctx.invoked_subcommand is not None:
        return  # `watch manifests`
    from ..audit.gather import docker_live
    from ..audit.gather.live import LiveError
    from ..live.checkpoint import StateError, StateFile
    from ..live.containerd import ContainerdInput, node_name, socket_path
    from ..live.docker import DockerInput, DockerStream
    from ..live.handoff import Shared, SpoolReader
    from ..live.inputs import EventStream
    from ..live.metrics import Metrics
    from ..live.receiver import ReceiverConfig, ReceiverError, ReceiverProcess
    from ..live.runner import OutFile, Runner
    from ..live.service import Service
    from ..live.spool import Position, SpoolError
    from ..live.tail import TailInput
    from ..live.verdicts import resume as resume_verdicts
    from ..live.webhook import Receiver, SpoolInput

    webhooks = audit_webhook or []
    if not (webhooks or docker or tail or containerd):
        fail("give an input: --audit-webhook HOST:PORT, --docker URL, --containerd URL or --tail PATH")
    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    listens = [check_listen("--audit-webhook", a, tls_cert, tls_key, client_ca, no_tls, insecure_listen) for a in webhooks]
    metric_listens = [check_listen("--metrics", a, tls_cert, tls_key, client_ca, no_tls, insecure_listen) for a in metrics_addr or []]
    token = read_token(token_file)
    check_output(out)
    level = min_severity or "info"
    # a record may come late by the audit webhook's batch wait or a tailed file's; Docker's and containerd's streams are prompt
    lj = LiveJoin(join_window, join_skew, LATE if (webhooks or tail) else PROMPT, frozenset({"docker"}) if docker else frozenset())
    try:
        detector = _detector(rules or [], no_builtin, policy_file, level, lj)
    except (RuleError, PolicyError) as exc:
        fail(_problem(exc))
    streams: list[Input] = []
    dockers: list[DockerInput] = []
    for url in docker or []:
        try:
            docker_tls = docker_live.client_tls(tls, tlsverify, tlscacert, tlscert, tlskey) if url.startswith("tcp://") else None
            dockers.append(DockerInput(url, docker_tls, warn=warning))
            streams.append(DockerStream(dockers[-1]))
        except (LiveError, ValueError, OSError) as exc:  # a bad URL, a missing certificate file
            fail(f"--docker {url}: {exc}")
    for address in containerd or []:
        try:
            socket_path(address)
        except ValueError as exc:
            fail(f"--containerd {exc}")
    if containerd and not (proc_root / "stat").is_file():
        fail(f"--proc {proc_root}: not a proc file system (no {proc_root / 'stat'})")
    server_tls = tls_for_server(tls_cert, tls_key, client_ca) if (webhooks or metric_listens) and not no_tls else None
    shared: Shared | None = None
    reader: SpoolReader | None = None
    spool_dir = spool or default_spool()
    if webhooks:
        shared = Shared(multiprocessing.get_context("spawn"))
        try:
            reader = SpoolReader(spool_dir, shared)
        except SpoolError as exc:
            fail(exc)
    where_state = state_path or (spool_dir / "state.json" if reader is not None else None)
    state = StateFile(where_state) if where_state is not None else None
    if state is not None:
        try:
            state.load()
        except StateError as exc:
            fail(exc)
        where = state.positions.get(SpoolInput.name)
        if reader is not None and isinstance(where, dict):
            # the state file is saved before the spool's own checkpoint: it may be one batch ahead
            pos = Position(int(where.get("segment", 0)), int(where.get("offset", 0)))
            if pos > reader.checkpoint:
                reader.commit(pos)
                reader.rewind()
    try:
        out_file = OutFile(out, state.mark if state else {}, text=output is WatchOutput.table) if out is not None else None
    except OSError as exc:
        fail(f"{out}: {exc.strerror or exc}")
    if out_file is not None and out_file.cut:
        note(f"{out}: cut {plural(out_file.cut, 'byte')} of alerts written after the last checkpoint; their events are read again")
    metrics = Metrics(lambda: reader.size, lambda: reader.lag) if reader is not None else Metrics()
    for inp in dockers:
        # with a state file, from where the last run left off: what the daemon did meanwhile is replayed
        inp.resume(state.positions.get(inp.name()) if state is not None else None)
        inp.gap = metrics.gap_seconds.labels(input=inp.name()).inc
    primary = _sink(output, out_file.handle if out_file is not None else (sys.stdout if output is WatchOutput.table else sys.stdout.buffer))
    sink, flush = _sinks(primary, store, sink_specs or [], throttle, spool_dir if reader is not None else where_state)
    runner = Runner(detector, sink, metrics, out_file, warning, state=state, flush=flush)
    if state is not None and state.join:
        resumed = resume_verdicts(detector.join, state.join, str(state.path), warning)
        note(f"watch: {plural(resumed, 'pending bypass verdict')} from {state.path} wait again for their records")
    if state is not None:
        # the --out size goes with the positions at once: a crash before the first batch is saved
        # must still cut that batch's alerts from --out before it is read again
        try:
            state.save(runner.mark)
        except OSError as exc:
            fail(f"{state.path}: {exc.strerror or exc}")
    ports: list[Receiver] = []
    for address, (host, port) in zip(metrics_addr or [], metric_listens, strict=True):
        try:
            ports.append(Receiver((host, port), None, metrics, server_tls, None, ready=lambda: not runner.stop.is_set()))
        except OSError as exc:
            fail(f"--metrics {address}: {exc.strerror or exc}")
    receiver: ReceiverProcess | None = None
    if reader is not None and shared is not None:
        tls_files = (str(tls_cert), str(tls_key), str(client_ca) if client_ca else None) if not no_tls else None
        config = ReceiverConfig(tuple(listens), str(spool_dir), spool_max << 20, max_body << 20, tls_files, token)
        receiver = ReceiverProcess(config, shared, warning)
        try:
            bound = receiver.start()
        except ReceiverError as exc:
            fail(f"--audit-webhook: {exc}")
        if receiver.truncated:
            warning(f"spool {spool_dir}: cut a torn tail of {plural(receiver.truncated, 'byte')} (a batch never acknowledged)")
        scheme = "http" if no_tls else "https"
        where_at = ", ".join(f"{scheme}://{h}:{p}" for h, p in bound)
        note(f"watch: audit webhook on {where_at} (pid {receiver.pid}; spool {spool_dir}, {plural(reader.lag, 'byte')} to replay)")
        streams.insert(0, SpoolInput(reader, metrics))
    for server in ports:
        bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
        note(f"watch: metrics on {'http' if no_tls else 'https'}://{bound_host}:{bound_port}/metrics")
    for address in containerd or []:
        streams.append(EventStream(ContainerdInput(address, warn=warning, metrics=metrics, node=node_name(), proc_root=proc_root)))
    if tail:
        position = state.positions.get(TailInput.name) if state is not None else None
        streams.append(TailInput(tail, position, from_start=tail_from_start, fmt=fmt, warn=_warn_line))
    service = Service(
        runner, streams, lambda: _detector(rules or [], no_builtin, policy_file, level, lj), (RuleError, PolicyError, OSError), _problem,
        note, warning, error, receiver=receiver, reader=reader, shared=shared, metrics_ports=ports, drain_seconds=DRAIN_SECONDS,
        engine_nice=engine_nice,
    )  # fmt: skip
    drained = service.run()
    # verdicts whose window has passed are written; the rest wait in the state file for the next start, or are dropped
    kept = runner.finish_verdicts()
    if kept and state is not None:
        note(f"watch: {plural(kept, 'pending bypass verdict')} kept in {state.path} for the next start")
    elif kept:
        note(f"watch: {plural(kept, 'pending bypass verdict')} dropped (their join window had not passed; no --state to keep them)")
    sink.close()
    if out_file is not None:
        out_file.handle.close()
    if runner.broken:
        silence_stdout()
    by_sev = ", ".join(f"{runner.counts[s]} {s}" for s in reversed(SEVERITIES) if runner.counts[s]) or "none"
    left = "" if drained or reader is None else f"; {plural(reader.lag, 'byte')} left in the spool for the next start"
    note(f"watch: stopped; {plural(runner.events, 'event')}, alerts: {by_sev}{left}")


def _sinks(
    primary: Sink, store: Path | None, specs: list[str], throttle: float, near: Path | None
) -> tuple[Sink, Callable[[], None] | None]:
    """The alert output plus --store and --sink (throttled when asked), and what to flush before a batch is acked."""
    from ..sinks.specs import Options, SpecError, Tee, open_sinks
    from ..sinks.store import StoreError, StoreSink
    from ..sinks.throttle import ThrottleSink

    # webhook and syslog alerts that cannot be delivered wait in a spill file beside the spool or state file
    spill = near if near is not None and near.is_dir() else near.parent if near is not None else None
    options = Options(spill_dir=spill / "spill" if spill is not None else None, drain=10.0, warn=warning)
    try:
        kept = open_sinks([f"store:{store}"] if store is not None else [], options)
        paging = open_sinks(specs, options) if specs else None
    except (SpecError, StoreError) as exc:
        fail(exc)
    stores = [s for s in (*kept.sinks, *(paging.sinks if paging else [])) if isinstance(s, StoreSink)]
    extra: list[Sink] = list(kept.sinks)
    names = list(kept.names)
    if paging is not None:
        # the record (--out, --store) keeps every alert; only what pages someone is throttled
        extra.append(ThrottleSink(paging, throttle, timer=True) if throttle > 0 else paging)
        names.append("--sink")
    if not extra:
        return primary, None

    def flush() -> None:
        for s in stores:
            try:
                s.flush()  # committed before the batch is acked: a crash after the ack loses no stored alert
            except StoreError as exc:  # locked or full: the store keeps the rows for its next try; detection goes on
                warning(f"{exc}; the alerts stay queued for the store")

    return Tee([primary, *extra], warning, names=["output", *names], primary=True), flush if stores else None


# a group so that `watch manifests` can sit beside the command itself; watch's own options come first
watch_app = typer.Typer(cls=Group, rich_markup_mode=None, add_completion=False)
watch_app.callback(invoke_without_command=True)(watch_command)
watch_app.command("manifests")(manifests_command)
