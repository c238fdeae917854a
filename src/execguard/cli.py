"""execguard command line: hunt (and, as they land, watch, audit, guard, simulate, emulate, rules)."""

from __future__ import annotations

import os
import sys
from collections import Counter
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import IO, Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from . import __version__, parallel
from .cliutil import Group, check_output, error, fail, note, one_line, os_error_line, plural, silence_stdout
from .engine.filters import AlertFilter, parse_when
from .engine.match import Engine
from .engine.order import SORTS
from .engine.pipeline import Pipeline, sortable
from .engine.sigma import RuleError, load_rules
from .model import SEVERITIES, Alert, severity_rank
from .options import severity_option
from .policy import PolicyError, PolicyFilter, load_policy, unknown_rules
from .report.summary import Summary
from .sources import FORMATS, literals_for
from .sources.reader import InputError, Reader

# help text is plain text: option help such as ADDR:PORT[/SERVICE] must not be read as rich markup
app = typer.Typer(
    cls=Group, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
    help="Find, audit and block T1609 container administration commands.",
)
err = Console(stderr=True)
WARN_LIMIT_PER_FILE = 20


class Output(str, Enum):
    table = "table"
    jsonl = "jsonl"
    ocsf = "ocsf"


class RulesOutput(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


class Sink(Protocol):
    def write(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


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


def _when(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _sort(value: str | None) -> str | None:
    if value is not None and value not in SORTS:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(SORTS)}")
    return value


def _sink(output: Output, out: IO[bytes], console: Console, limit: int = 2000, live: bool = False) -> Sink:
    if output is Output.jsonl:
        from .report.jsonl import JsonlSink

        return JsonlSink(out)
    if output is Output.ocsf:
        from .report.ocsf import OcsfSink

        return OcsfSink(out)
    from .report.table import LiveSink, TableSink

    # not a terminal: plain blocks, wrapped at spaces only if COLUMNS asks for a width
    plain = not console.is_terminal
    width = console.width if plain and os.environ.get("COLUMNS") else None
    if live:  # a pipe among the inputs: one block per alert as it is found
        return LiveSink(console, plain=plain, width=width)
    return TableSink(console, limit, plain=plain, width=width)


@app.command()
def hunt(
    paths: Annotated[list[str] | None, typer.Argument(help="Files, directories (recursive), .gz, or - for stdin.")] = None,
    fmt: Annotated[str, typer.Option("--format", help=f"Input format: {', '.join(FORMATS)}.", callback=_format)] = "auto",
    rules: Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules: a directory or file (repeatable).")] = None,
    no_builtin: Annotated[bool, typer.Option("--no-builtin", help="Use only the rules given with --rules.")] = False,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="Report alerts at or above this level.", callback=severity_option)
    ] = "info",
    output: Annotated[Output, typer.Option("--output", "-o", help="table, jsonl or ocsf.")] = Output.table,
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
        int, typer.Option("--jobs", "-j", min=0, help="Worker processes for large inputs; 0 = one per usable CPU, 1 = no workers.")
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
    store: Annotated[
        Path | None, typer.Option("--store", help="Also keep the alerts in this SQLite store, for execguard alerts (docs/sinks.md).")
    ] = None,
    sink_specs: Annotated[
        list[str] | None,
        typer.Option("--sink", help="Also send the alerts to store:PATH, file:PATH, webhook:URL, syslog+udp|tcp://HOST:PORT (repeatable)."),
    ] = None,
) -> None:
    """Read audit and daemon logs and report T1609 container administration commands."""
    inputs = list(paths or [])
    if samples:
        # the data files only: NOTICE.md documents them
        inputs.extend(str(p) for p in sorted(sample_dir().iterdir()) if p.suffix != ".md")
    if not inputs:
        fail("give at least one PATH, - for stdin, or --samples")
    check_output(out)
    try:
        loaded = load_rules(rules or [], builtin=not no_builtin)
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
    keep = AlertFilter(_when(since), _when(until), namespace or [], pod or [], user or [], rule or [])
    streaming = not sortable(inputs)
    if streaming and sort and not quiet:
        err.print(f"note: a stream is among the inputs: alerts are printed as they arrive (--sort {sort} not applied)")
    pipe = Pipeline(keep, sort=None if streaming else sort or "time")
    summary = Summary(top)
    warner = Warner(quiet)
    if policy is not None:
        _policy_warnings(policy, [r.rule_id for r in loaded], warner)
    literals = None if no_prefilter else literals_for(engine.actions())
    reader = Reader(fmt=fmt, literals=literals, warn=warner)
    jobs = _jobs(jobs, quiet)
    units = parallel.plan(reader, inputs) if jobs > 1 else None
    workers = parallel.ParallelHunt(reader, engine, units, jobs) if units and parallel.worth_it(units, jobs) else None
    files = inputs if units is None else list(dict.fromkeys(u.path for u in units))

    # one handle on --out: bytes for jsonl/ocsf, text for the table
    text_out = open(out, "w", encoding="utf-8") if out and output is Output.table else None  # noqa: SIM115
    stream: Any = open(out, "wb") if out and text_out is None else sys.stdout.buffer  # noqa: SIM115
    console = Console(file=text_out or sys.stdout)
    sink = _sink(output, stream, console, limit, live=streaming)  # a pipe: alerts as records arrive
    counts: Counter[str] = Counter()
    worst = -1
    unreadable = interrupted = write_failed = False
    progress = _progress() if err.is_terminal and not quiet else None

    def emit(alert: Alert) -> None:
        nonlocal worst
        if alert.suppressed is None:  # suppressed ones shown with --show-suppressed neither count nor fail
            counts[alert.severity] += 1
            worst = max(worst, severity_rank(alert.severity))
            summary.add(alert)
        sink.write(alert)
        if extra is not None and alert.suppressed is None:  # a store keeps what the policy lets through
            extra.write(alert)

    try:
        if progress is not None:
            progress.start()
            task = progress.add_task("hunting", total=_total_size(inputs))
            reader.on_progress = lambda n: progress.advance(task, n)
            if workers is not None:
                workers.on_progress = reader.on_progress
        alerts = workers.alerts() if workers is not None else engine.run(reader.read(files))
        if policy is not None:
            alerts = policy.filter(alerts)  # in this process, after correlation: -j gives the same result
        pipe.run(alerts, emit)
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
    st = reader.stats
    if not quiet:
        by_sev = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES) if counts[s]) or "none"
        formats = ", ".join(f"{k}={v}" for k, v in sorted(st.by_format.items())) or "-"
        err.print(
            f"execguard {__version__}: {plural(st.files, 'file')}, {st.bytes / 1e6:.1f} MB, {plural(st.lines, 'line')} read, "
            f"{plural(st.parsed, 'record')} parsed, {plural(st.events, 'event')} ({formats}), {plural(st.bad, 'bad record')} skipped, "
            f"{st.unknown} of unknown format"
            + (f", {st.repaired} with invalid UTF-8 repaired" if st.repaired else "")
            + (f", {plural(st.unreadable, 'input')} unreadable" if st.unreadable else "")
            + _unknown_files(st.unknown_files)
            + (f", {plural(st.skipped, 'special file')} skipped" if st.skipped else "")
            + f"; alerts: {by_sev}"
            + (f" ({keep.dropped} filtered out)" if keep.dropped else "")
            + (f" ({plural(pipe.dedupe.merged, 'Docker exec')} seen in two sources merged)" if pipe.dedupe.merged else ""),
            highlight=False,
            soft_wrap=True,
        )
        for line in summary.lines():
            err.print(line, highlight=False, markup=False, soft_wrap=True)
        if policy is not None:
            err.print(escape(policy.summary()), highlight=False, soft_wrap=True)
    if interrupted:
        raise typer.Exit(130)
    if unreadable or write_failed or st.unreadable or (st.files == 0 and st.bad):
        if quiet and not (unreadable or write_failed):  # -q hid the warnings: the failure still gets its line
            error(f"{plural(st.unreadable, 'input')} unreadable" if st.unreadable else "no input could be read")
        raise typer.Exit(2)
    if fail_on is not None and worst >= severity_rank(fail_on):
        raise typer.Exit(1)


