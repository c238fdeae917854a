"""Alerts for people: a table on wide terminals, one compact block per alert elsewhere.

A seven-column table needs about 160 columns; below that it wraps into unreadable one-character
columns, so narrower consoles get blocks: a header line with the severity badge, time and rule,
then who / what / where / why / source lines. Output that is not a terminal (a file, a pipe)
gets the same blocks as plain text, not wrapped at all unless COLUMNS asks for a width, and then
wrapped at spaces: words, paths and ids stay whole (grep finds them) unless one is longer than a line.

The table holds at most ``limit`` alerts. When there are more it keeps the most severe (then the
earliest), never a less severe alert in place of a more severe one, and says what it left out.

Everything from the logs is shown as plain text: rich markup in a command (``[/x]``) is not
interpreted, control, bidi and invisible characters are shown escaped (``model.display``), and long
values are cut (-o jsonl has them whole).
"""

from __future__ import annotations

import heapq
import textwrap
from collections import Counter

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..model import SEVERITIES, Alert, display, severity_rank
from ..times import time_ns

STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}
WIDE = 160
LIMIT = 2000
COMMAND_CHARS = 400  # of a command shown; a 16 MB argv must not take minutes to print
TEXT_CHARS = 300  # of any other value
LAST = 1 << 80
clean = display  # log text made safe for a terminal


def cut(value: str, limit: int = TEXT_CHARS) -> str:
    """At most ``limit`` characters, saying how many were left out (escaped, so it is cut first)."""
    if len(value) <= limit:
        return clean(value)
    return clean(value[:limit]) + f"… [{len(value) - limit} more characters; -o jsonl has them all]"


def _where(alert: Alert) -> str:
    t = alert.event.target
    parts = [p for p in (t.cluster, t.namespace, t.pod or t.node) if p]
    place = "/".join(parts)
    inner = t.container or (t.container_id[:12] if t.container_id else None)
    if inner:
        place = f"{place}[{inner}]" if place else inner
    if t.image:
        place += f" ({t.image})"
    return cut(place) or "?"


def _who(alert: Alert) -> str:
    actor = alert.event.actor
    who = actor.user or "(no identity)"
    if actor.impersonated_user:
        who += f" as {actor.impersonated_user}"
    if actor.source_ip:
        who += f" from {', '.join(actor.source_ip)}"
    if actor.credential_pod:
        who += f" (token of pod {actor.credential_pod})"
    return cut(who)


def _what(alert: Alert) -> str:
    ev = alert.event
    code = f"/{ev.code}" if ev.code is not None else ""
    head = cut(f"{ev.action} [{ev.verb or '-'}{code} {ev.outcome}]: ")
    return head + (cut(" ".join(ev.command), COMMAND_CHARS) if ev.command else "(no command recorded)")


def _reasons(alert: Alert) -> list[str]:
    ordered = sorted(alert.matches, key=lambda m: -severity_rank(m.severity))
    cmd = " ".join(alert.event.command)

    def short(reason: str) -> str:
        # "what" already shows the argv; repeating a long one in every reason buries the reasons
        return reason.replace(cmd, "(the command above)") if len(cmd) > 40 else reason

    out = [cut(f"{short(m.reason)} ({m.rule_id}, {m.severity})" if len(ordered) > 1 else short(m.reason)) for m in ordered]
    return [cut(f"SUPPRESSED by policy {alert.suppressed}"), *out] if alert.suppressed is not None else out


def _source(alert: Alert, sep: str = ", ") -> str:
    refs = [alert.event.source, *alert.also_seen]
    return sep.join(cut(f"{s.file}:{s.line}" if s.line else s.file or "?") for s in refs)


def badge(severity: str) -> Text:
    return Text(f" {severity.upper()} ", style=STYLE.get(severity, ""))


def block(alert: Alert) -> Group:
    """One alert as a few labelled lines that read well at any width."""
    lead = alert.lead
    head = Text.assemble(badge(alert.severity), " ", (cut(alert.event.time or "-"), "dim"), "  ", (cut(lead.title), "bold"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True, justify="right", width=6)
    grid.add_column(overflow="fold")
    for label, value in _fields(alert):
        grid.add_row(label, Text(value))
    return Group(head, grid, Text(""))


def _fields(alert: Alert) -> list[tuple[str, str]]:
    rows = [("who", _who(alert)), ("what", _what(alert)), ("where", _where(alert))]
    rows += [("why" if i == 0 else "", f"• {reason}") for i, reason in enumerate(_reasons(alert))]
    rows.append(("source", _source(alert)))
    return rows


def plain_block(alert: Alert, width: int | None) -> str:
    """A block as plain text: wrapped at spaces to ``width`` (inside a word only if it is longer than a line), or not at all."""
    head = f"{alert.severity.upper()}  {cut(alert.event.time or '-')}  {cut(alert.lead.title)}"
    lines = _wrap(head, width, "", "       ")
    for label, value in _fields(alert):
        wrapped = _wrap(value, max(width - 7, 20) if width else None, "", "  " if value.startswith("•") else "")
        lines.append(f"{label:>6} {wrapped[0]}")
        lines.extend(f"{'':6} {rest}" for rest in wrapped[1:])
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int | None, first: str, rest: str) -> list[str]:
    """Lines of at most ``width``, broken at spaces; only a word longer than a whole line is cut."""
    if not width:
        return [first + text]
    lines = textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_long_words=True, break_on_hyphens=False
    )
    return lines or [first]


