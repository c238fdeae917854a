"""Alerts for people: a table on wide terminals, one compact block per alert on narrow ones.

A seven-column table needs about 160 columns; below that it wraps into unreadable one-character
columns, so narrower consoles (80 columns, files, pipes) get blocks: a header line with the
severity badge, time and rule, then who / what / where / why / source lines.

Everything from the logs is shown as plain text: rich markup in a command (``[/x]``) is not
interpreted, and control characters (terminal escape sequences) are shown escaped.
"""

from __future__ import annotations

import re

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..model import Alert, severity_rank

STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}
WIDE = 160
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(value: str) -> str:
    """Log text made safe for a terminal: control characters shown as escapes."""
    return _CONTROL.sub(lambda m: "\\n" if m.group() == "\n" else f"\\x{ord(m.group()):02x}", value)


def _where(alert: Alert) -> str:
    t = alert.event.target
    parts = [p for p in (t.cluster, t.namespace, t.pod or t.node) if p]
    place = "/".join(parts)
    inner = t.container or (t.container_id[:12] if t.container_id else None)
    if inner:
        place = f"{place}[{inner}]" if place else inner
    if t.image:
        place += f" ({t.image})"
    return clean(place) or "?"


def _who(alert: Alert) -> str:
    actor = alert.event.actor
    who = actor.user or "(no identity)"
    if actor.impersonated_user:
        who += f" as {actor.impersonated_user}"
    if actor.source_ip:
        who += f" from {', '.join(actor.source_ip)}"
    if actor.credential_pod:
        who += f" (token of pod {actor.credential_pod})"
    return clean(who)


def _what(alert: Alert) -> str:
    ev = alert.event
    cmd = " ".join(ev.command) if ev.command else "(no command recorded)"
    code = f"/{ev.code}" if ev.code is not None else ""
    return clean(f"{ev.action} [{ev.verb or '-'}{code} {ev.outcome}]: {cmd}")


def _reasons(alert: Alert) -> list[str]:
    ordered = sorted(alert.matches, key=lambda m: -severity_rank(m.severity))
    cmd = " ".join(alert.event.command)

    def short(reason: str) -> str:
        # "what" already shows the argv; repeating a long one in every reason buries the reasons
        return reason.replace(cmd, "(the command above)") if len(cmd) > 40 else reason

    return [clean(f"{short(m.reason)} ({m.rule_id}, {m.severity})" if len(ordered) > 1 else short(m.reason)) for m in ordered]


def _source(alert: Alert) -> str:
    src = alert.event.source
    return clean(f"{src.file}:{src.line}" if src.line else src.file or "?")


def badge(severity: str) -> Text:
    return Text(f" {severity.upper()} ", style=STYLE.get(severity, ""))


def block(alert: Alert) -> Group:
    """One alert as a few labelled lines that read well at any width."""
    lead = alert.lead
    head = Text.assemble(badge(alert.severity), " ", (clean(alert.event.time or "-"), "dim"), "  ", (clean(lead.title), "bold"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True, justify="right", width=6)
    grid.add_column(overflow="fold")
    grid.add_row("who", Text(_who(alert)))
    grid.add_row("what", Text(_what(alert)))
    grid.add_row("where", Text(_where(alert)))
    for i, reason in enumerate(_reasons(alert)):
        grid.add_row("why" if i == 0 else "", Text(f"• {reason}"))
    grid.add_row("source", Text(_source(alert)))
    return Group(head, grid, Text(""))


class TableSink:
    """Collects alerts and prints them at close (tables need their widths)."""

    def __init__(self, console: Console, limit: int = 2000) -> None:
        self.console = console
        self.alerts: list[Alert] = []
        self.limit = limit
        self.dropped = 0

    def write(self, alert: Alert) -> None:
        if len(self.alerts) < self.limit:
            self.alerts.append(alert)
        else:
            self.dropped += 1

    def close(self) -> None:
        if not self.alerts:
            self.console.print("[green]No alerts.[/green]")
            return
        if self.console.width < WIDE:
            self.console.print(Text("T1609 container administration commands", style="bold"), "")
            for a in self.alerts:
                self.console.print(block(a))
        else:
            self.console.print(self.table())
        if self.dropped:
            more = f"{self.dropped} more alert{'' if self.dropped == 1 else 's'}"
            self.console.print(f"[yellow]{more} not shown; use --output jsonl for all.[/yellow]")

    def table(self) -> Table:
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
        for a in self.alerts:
            table.add_row(
                badge(a.severity),
                Text(clean(a.event.time or "")),
                Text(_who(a)),
                Text(_what(a)),
                Text(_where(a)),
                Text("\n".join(f"• {r}" for r in _reasons(a))),
                Text(_source(a)),
            )
        return table