def _extra_sinks(store: Path | None, specs: list[str]) -> Any:
    """--store and --sink: opened before any input is read, so a bad one fails at once (docs/sinks.md)."""
    from .cliutil import warning
    from .report.specs import Options, SpecError, open_sinks
    from .report.store import StoreError

    wanted = ([f"store:{store}"] if store is not None else []) + specs
    if not wanted:
        return None
    try:
        return open_sinks(wanted, Options(drain=30.0, warn=warning))
    except (SpecError, StoreError) as exc:
        fail(exc)


def _policy(path: Path | None, min_severity: str, show_suppressed: bool) -> PolicyFilter | None:
    if path is None:
        return None
    try:
        return PolicyFilter(load_policy(path), min_severity, show_suppressed)
    except PolicyError as exc:
        for line in exc.lines():
            err.print(f"[red]error[/red]: {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _policy_warnings(policy: PolicyFilter, rule_ids: list[str], warn: Warner) -> None:
    file = policy.policy.file  # Warner prints names and globs from the file as written, not as markup
    for entry in policy.expired():
        warn(file, entry.line, f"entry {entry.name} expired {entry.expires}; it no longer applies")
    for entry, glob in unknown_rules(policy.policy, rule_ids):
        warn(file, entry.line, f"entry {entry.name}: rules {glob!r} matches none of the loaded rules")


def _unknown_files(found: dict[str, str], shown: int = 5) -> str:
    """', N inputs of no known format: a (binary data ...), b (...)' for the summary line."""
    if not found:
        return ""
    names = [f"{name} ({what.split(':')[0].split(' (')[0]})" for name, what in list(found.items())[:shown]]
    more = f", {len(found) - shown} more" if len(found) > shown else ""
    return f", {plural(len(found), 'input')} of no known format: {', '.join(names)}{more}"


def _jobs(jobs: int, quiet: bool) -> int:
    """-j as asked, capped at the CPUs this process may run on (more workers than CPUs only contend)."""
    usable = parallel.available_jobs()
    if jobs > usable:
        if not quiet:
            note(f"-j {jobs} capped at {plural(usable, 'usable CPU')}")
        return usable
    return jobs or usable


def _close(sink: Sink, text_out: IO[str] | None, stream: IO[bytes] | None, out: Path | None, failed: bool) -> bool:
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


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, transient=True
    )


