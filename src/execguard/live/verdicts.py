"""Pending bypass verdicts in watch's state file (docs/watch.md "Bypass verdicts").

Saved with every checkpoint whose verdicts changed, beside the --out mark they are consistent with:
after a crash --out is cut back to that mark and the verdicts pending then wait again, from the
restart, for a record the durable inputs replay. Each is the exec's Event and its later processes,
as alert JSON (sinks/alert_json.py), which sinks/restore.py reads back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine.join import Joiner
from ..engine.joinlive import BYPASS
from ..model import Alert, RuleMatch
from ..sinks.alert_json import alert_dict
from ..sinks.restore import restore

PENDING = RuleMatch(BYPASS, "Pending bypass verdict", "info", [], "waiting for a record of who asked")


def dump(join: Joiner | None) -> list[dict[str, Any]]:
    if join is None or join.verdicts is None:
        return []
    return [
        {"seq": s.seq, "exec": alert_dict(Alert(s.lead, [PENDING], covers=[m[0] for m in s.members]))}
        for s in join.verdicts.waiting.values()
    ]


def version(join: Joiner | None) -> int:
    return join.verdicts.version if join is not None and join.verdicts is not None else 0


def resume(join: Joiner | None, saved: list[Any], where: str, warn: Callable[[str], None]) -> int:
    """The verdicts a state file kept, pending again; how many. A bad entry is named and skipped."""
    if join is None or join.verdicts is None:
        return 0
    n = 0
    for i, item in enumerate(saved):
        try:
            alert = restore(item["exec"])
            seq = int(item.get("seq", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            warn(f"{where}: pending verdict {i + 1}: unreadable ({type(exc).__name__}); skipped")
            continue
        if join.resume(alert.event, alert.covers, seq):
            n += 1
        else:
            warn(f"{where}: pending verdict {i + 1}: no time; skipped")
    return n
