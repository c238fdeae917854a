"""Alert sinks: table for people, JSON lines and OCSF for machines.

A sink takes alerts one at a time (``write``) and flushes at the end (``close``). ``make`` builds one
by name; a new sink is a module here plus one entry in ``SINKS``. Sink modules are imported only
when chosen, so a run that writes JSON lines never loads the table code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Protocol

from ..model import Alert

if TYPE_CHECKING:
    from rich.console import Console


class Sink(Protocol):
    def write(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


def _jsonl(out: IO[bytes], console: Console, limit: int, live: bool) -> Sink:
    from .jsonl import BLOCK, JsonlSink

    return JsonlSink(out, 0 if live else BLOCK)  # sorted: every alert comes at the end, in blocks


def _ocsf(out: IO[bytes], console: Console, limit: int, live: bool) -> Sink:
    from .ocsf import OcsfSink

    return OcsfSink(out)


def _table(out: IO[bytes], console: Console, limit: int, live: bool) -> Sink:
    from .table import LiveSink, TableSink

    # not a terminal: plain blocks, wrapped at spaces only if COLUMNS asks for a width
    plain = not console.is_terminal
    width = console.width if plain and os.environ.get("COLUMNS") else None
    if live:  # a pipe among the inputs: one block per alert as it is found
        return LiveSink(console, plain=plain, width=width)
    return TableSink(console, limit, plain=plain, width=width)


# name -> factory(bytes out, console, table limit, live); the order is the order --output lists them
SINKS: dict[str, Callable[[IO[bytes], Console, int, bool], Sink]] = {"table": _table, "jsonl": _jsonl, "ocsf": _ocsf}


def make(name: str, out: IO[bytes], console: Console, limit: int = 2000, live: bool = False) -> Sink:
    """The sink called ``name``: jsonl/ocsf write bytes to ``out``, the table prints on ``console``."""
    try:
        factory = SINKS[name]
    except KeyError:
        raise ValueError(f"{name!r}: choose one of {', '.join(SINKS)}") from None
    return factory(out, console, limit, live)
