"""`execguard hunt`: options in, pipeline.run out. The work is in pipeline/; this module only wires and prints.

No ``from __future__ import annotations`` here: typer reads the command's annotations, and as strings each was
compiled and evaluated at every start-up (~140 evals); as objects they are built once, when the module loads.
"""

import sys
from collections import Counter
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from .. import __version__
from ..model import severity_rank
from ..pipeline.order import SORTS
from ..sources import FORMATS
from .options import JoinSkew, JoinWindow, MinSeverity, NoBuiltin, Rules, Sinks, Store, severity_option, when
from .util import LazyConsole, Program, check_output, error, escape, fail, note, one_line, os_error_line, plural, silence_stdout

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..policy import PolicyFilter
    from ..sinks import Sink

err: Any = LazyConsole(stderr=True)
WARN_LIMIT_PER_FILE = 20


class Output(str, Enum):
    table = "table"
    jsonl = "jsonl"
    ocsf = "ocsf"
    html = "html"


def _format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(FORMATS)}")
    return value


def sample_dir() -> Path:
    with resources.as_file(resources.files("execguard") / "samples") as p:
        return Path(p)


class Warner:
    """Warnings on stderr naming file and line; a flood from one file is summarised."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.per_file: Counter[str] = Counter()

    def __call__(self, file: str, line: int | None, message: str) -> None:
        self.per_file[file] += 1
        if self.quiet or self.per_file[file] > WARN_LIMIT_PER_FILE:
            return
        where = f"{file}:{line}" if line else file
        err.print(f"[yellow]warning[/yellow]: {escape(one_line(f'{where}: {message}'))}", highlight=False, soft_wrap=True)

    def close(self) -> None:
        for file, n in self.per_file.items():
            if n > WARN_LIMIT_PER_FILE and not self.quiet:
                more = plural(n - WARN_LIMIT_PER_FILE, "more warning")
                err.print(f"[yellow]warning[/yellow]: {escape(one_line(file))}: {more} not shown", highlight=False, soft_wrap=True)


def _sort(value: str | None) -> str | None:
    if value is not None and value not in SORTS:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(SORTS)}")
    return value


def hunt(
    paths: Annotated[list[str] | None, typer.Argument(help="Files, directories (recursive), .gz, or - for stdin.")] = None,
    fmt: Annotated[str, typer.Option("--format", help=f"Input format: {', '.join(FORMATS)}.", callback=_format)] = "auto",
    rules: Rules = None,
    no_builtin: NoBuiltin = False,
    min_severity: MinSeverity = "info",
    output: Annotated[
        Output, typer.Option("--output", "-o", help="table, jsonl, ocsf or html (a self-contained report, docs/report.md).")
    ] = Output.table,
    out: Annotated[Path | None, typer.Option("--out", help="Write alerts here instead of stdout.")] = None,
    fail_on: Annotated[
        str | None, typer.Option("--fail-on", help="Exit 1 when an alert at or above this level is found.", callback=severity_option)
    ] = None,
    samples: Annotated[bool, typer.Option("--samples", help="Hunt the sample data bundled with execguard.")] = False,
    no_prefilter: Annotated[
        bool, typer.Option("--no-prefilter", help="Parse every line, even those no rule can match.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No warnings or summary on stderr.")] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, help="Worker processes for large inputs; 0 = one per idle usable CPU, 1 = no workers.")
    ] = 0,
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Allow, suppress or re-rate alerts by rule and scope (docs/policy.md).")
    ] = None,
    show_suppressed: Annotated[
        bool, typer.Option("--show-suppressed", help="Also report alerts the policy suppresses, marked with the entry and reason.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only alerts at or after this time: RFC 3339 or an age (30m, 2h, 1d).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only alerts at or before this time: RFC 3339 or an age (30m, 2h, 1d).")
    ] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", help="Only this namespace; a glob, repeatable.")] = None,
    pod: Annotated[list[str] | None, typer.Option("--pod", help="Only this pod; a glob, repeatable.")] = None,
    user: Annotated[
        list[str] | None, typer.Option("--user", help="Only this user (or impersonated user); a glob, repeatable.")
    ] = None,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Only alerts where this rule id fired; a glob, repeatable.")
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="time (default), severity or input. Sorting, and folding one Docker exec seen in docker events and "
            "the dockerd log into one alert, happen only when every input is a regular file or directory: with stdin "
            "or a pipe, alerts are printed as they arrive, in input order.",
            callback=_sort,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Table: show at most N alerts, the most severe; 0 = all.")] = 2000,
    top: Annotated[int, typer.Option("--top", min=0, help="Closing summary: the N rules and actors with most alerts; 0 = none.")] = 5,
    store: Store = None,
    sink_specs: Sinks = None,
    no_join: Annotated[
        bool, typer.Option("--no-join", help="Do not join exec records to node processes (docs/node.md).")
    ] = False,
    join_window: JoinWindow = 10.0,
    join_skew: JoinSkew = 3.0,
) -> None:
    """Read audit and daemon logs and report T1609 container administration commands."""
    if Program.running:  # the process ends with this hunt (pipeline/collector.py)
        from ..pipeline.collector import ending

        ending()
    from .. import sinks
    from ..engine.join import IDS as JOIN_IDS
    from ..engine.match import Engine
    from ..engine.rule import RuleError
    from ..pipeline import prefilter
    from ..pipeline.filters import AlertFilter
    from ..pipeline.join import JoinOptions
    from ..pipeline.rules import load
    from ..pipeline.run import Hunt, idle_probe, start_workers, usable_jobs
    from ..pipeline.stages import sortable
    from ..sinks.summary import run_line
    from ..sources.reader import InputError, Reader

    inputs = list(paths or [])
    if samples:
        # the data files only: NOTICE.md documents them
        inputs.extend(str(p) for p in sorted(sample_dir().iterdir()) if p.suffix != ".md")
    if not inputs:
        fail("give at least one PATH, - for stdin, or --samples")
    check_output(out)
    if output is Output.html:
        _check_report()
    probe = idle_probe(inputs) if jobs == 0 else None  # reads -j 0 may need, taken while the rules load
    try:
        loaded = load(rules or [], builtin=not no_builtin)
    except RuleError as exc:
        fail(exc)
    if not loaded:
        fail("no rules to run")
    extra = _extra_sinks(store, sink_specs or [])
    if "" in inputs:  # Path("") is the current directory
        fail("an empty PATH")
    # a missing path is warned about by the reader, the others are hunted, and the exit status is 2

    policy = _policy(policy_file, min_severity or "info", show_suppressed)
    # a policy re-rates before the severity floor, so the engine must not apply the floor first
    engine = Engine(loaded, min_severity="info" if policy else min_severity or "info")
    engine.join = not no_join  # before the prefilter and the workers: the join reads events no rule hits
    keep = AlertFilter(when(since), when(until), namespace or [], pod or [], user or [], rule or [])
    streaming = not sortable(inputs)
    if streaming and sort and not quiet:
        err.print(f"note: a stream is among the inputs: alerts are printed as they arrive (--sort {sort} not applied)")
    warner = Warner(quiet)
    if policy is not None:
        _policy_warnings(policy, [r.rule_id for r in loaded] + ([] if no_join else list(JOIN_IDS)), warner)
    reader = Reader(fmt=fmt, literals=prefilter.literals(engine, enabled=not no_prefilter), warn=warner)
    asked = jobs
    jobs, cap = usable_jobs(asked, probe)
    if cap is not None and not quiet:
        note(f"-j {asked} capped at {plural(cap, 'usable CPU')}")
    workers, files = start_workers(reader, engine, inputs, jobs, idle=asked == 0, probe=probe)

    # one handle on --out: bytes for jsonl/ocsf, text for the table
    text_out = open(out, "w", encoding="utf-8") if out and output is Output.table else None  # noqa: SIM115
    stream: Any = open(out, "wb") if out and text_out is None else sys.stdout.buffer  # noqa: SIM115
    console: Any = LazyConsole(file=text_out or sys.stdout)  # only the table sink writes through rich
    if output is Output.table:
        console = console._make()
    if output is Output.html:  # the report is above the sinks (it reads alert JSON), so not in their registry
        from ..report.sink import HtmlSink

        sink: Sink = HtmlSink(stream, inputs)
    else:
        sink = sinks.make(output.value, stream, console, limit, live=streaming)  # a pipe: alerts as records arrive
    join = None if no_join else JoinOptions(window=join_window, skew=join_skew)
    run = Hunt(engine, sink, keep, sort=None if streaming else sort or "time", policy=policy, top=top, extra=extra, join=join)
    unreadable = interrupted = write_failed = False
    progress = _progress() if not quiet and err.is_terminal else None

    try:
        if progress is not None:
            progress.start()
            task = progress.add_task("hunting", total=_total_size(inputs))
            reader.on_progress = lambda n: progress.advance(task, n)
            if workers is not None:
                workers.on_progress = reader.on_progress
        run.files(reader, files, workers)
    except InputError as exc:
        error(exc)
        unreadable = True
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: alerts so far are kept")
        interrupted = True
    except BrokenPipeError:
        # the reader of our output went away (| head): stop quietly, as other tools do
        silence_stdout()
        raise typer.Exit(0) from None
    except OSError as exc:
        # --out failed while being written (a full disk): the alerts already written stay written
        error(os_error_line(exc) if exc.filename else f"{out or 'stdout'}: {exc.strerror or exc}")
        write_failed = True
    finally:
        if workers is not None:
            workers.close()
        if progress is not None:
            progress.stop()
        write_failed = _close(sink, text_out, stream if out and text_out is None else None, out, write_failed)
        if extra is not None:
            extra.close()
    warner.close()
    Program.leave = Program.running  # every output is closed: the program may exit without Python's teardown
    st = reader.stats
    if not quiet:
        err.print(run_line(__version__, st, run.counts, run.dropped, run.merged), highlight=False, soft_wrap=True)
        joined = run.join.stats if run.join is not None else None
        if joined is not None:
            err.print(joined.line(), highlight=False, markup=False, soft_wrap=True)
        for line in run.summary.lines():
            err.print(line, highlight=False, markup=False, soft_wrap=True)
        if policy is not None:
            err.print(escape(policy.summary()), highlight=False, soft_wrap=True)
    if interrupted:
        raise typer.Exit(130)
    if unreadable or write_failed or st.unreadable or (st.files == 0 and st.bad):
        if not (unreadable or write_failed):  # their error line is out already; this failure gets its own
            error(f"{plural(st.unreadable, 'input')} unreadable" if st.unreadable else "no input could be read")
        raise typer.Exit(2)
    if fail_on is not None and run.worst >= severity_rank(fail_on):
        raise typer.Exit(1)


def _check_report() -> None:
    """-o html: plotly's script must be there before the hunt starts."""
    from ..report.render import AssetError, plotly_js

    try:
        plotly_js()
    except AssetError as exc:
        fail(exc)


