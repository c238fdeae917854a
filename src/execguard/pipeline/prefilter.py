"""The prefilter: which byte literals a line must hold to be parsed at all, and which scanner finds them.

Most lines of an audit log are reads and watches no rule can match. Each source declares, per
action, byte literals that every record of that action holds (``LITERALS`` in each source
module); the rules say which actions they fire on (``Engine.actions``). The union of those
literals is handed to the Reader, whose line framing keeps only lines holding one of them
(``sources.find``: Hyperscan when installed, else ``bytes.find``). When some rule accepts any
action, or an action some source cannot name by a literal, there is no prefilter: every line is
parsed.
"""

from __future__ import annotations

from ..engine.match import Engine
from ..sources import JSON_SOURCES
from ..sources.find import backend


def literals_for(actions: set[str] | None) -> list[bytes] | None:
    """Byte literals of which every line able to yield one of ``actions`` holds at least one.

    None means no prefilter is possible (some action has no literal in some source).
    """
    if actions is None:
        return None
    found: set[bytes] = set()
    for src in JSON_SOURCES:
        for action in actions:
            lits = src.LITERALS.get(action)
            if lits is None:
                if action in ("other",):
                    return None
                continue  # this source never yields that action
            found.update(lits)
    return sorted(found)


def literals(engine: Engine, enabled: bool = True) -> list[bytes] | None:
    """The literals for a run of ``engine``'s rules; None (parse every line) when disabled or impossible.

    Text formats (the dockerd log) add their own per file (``sources.TEXT_SOURCES``' ``LITERALS``), which
    the Reader applies only when this is not None.
    """
    return literals_for(engine.actions()) if enabled else None


def scanner() -> str:
    """The scanner the Reader's line framing uses to find the literals: 'hyperscan' or 'bytes.find'."""
    return backend()

