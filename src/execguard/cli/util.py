"""What every command shares at the edge: one-line errors, exit codes, output-path checks, word counts.

Exit codes (README "Exit codes"): 0 done, 1 ``--fail-on`` met, 2 usage error / bad input / unwritable output,
130 interrupted (Ctrl-C). A broken pipe (``| head``) ends quietly with 0.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from ..words import plural as plural  # re-exported: every command counts things

try:  # typer 0.2x carries its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # older typer runs on click itself
    from click.exceptions import ClickException  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Program:
    """The ``execguard`` program's state (``cli.program``), not set when the app runs inside another process (tests).

    A command that has closed every output of its own sets ``leave``: the program then exits at once
    (``leave_now``), skipping Python's teardown, which freed every module and object one at a time
    (~20 ms after a dense hunt)."""

    running = False
    leave = False


def leave_now(code: Any) -> NoReturn:
    """Exit as ``sys.exit(code)`` would, after flushing standard output and error, without the teardown."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as the interpreter does with a SystemExit that is not a number
        with contextlib.suppress(OSError, ValueError):
            print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, a closed stream
            stream.flush()
    os._exit(status)


class LazyConsole:
    """A rich Console made on first use: a quiet hunt writing JSON lines never imports rich (start-up)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def _make(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._make(), name)


def escape(text: str) -> str:
    """rich markup escaped, imported when a message is written."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


err: Any = LazyConsole(stderr=True, highlight=False, soft_wrap=True)


def one_line(text: object) -> str:
    """Text for a single stderr line: newlines and other control characters shown as escapes."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))


def error(message: object) -> None:
    """``error: <message>`` on stderr; the message is data, never markup."""
    err.print(f"[red]error[/red]: {escape(one_line(message))}")


def warning(message: object) -> None:
    err.print(f"[yellow]warning[/yellow]: {escape(one_line(message))}")


def note(message: object) -> None:
    err.print(f"note: {escape(one_line(message))}")


def fail(message: object) -> NoReturn:
    error(message)
    raise typer.Exit(EXIT_USAGE)


def fail_lines(lines: Sequence[str]) -> NoReturn:
    """Several problems (a policy file's, each naming its line): every one on its own error line, then exit 2."""
    for line in lines[:-1]:
        error(line)
    fail(lines[-1])


def read_input(path: Path | None, what: str) -> bytes:
    """A file a command embeds (certificate, key, token), or nothing when not given; unreadable: one error line."""
    if path is None:
        return b""
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read the {what}: {exc.strerror or exc}")


def policy_text(path: Path) -> str:
    """A policy file's text for a ConfigMap, once it loads as `hunt --policy` loads it (else its problems, exit 2)."""
    from ..policy import PolicyError, load_policy

    try:
        load_policy(path)
    except PolicyError as exc:
        fail_lines(exc.lines())
    return read_input(path, "policy").decode("utf-8")


def output_problem(path: Path | str) -> str | None:
    """Why ``path`` cannot be written as an output file, or None; checked before the long work starts.

    A full disk (/dev/full) passes: that is only found when writing, and reported then."""
    p = Path(path)
    name = str(path)
    if name == "":
        return "empty output path"
    if p.is_dir():
        return f"{name}: is a directory"
    if p.is_fifo():
        # opening a FIFO nobody reads would wait for ever; a non-blocking open says whether a reader is there
        try:
            os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:
            return f"{name}: a FIFO with no reader" if exc.errno == errno.ENXIO else f"{name}: {exc.strerror}"
        return None
    if p.exists():
        return None if os.access(p, os.W_OK) else f"{name}: permission denied"
    parent = p.parent
    if not parent.exists():
        return f"{name}: directory {parent} does not exist"
    if not parent.is_dir():
        return f"{name}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{name}: permission denied"
    return None


def output_dir_problem(path: Path | str) -> str | None:
    """Why ``path`` cannot be made or used as an output directory (missing parents are made), or None."""
    name = str(path)
    if name == "":
        return "empty output directory"
    p = Path(path)
    if p.exists() and not p.is_dir():
        return f"{name}: not a directory"
    probe = p
    while not probe.exists():  # the nearest ancestor that exists is where the first mkdir happens
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{name}: {probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{name}: permission denied"
    return None


def check_output(path: Path | str | None) -> None:
    """Exit 2 with one line when ``path`` (an output file) cannot be written."""
    if path is None:
        return
    problem = output_problem(path)
    if problem:
        fail(f"cannot write {problem}")


def write_output(path: Path, data: bytes) -> None:
    """Write a whole report to ``path``; a failure (a full disk) is one line naming the file, exit 2."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")


def os_error_line(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def silence_stdout() -> None:
    """Point stdout at /dev/null so flushing it at exit cannot raise BrokenPipeError again."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


class Command(TyperCommand):
    """A command of the app: its --help option coerced as its other options are (cli/coerce.py)."""

    def get_help_option(self, ctx: Any) -> Any:
        return _cheap_help(super().get_help_option(ctx))


def _cheap_help(option: Any) -> Any:
    if option is not None:
        from .coerce import cheapen_param

        cheapen_param(option)
    return option


class Group(TyperGroup):
    """The app's click group: every way a command can end becomes one stderr line and a documented exit code."""

    def get_help_option(self, ctx: Any) -> Any:
        return _cheap_help(super().get_help_option(ctx))

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:  # embedding callers get click's own behaviour
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        sys.exit(self._run(args, prog_name, complete_var, **extra))

    def _run(self, args: Sequence[str] | None, prog_name: str | None, complete_var: str | None, **extra: Any) -> int:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            return rv if isinstance(rv, int) else 0
        except ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `execguard`: the help is the answer, not an error
                typer.echo(exc.format_message())
                return 0
            # click's own message (bad option, missing argument) as one line, with the way to more help
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            error(exc.format_message() + hint)
            return exc.exit_code
        except typer.Abort:
            error("aborted")
            return EXIT_INTERRUPTED
        except SystemExit as exc:
            # click (printing --help) and rich (printing a table) meet a closed stdout by exiting 1: that is a
            # reader that went away (| head), which ends quietly with 0, as in every command
            broken = exc.__context__
            if exc.code == 1 and isinstance(broken, OSError) and broken.errno == errno.EPIPE:
                silence_stdout()
                return 0
            raise

    def invoke(self, ctx: Any) -> Any:
        # here, not in main(): click's main turns any EPIPE into exit 1 and re-raises other OS errors as tracebacks
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader of our output went away (| head): stop quietly
                silence_stdout()
                raise typer.Exit(0) from None
            # an output that failed while being written (ENOSPC, EIO): what was written stays written
            error(os_error_line(exc))
            raise typer.Exit(EXIT_USAGE) from None
