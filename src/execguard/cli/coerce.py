"""Plain command-line values (str, int, float, Path, an Enum's choices, lists of them) coerced without pydantic.

typer >= 0.2x coerces every parameter through a pydantic TypeAdapter, built the first time the parameter
is parsed: importing pydantic and building one adapter for each of hunt's 24 parameters (and --help) was
0.16 s of CPU of the 0.4 s after the interpreter's start on a one-line file (benchmarks/startup.py). For
the values a command line holds (a string token from argv, or the default), the result of that coercion is
known: "5" is 5, "10.5" is 10.5, "out.json" is Path("out.json"), an Enum's choice is found by typer's own
``coerce_cli_choice``. ``cheapen`` gives each parameter of a built command a coercion that returns those
at once and hands everything else (a value it does not recognise, a value out of range, a value typer
would refuse) to typer's own coercion, built as typer builds it: errors, messages and exit codes are
typer's, and the fast answers are tested against typer's (tests/test_cli_coerce.py).

The typer internals this relies on, all of typer 0.2x's ``_TyperParameter`` (typer/core.py):
``type_descriptor`` (the parameter's annotation and ``ParameterInfo``), ``_runtime_param`` (the lazily
built coercion, None until first use; ``process_value`` calls its ``coerce(value, param=, ctx=)``) and
``typer._coercion.build_runtime_param``; for Enum and Path values, ``coerce_cli_choice`` and
``coerce_cli_path`` (typer/_param_types.py), which typer's adapters call. Click makes the --help option
while parsing, so cli/util.py's Command and Group hand it here as they make it. An older typer (0.16, the
floor: click types, no pydantic) or a later one without these is left alone: typer's own path throughout.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

MISS = object()  # "not a value this module answers for": typer's own coercion decides
INT = re.compile(r"-?[0-9]{1,18}")  # what int() and pydantic read alike, well inside 64 bits
FLOAT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")  # decimal notation: both parse it correctly rounded


def cheapen(command: Any) -> None:
    """Give each parameter of a click command (and of its subcommands) the cheap coercion, where typer's allows."""
    for param in getattr(command, "params", ()):
        cheapen_param(param)
    for sub in getattr(command, "commands", {}).values():
        cheapen(sub)


def cheapen_param(param: Any) -> None:
    """One parameter; also the --help option, which click makes only while parsing (cli/util.py)."""
    try:
        from typer._coercion import build_runtime_param
    except ImportError:  # typer before 0.2x, or a later one that moved it: typer's own path
        return
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", False) is not None:
        return
    leaf = _leaf(getattr(descriptor, "annotation", None), getattr(descriptor, "parameter_info", None))
    if leaf is not None:
        param._runtime_param = Cheap(leaf, descriptor, build_runtime_param)


class Cheap:
    """A parameter's coercion: the plain answer when there is one, else typer's own (built on first need)."""

    def __init__(self, leaf: Any, descriptor: Any, build: Any) -> None:
        self.leaf, self.descriptor, self.build = leaf, descriptor, build
        self.typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:  # typer's RuntimeParam.coerce: nothing given is () or None, before any adapter
            return () if multi else None
        out = MISS
        if multi and isinstance(value, (list, tuple)):
            items = [self.leaf(v, param, ctx) for v in value]
            if not any(item is MISS for item in items):
                out = items
        elif not multi:
            out = self.leaf(value, param, ctx)
        if out is not MISS:
            return out
        if self.typer is None:
            self.typer = self.build(self.descriptor)
        return self.typer.coerce(value, param=param, ctx=ctx)


def _leaf(annotation: Any, info: Any) -> Any:
    """The cheap coercion of one value of this annotation, or None when typer's must do it all."""
    if info is None or getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    if getattr(info, "clamp", False):
        return None
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    if annotation is str:
        return _str
    if annotation is bool:  # typer skips coercing a flag's bool; None (--help's) and a string come here
        return _bool
    if annotation is int or annotation is float:
        return _number(annotation, getattr(info, "min", None), getattr(info, "max", None))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(annotation, info)
    if annotation is Path and getattr(info, "path_type", None) is None:
        return _path(info)
    return None


def _str(value: Any, param: Any, ctx: Any) -> Any:
    return value if type(value) is str else MISS


def _bool(value: Any, param: Any, ctx: Any) -> Any:
    return value if type(value) is bool else MISS


def _number(kind: type, low: float | None, high: float | None) -> Any:
    pattern = INT if kind is int else FLOAT

    def number(value: Any, param: Any, ctx: Any) -> Any:
        n: Any
        if type(value) is kind:
            n = value
        elif type(value) is str and value.isascii() and pattern.fullmatch(value):
            n = kind(value)
        else:
            return MISS
        if (low is not None and n < low) or (high is not None and n > high):
            return MISS  # typer words the error
        return n

    return number


def _choice(enum: type[Enum], info: Any) -> Any:
    choices = list(enum)
    case_sensitive = getattr(info, "case_sensitive", True)

    def choice(value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, enum):
            return value
        if type(value) is not str:
            return MISS
        try:
            from typer._param_types import coerce_cli_choice

            return coerce_cli_choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
        except Exception:  # not a choice (typer words the error), or typer changed: its own path decides
            return MISS

    return choice


def _path(info: Any) -> Any:
    def path(value: Any, param: Any, ctx: Any) -> Any:
        # typer's path adapter: pydantic makes the Path, then coerce_cli_path checks it (exists, readable, ...);
        # given a Path, coerce_cli_path does both without pydantic
        if type(value) is str:
            value = Path(value)
        elif not isinstance(value, Path):
            return MISS
        try:
            from typer._param_types import coerce_cli_path

            return coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)
        except Exception:  # refused (typer words the error from the value as given), or typer changed
            return MISS

    return path