class TableSink:
    """Keeps the ``limit`` most severe alerts (0: all) and prints them at close (tables need their widths).

    ``plain`` is for output that is not a terminal: plain-text blocks wrapped at ``width`` (None:
    one line per field).
    """

    def __init__(self, console: Console, limit: int = LIMIT, plain: bool = False, width: int | None = None) -> None:
        self.console = console
        self.limit = limit
        self.plain = plain
        self.width = width
        self.kept: list[tuple[int, int, int, Alert]] = []  # a min-heap: the least severe, then latest, on top
        self.seen: Counter[str] = Counter()
        self.seq = 0

    @property
    def dropped(self) -> int:
        return self.seq - len(self.kept)

    def write(self, alert: Alert) -> None:
        self.seq += 1
        self.seen[alert.severity] += 1
        t = time_ns(alert.event.time)
        entry = (severity_rank(alert.severity), -(LAST if t is None else t), -self.seq, alert)
        if not self.limit or len(self.kept) < self.limit:
            heapq.heappush(self.kept, entry)
        elif entry[:3] > self.kept[0][:3]:
            heapq.heapreplace(self.kept, entry)

    @property
    def alerts(self) -> list[Alert]:
        """What the table shows: arrival order when nothing was cut, else most severe first, then by time."""
        if not self.dropped:
            return [e[3] for e in sorted(self.kept, key=lambda e: -e[2])]
        return [e[3] for e in sorted(self.kept, key=lambda e: (-e[0], -e[1], -e[2]))]

    def close(self) -> None:
        alerts = self.alerts
        if not alerts:
            self.console.print("[green]No alerts.[/green]")
            return
        if self.plain:
            out = self.console.file
            out.write("T1609 container administration commands\n\n")
            for a in alerts:
                out.write(plain_block(a, self.width) + "\n")
        elif self.console.width < WIDE:
            self.console.print(Text("T1609 container administration commands", style="bold"), "")
            for a in alerts:
                self.console.print(block(a))
        else:
            self.console.print(self.table(alerts))
        if self.dropped:
            self.console.print(Text(self.cut_note(), style="yellow"))

    def cut_note(self) -> str:
        shown = Counter(a.severity for a in self.alerts)
        left = ", ".join(f"{self.seen[s] - shown[s]} {s}" for s in reversed(SEVERITIES) if self.seen[s] > shown[s])
        return (
            f"{self.dropped} more alerts not shown ({left}): the table keeps the {self.limit} most severe, "
            "sorted by severity then time. All of them: -o jsonl; fewer: --min-severity, --since, --namespace, "
            "--user, --rule; more rows: --limit N (0 = no limit)."
        )

    def table(self, alerts: list[Alert] | None = None) -> Table:
        table = Table(show_lines=False, expand=True, title="T1609 container administration commands")
        table.add_column("severity", no_wrap=True)
        table.add_column("time", no_wrap=True)
        # every flexible column has a ratio: rich then shares the width out instead of letting
        # one long unbreakable value (a pod name, a path) squeeze the others to a few characters
        table.add_column("who", overflow="fold", ratio=2)
        table.add_column("what", overflow="fold", ratio=3)
        table.add_column("where", overflow="fold", ratio=2)
        table.add_column("why", overflow="fold", ratio=4)
        table.add_column("source", overflow="fold", ratio=2)
        for a in self.alerts if alerts is None else alerts:
            table.add_row(
                badge(a.severity),
                Text(cut(a.event.time or "")),
                Text(_who(a)),
                Text(_what(a)),
                Text(_where(a)),
                Text("\n".join(f"• {r}" for r in _reasons(a))),
                Text(_source(a, "\n")),
            )
        return table


class LiveSink:
    """One block per alert, printed as it is found: for input from a pipe (``tail -F log | execguard hunt -``),
    where a table, which needs every row for its widths, would wait for the end of the input."""

    def __init__(self, console: Console, plain: bool = False, width: int | None = None) -> None:
        self.console = console
        self.plain = plain
        self.width = width
        self.count = 0

    def write(self, alert: Alert) -> None:
        if self.plain:
            out = self.console.file
            if not self.count:
                out.write("T1609 container administration commands\n\n")
            out.write(plain_block(alert, self.width) + "\n")
            out.flush()
        else:
            if not self.count:
                self.console.print(Text("T1609 container administration commands", style="bold"), "")
            self.console.print(block(alert))  # rich flushes the file after each print
        self.count += 1

    def close(self) -> None:
        if not self.count:
            self.console.print("[green]No alerts.[/green]")