def _extra_sinks(store: Path | None, specs: list[str]) -> Any:
    """--store and --sink: opened before any input is read, so a bad one fails at once (docs/sinks.md)."""
    wanted = ([f"store:{store}"] if store is not None else []) + specs
    if not wanted:
        return None
    from ..sinks.specs import Options, SpecError, open_sinks  # sqlite3, sockets: only when asked for
    from ..sinks.store import StoreError
    from .util import warning

    try:
        return open_sinks(wanted, Options(drain=30.0, warn=warning))
    except (SpecError, StoreError) as exc:
        fail(exc)


def _policy(path: Path | None, min_severity: str, show_suppressed: bool) -> "PolicyFilter | None":
    if path is None:
        return None
    from ..policy import PolicyError, PolicyFilter, load_policy

    try:
        return PolicyFilter(load_policy(path), min_severity, show_suppressed)
    except PolicyError as exc:
        for line in exc.lines():
            err.print(f"[red]error[/red]: {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _policy_warnings(policy: "PolicyFilter", rule_ids: list[str], warn: Warner) -> None:
    from ..policy import unknown_rules

    file = policy.policy.file  # Warner prints names and globs from the file as written, not as markup
    for entry in policy.expired():
        warn(file, entry.line, f"entry {entry.name} expired {entry.expires}; it no longer applies")
    for entry, glob in unknown_rules(policy.policy, rule_ids):
        warn(file, entry.line, f"entry {entry.name}: rules {glob!r} matches none of the loaded rules")


def _close(sink: "Sink", text_out: IO[str] | None, stream: IO[bytes] | None, out: Path | None, failed: bool) -> bool:
    """Flush and close the outputs; True when writing failed, now (a full disk shows up at the last flush) or before."""
    for close in (sink.close, *(f.close for f in (text_out, stream) if f is not None)):
        try:
            close()
        except BrokenPipeError:
            silence_stdout()
        except OSError as exc:
            if not failed:
                error(f"{out or 'stdout'}: {exc.strerror or exc}")
            failed = True
    return failed


def _total_size(inputs: list[str]) -> int | None:
    total = 0
    for p in inputs:
        path = Path(p)
        if p == "-":
            return None
        if path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        elif path.exists():
            total += path.stat().st_size
    return total


def _progress() -> "Progress":
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    return Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, transient=True
    )