@app.command("rules")
def rules_cmd(
    rules: Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules directory or file.")] = None,
    output: Annotated[RulesOutput, typer.Option("--output", "-o", help="table, json or yaml.")] = RulesOutput.table,
) -> None:
    """List the rules that hunt runs, with severity, actions and tags."""
    try:
        loaded = load_rules(rules or [])
    except RuleError as exc:
        fail(exc)
    if output is not RulesOutput.table:
        import orjson
        import yaml

        data = [
            {"rule_id": r.rule_id, "sigma_id": r.sigma_id, "title": r.title, "severity": r.severity, "tags": r.tags,
             "actions": sorted(r.actions) if r.actions is not None else None, "fields": sorted(r.fields_used), "path": r.path}
            for r in loaded
        ]
        if output is RulesOutput.json:
            sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        else:
            sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        sys.stdout.flush()
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=plural(len(loaded), "rule"))
    for col in ("rule_id", "severity", "title", "actions", "tags"):
        table.add_column(col, overflow="fold")
    for r in sorted(loaded, key=lambda r: (-severity_rank(r.severity), r.rule_id)):
        # Text cells: rule files are data, a title with [brackets] is not markup
        cells = (r.rule_id, r.severity, r.title, ",".join(sorted(r.actions or ["*"])), " ".join(r.tags))
        table.add_row(*(Text(c) for c in cells))
    Console().print(table)


from .audit.cli import audit_command  # noqa: E402

app.command("audit")(audit_command)

from .sim.emulate import emulate_command  # noqa: E402
from .sim.score import score_command  # noqa: E402
from .sim.simulate import simulate_command  # noqa: E402

app.command("simulate")(simulate_command)
app.command("emulate")(emulate_command)
app.command("score")(score_command)

from .guard_cli import guard_app  # noqa: E402

app.add_typer(guard_app, name="guard")

from .watch_cli import watch_command  # noqa: E402

app.command("watch")(watch_command)

from .alerts_cli import alerts_command  # noqa: E402

app.command("alerts")(alerts_command)


@app.callback(invoke_without_command=True)
def main(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


if __name__ == "__main__":  # pragma: no cover
    app()
