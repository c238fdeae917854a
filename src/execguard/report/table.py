"""A rich table for people: one row per alert, most severe first within the run's order."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..model import Alert

STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _where(alert: Alert) -> str:
    t = alert.event.target
    parts = [p for p in (t.cluster, t.namespace, t.pod or t.node) if p]
    place = "/".join(parts)
    inner = t.container or (t.container_id[:12] if t.container_id else None)
    if inner:
        place = f"{place}[{inner}]" if place else inner
    if t.image:
        place += f" ({t.image})"
    return place or "?"


class TableSink:
    """Collects alerts and prints them as a table at close (tables need their widths)."""

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
        table = Table(show_lines=False, expand=True, title="T1609 container administration commands")
        table.add_column("severity", no_wrap=True)
        table.add_column("time", no_wrap=True)
        table.add_column("who", overflow="fold")
        table.add_column("what", overflow="fold")
        table.add_column("where", overflow="fold")
        table.add_column("why", overflow="fold", ratio=2)
        table.add_column("source", overflow="fold")
        for a in self.alerts:
            ev = a.event
            who = ev.actor.user or "(no identity)"
            if ev.actor.impersonated_user:
                who += f" as {ev.actor.impersonated_user}"
            if ev.actor.source_ip:
                who += f" from {ev.actor.source_ip[0]}"
            cmd = " ".join(ev.command) if ev.command else "(no command recorded)"
            what = f"{ev.action} [{ev.verb or '-'}{'/' + str(ev.code) if ev.code is not None else ''} {ev.outcome}]: {cmd}"
            reasons = "\n".join(f"• {m.reason}" for m in sorted(a.matches, key=lambda m: m.severity != a.severity))
            src = f"{ev.source.file}:{ev.source.line}" if ev.source.line else ev.source.file
            table.add_row(Text(a.severity, style=STYLE.get(a.severity, "")), ev.time or "", who, what, _where(a), reasons, src)
        self.console.print(table)
        if self.dropped:
            self.console.print(f"[yellow]{self.dropped} more alerts not shown; use --output jsonl for all.[/yellow]")
