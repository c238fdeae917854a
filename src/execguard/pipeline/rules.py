"""The rules a run uses: built-in and --rules files, loaded through engine.sigma."""

from __future__ import annotations

from collections.abc import Iterable

from ..engine.sigma import Rule, load_rules


def load(extra: Iterable[str] = (), builtin: bool = True) -> list[Rule]:
    return load_rules(list(extra), builtin=builtin)
