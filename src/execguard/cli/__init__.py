"""execguard command line: the typer app and the list of its commands.

Each command is a typer function in a module of this package; the work is elsewhere (pipeline/,
audit/, sim/) and is imported inside the command. Commands are loaded on demand (``LazyGroup``):
`execguard hunt` imports and builds only the hunt command, never the guard, watch or simulator
modules and their option tables (start-up, benchmarks/startup.py). Options and their help are plain
text (``rich_markup_mode=None``): option help such as ADDR:PORT[/SERVICE] must not be read as rich markup.
"""

from __future__ import annotations

import gc
import importlib
from typing import Annotated, Any

import typer
import typer.main
from typer.models import CommandInfo

from .. import __version__
from .coerce import cheapen
from .hunt import sample_dir
from .util import Command, Group, Program, leave_now

__all__ = ["app", "program", "sample_dir"]

# The commands, in the order --help lists them: name -> (module of this package, its typer function
# or sub-app). A new command is a module here and one line below.
COMMANDS: dict[str, tuple[str, str]] = {
    "hunt": ("hunt", "hunt"),
    "rules": ("rules", "rules_app"),
    "audit": ("audit", "audit_command"),
    "simulate": ("sim", "simulate_command"),
    "emulate": ("sim", "emulate_command"),
    "score": ("sim", "score_command"),
    "watch": ("watch", "watch_app"),
    "alerts": ("alerts", "alerts_command"),
    "report": ("report", "report_command"),
    "guard": ("guard", "guard_app"),
}


class LazyGroup(Group):
    """The top-level group: a command's module is imported and its click command built when it is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        known = super().get_command(ctx, cmd_name)
        if known is not None or cmd_name not in COMMANDS:
            return known
        module, attr = COMMANDS[cmd_name]
        target = getattr(importlib.import_module(f".{module}", __name__), attr)
        if isinstance(target, typer.Typer):
            command: Any = typer.main.get_group(target)
            command.name = cmd_name
        else:
            command = typer.main.get_command_from_info(
                CommandInfo(name=cmd_name, callback=target, cls=Command), pretty_exceptions_short=True, rich_markup_mode=None
            )
        cheapen(command)  # plain values without typer's pydantic adapters (start-up; cli/coerce.py)
        self.add_command(command, cmd_name)
        return command


app = typer.Typer(
    cls=LazyGroup, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
    help="Find, audit and block T1609 container administration commands.",
)


@app.callback(invoke_without_command=True)
def main(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


def program() -> None:
    """The `execguard` program (its script and `python -m execguard`): the app, then the way out.

    Whatever is still alive is frozen first (``gc.freeze``), so the interpreter's collections at exit skip it:
    after a dense hunt they traversed every object the run still held, 0.06-0.09 s of a 2 s hunt and part of a
    one-line hunt's start-up (benchmarks/RESULTS.md). A command that closed all its outputs leaves without the
    teardown at all (``util.Program``). Only the program: tests that run ``app`` in their own process keep their
    collector and exit as they were.
    """
    Program.running = True
    try:
        app(prog_name="execguard")
    except SystemExit as exc:
        if Program.leave:  # the command closed its outputs (hunt): nothing is left for the teardown to do
            leave_now(exc.code)
        raise
    finally:
        gc.freeze()
