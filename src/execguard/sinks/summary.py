"""The closing summary on stderr: the rules that fired most and the actors behind most alerts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..model import SEVERITIES, Alert, RuleMatch
from ..model import display as clean  # log text made safe for a terminal, as the table shows it
from ..words import plural

if TYPE_CHECKING:
    from ..sources.reader import Stats

DISTINCT = 10_000  # distinct rules or actors counted by name; the rest go under "(others)"
OTHERS = "(others)"


def actor_of(alert: Alert) -> str:
    actor = alert.event.actor
    who = actor.user or "(no identity)"
    return f"{who} as {actor.impersonated_user}" if actor.impersonated_user else who


class Summary:
    def __init__(self, top: int = 5) -> None:
        self.top = top
        self.by_rule: Counter[str] = Counter()
        self.by_actor: Counter[str] = Counter()

    def add(self, alert: Alert, lead: RuleMatch | None = None) -> None:
        """``lead``: ``alert.lead``, when the caller has it."""
        _count(self.by_rule, (lead or alert.lead).rule_id)
        _count(self.by_actor, actor_of(alert))

    def lines(self) -> list[str]:
        if self.top <= 0 or not self.by_rule:
            return []
        return [_line("by rule", self.by_rule, self.top, "rules"), _line("by actor", self.by_actor, self.top, "actors")]


def _count(counter: Counter[str], key: str) -> None:
    if key not in counter and len(counter) >= DISTINCT:
        key = OTHERS
    counter[key] += 1


def _line(label: str, counter: Counter[str], top: int, noun: str) -> str:
    shown = counter.most_common(top)
    rest = len(counter) - len(shown)
    text = ", ".join(f"{clean(name[:200])} {n}" for name, n in shown)
    return f"{label}: {text}" + (f" (+{rest} more {noun})" if rest else "")


def run_line(version: str, st: Stats, counts: Mapping[str, int], dropped: int = 0, merged: int = 0) -> str:
    """The one line a hunt ends with on stderr: what was read, what was skipped, the alerts by severity."""
    by_sev = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES) if counts.get(s)) or "none"
    formats = ", ".join(f"{k}={v}" for k, v in sorted(st.by_format.items())) or "-"
    return (
        f"execguard {version}: {plural(st.files, 'file')}, {st.bytes / 1e6:.1f} MB, {plural(st.lines, 'line')} read, "
        f"{plural(st.parsed, 'record')} parsed, {plural(st.events, 'event')} ({formats}), {plural(st.bad, 'bad record')} skipped, "
        f"{st.unknown} of unknown format"
        + (f", {plural(st.not_process, 'process-telemetry record')} that start no process skipped" if st.not_process else "")
        + (f", {st.repaired} with invalid UTF-8 repaired" if st.repaired else "")
        + (f", {plural(st.unreadable, 'input')} unreadable" if st.unreadable else "")
        + _unknown_files(st.unknown_files)
        + (f", {plural(st.skipped, 'special file')} skipped" if st.skipped else "")
        + f"; alerts: {by_sev}"
        + (f" ({dropped} filtered out)" if dropped else "")
        + (f" ({plural(merged, 'Docker exec')} seen in two sources merged)" if merged else "")
    )


def _unknown_files(found: dict[str, str], shown: int = 5) -> str:
    """', N inputs of no known format: a (binary data ...), b (...)' for the summary line."""
    if not found:
        return ""
    names = [f"{name} ({what.split(':')[0].split(' (')[0]})" for name, what in list(found.items())[:shown]]
    more = f", {len(found) - shown} more" if len(found) > shown else ""
    return f", {plural(len(found), 'input')} of no known format: {', '.join(names)}{more}"
