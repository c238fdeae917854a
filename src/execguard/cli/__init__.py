"""execguard command line: the typer app and the list of its commands.

Each command is a typer function in a module of this package; the work is elsewhere (pipeline/,
audit/, sim/) and is imported inside the command, so `execguard hunt` never loads the Docker, Kubernetes,
audit or simulator code. Options and their help are plain text (``rich_markup_mode=None``): option
help such as ADDR:PORT[/SERVICE] must not be read as rich markup.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import alerts, audit, guard, hunt, rules, sim, watch
from .hunt import sample_dir
from .util import Group

__all__ = ["app", "sample_dir"]

app = typer.Typer(
    cls=Group, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
    help="Find, audit and block T1609 container administration commands.",
)

# The commands, in the order --help lists them. A new command is a module here and one line below.
app.command("hunt")(hunt.hunt)
app.command("rules")(rules.rules_cmd)
app.command("audit")(audit.audit_command)
app.command("simulate")(sim.simulate_command)
app.command("emulate")(sim.emulate_command)
app.command("score")(sim.score_command)
app.add_typer(watch.watch_app, name="watch")
app.command("alerts")(alerts.alerts_command)
app.add_typer(guard.guard_app, name="guard")


@app.callback(invoke_without_command=True)
def main(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)
