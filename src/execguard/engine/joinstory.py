"""What the join says (engine/join.py): the identity copied onto processes, the merged rule hits, the reasons
of the incident and bypass hits, and its counts for the closing summary."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Alert, Event, RuleMatch, severity_rank


@dataclass
class JoinStats:
    incidents: int = 0  # incident alerts written
    identities: int = 0  # node events given the identity of the record that asked for them
    bypasses: int = 0  # bypass alerts written
    probes: int = 0  # exec-like node events taken for probes or hooks (pod spec, Tetragon's flag)
    repeated: int = 0  # ... taken for probes because the same argv kept coming
    expected: int = 0  # ... named by a policy `probe` entry
    uncovered: int = 0  # ... with no API-server or Docker source on at the time: not judged
    late: int = 0  # node events after their session's alert was written: out alone, identity attached
    unjudged: int = 0  # ... with no record yet where nothing may wait (watch): a record may still come
    shed: int = 0  # state dropped, or alerts written early, for the memory cap

    def line(self) -> str:
        return (
            f"join: {self.incidents} incident(s), {self.identities} process(es) given an identity, "
            f"{self.bypasses} exec(s) bypassed the API server, {self.probes + self.repeated + self.expected} probe(s) "
            f"({self.repeated} by repetition, {self.expected} by policy), {self.uncovered} with no API-server source "
            f"on at the time, {self.late} late, {self.shed} shed for the memory cap"
            + (f", {self.unjudged} not judged live" if self.unjudged else "")
        )


def identity(event: Event, lead: Event) -> None:
    """The record's identity onto a process it caused."""
    a, who = event.actor, lead.actor
    a.user, a.groups, a.source_ip = who.user, list(who.groups), list(who.source_ip)
    a.user_agent, a.impersonated_user, a.credential_pod = who.user_agent, who.impersonated_user, who.credential_pod


def merged(alerts: list[Alert]) -> list[RuleMatch]:
    """Every part's hits, one per rule (its most severe), most severe first."""
    best: dict[str, RuleMatch] = {}
    for alert in alerts:
        for m in alert.matches:
            old = best.get(m.rule_id)
            if old is None or severity_rank(m.severity) > severity_rank(old.severity):
                best[m.rule_id] = m
    return sorted(best.values(), key=lambda m: -severity_rank(m.severity))


def line(argv: list[str], limit: int = 120) -> str:
    text = " ".join(argv) or "(argv unknown)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def incident(lead: Event, covered: list[Event]) -> str:
    t = lead.target
    who = lead.actor.user or "an unknown client"
    ip = f" from {', '.join(lead.actor.source_ip)}" if lead.actor.source_ip else ""
    shown = "; ".join(line(e.command, 60) for e in covered[:5])
    more = f" and {len(covered) - 5} more" if len(covered) > 5 else ""
    return (
        f"{who}{ip} ran {lead.action} {line(lead.command)} in {t.namespace or '-'}/{t.pod or t.container or '-'}: "
        f"the node saw {len(covered)} process(es) from it: {shown}{more}"
    )


def bypass(ev: Event, more: int, window: float, skew: float) -> str:
    t = ev.target
    where = f"{t.namespace}/{t.pod} [{t.container}]" if t.pod else f"container {t.container or t.container_id}"
    tail = f"; {more} more process(es) from it" if more else ""
    return (
        f"exec bypassed the API server (kubelet :10250, CRI or runtime on the node): {line(ev.command)} in {where}"
        f"{f' on node {t.node}' if t.node else ''}, with no pods/exec, attach, ephemeral-container or Docker exec record for that"
        f" container within {window:g}s (clock skew {skew:g}s){tail}"
    )
