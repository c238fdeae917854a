"""The decision core both guards share: a request becomes an Event, the built-in rules rate it, the policy decides.

Order (docs/guard.md): a live break-glass approval for the user (and namespace) allows; otherwise the
first `deny` entry whose scope (and `rules`, when given) matches denies; otherwise hits that an `allow`
entry covers are set aside and the rest, when the most severe is at or above the deny level (high by
default), deny as "the rules". The mode (enforce | warn | audit) of a deny comes from the deny entry,
else the first `mode` entry whose scope matches, else the guard's default. Only enforce refuses.
Stateless and thread-safe once built: the Docker plugin and the admission webhook call ``decide`` per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import redact
from ..engine.match import Engine
from ..engine.rule import Rule
from ..model import Actor, Event, RuleMatch, SourceRef, Target, display, severity_rank
from ..policy.match import ScopeMatcher
from ..policy.model import MODES, Entry, Policy

PLATFORMS = ("docker", "k8s")
# request operation -> Event.action the rules filter on
OPERATIONS = {"exec": "exec", "attach": "attach", "create": "create", "ephemeral": "ephemeral_container", "portforward": "portforward"}
DENY_AT = "high"
HOST_PID = "guard-create-host-pid"


@dataclass(slots=True)
class Request:
    """What a guard knows about one API call before it runs."""

    platform: str  # docker | k8s
    operation: str  # exec | attach | create | ephemeral | portforward
    user: str | None = None
    groups: list[str] = field(default_factory=list)
    namespace: str | None = None
    pod: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    container: str | None = None
    image: str | None = None
    argv: list[str] = field(default_factory=list)
    privileged: bool | None = None
    mounts: list[str] = field(default_factory=list)  # "SOURCE:TARGET[:ro]" as Docker writes Binds
    run_as_user: str | None = None
    tty: bool | None = None
    stdin: bool | None = None
    host_pid: bool | None = None
    source_ip: list[str] = field(default_factory=list)
    kind: str | None = None  # Pod, Deployment, container ...
    command_origin: str | None = None  # create: container, lifecycle.postStart, livenessProbe ...
    uri: str | None = None

    def event(self) -> Event:
        """The Event the rules see: shaped like the one a log source makes for the same call."""
        action = OPERATIONS.get(self.operation, "other")
        if self.platform == "docker":
            verb = {"exec": "exec_create", "attach": "attach", "create": "create"}.get(self.operation, self.operation)
            kind, resource, subresource = self.kind or "container", None, None
        else:
            verb = {"ephemeral": "patch", "create": "create"}.get(self.operation, "create")
            kind = self.kind or "Pod"
            resource = "pods"
            subresource = {"exec": "exec", "attach": "attach", "portforward": "portforward", "ephemeral": "ephemeralcontainers"}.get(
                self.operation
            )
        origin = self.command_origin or ("container" if self.operation == "create" else None)
        return Event(
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            source=SourceRef(format=f"guard-{self.platform}"),
            actor=Actor(user=self.user, groups=list(self.groups), source_ip=list(self.source_ip)),
            action=action,
            verb=verb,
            resource=resource,
            subresource=subresource,
            request_uri=self.uri,
            target=Target(namespace=self.namespace, pod=self.pod, container=self.container, image=self.image, kind=kind),
            command=redact.argv(list(self.argv)),  # as the log sources do: secrets never reach a message or record
            command_origin=origin if self.argv else None,
            tty=self.tty,
            stdin=self.stdin,
            privileged=self.privileged,
            run_as_user=self.run_as_user,
            binds=list(self.mounts),
            outcome="unknown",  # not decided yet: rules that skip denied calls must still see it
        )


@dataclass(slots=True)
class Decision:
    allowed: bool
    mode: str  # the mode that applied: enforce | warn | audit
    rules: list[str] = field(default_factory=list)  # rule ids behind the decision, most severe first
    severity: str | None = None  # of the most severe hit
    entry: str | None = None  # policy entry that decided ("NAME (FILE:LINE)"), if any
    approval: str | None = None  # break-glass approval id that allowed it, if any
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    would_deny: bool = False  # enforce would have refused it (warn/audit let it through)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Approval:
    id: str
    user: str
    namespace: str | None
    until: datetime
    reason: str
    by: str | None = None


# user, namespace, now -> a live approval or None (guard/approvals.py reads them from the state dir)
ApprovalLookup = Callable[[str | None, str | None, datetime], Approval | None]


def _where(entry: Entry, policy: Policy) -> str:
    return f"{entry.name} ({policy.file}:{entry.line})" if policy.file else entry.name


class Decider:
    """Rules and a policy, compiled once; ``decide`` is cheap and keeps no state between calls."""

    def __init__(
        self,
        rules: list[Rule],
        policy: Policy | None = None,
        default_mode: str = "enforce",
        deny_at: str = DENY_AT,
        approvals: ApprovalLookup | None = None,
        now: datetime | None = None,
    ) -> None:
        if default_mode not in MODES:
            raise ValueError(f"mode {default_mode!r}: choose one of {', '.join(MODES)}")
        self.engine = Engine(rules)
        self.policy = policy or Policy()
        self.default_mode = default_mode
        self.deny_rank = severity_rank(deny_at)
        self.approvals = approvals
        when = now or datetime.now(UTC)
        live = [(e, ScopeMatcher(e.scope)) for e in self.policy.entries if not e.expired(when)]
        self.deny = [c for c in live if c[0].action == "deny"]
        self.allow = [c for c in live if c[0].action == "allow"]
        self.modes = [c for c in live if c[0].action == "mode"]
        self.severity = [c for c in live if c[0].action == "severity"]

    def hits(self, event: Event, host_pid: bool | None = None, labels: dict[str, str] | None = None) -> list[RuleMatch]:
        """Stateless hits (correlation and feed-only rules left out), re-rated by the policy's severity entries."""
        found = self.engine.hits(event)
        if host_pid and event.action == "create":
            # no logged event carries PidMode, so no Sigma rule can see it: the guard rates it itself
            found.append(
                RuleMatch(
                    HOST_PID,
                    "Container created in the host PID namespace",
                    "high",
                    ["T1609", "T1611"],
                    f"container {event.target.container or event.target.image} created with the host's PID namespace",
                )
            )
        out = []
        for m in found:
            if m.rule_id in self.engine.silent:
                continue
            for entry, scope in self.severity:
                if scope.rule(m.rule_id) and scope.event(event, labels) and entry.severity:
                    m = RuleMatch(m.rule_id, m.title, entry.severity, m.tags, f"{m.reason} [policy {entry.name}]")
                    break
            out.append(m)
        return sorted(out, key=lambda m: -severity_rank(m.severity))

    def _mode(self, event: Event, labels: dict[str, str]) -> tuple[str, Entry | None]:
        for entry, scope in self.modes:
            if scope.event(event, labels):
                return entry.mode or self.default_mode, entry
        return self.default_mode, None

    def decide(self, request: Request, now: datetime | None = None) -> Decision:
        return self.decide_event(request.event(), request.labels, now, request.host_pid)

    def decide_event(
        self, event: Event, labels: dict[str, str] | None = None, now: datetime | None = None, host_pid: bool | None = None
    ) -> Decision:
        labels = labels or {}
        hits = self.hits(event, host_pid, labels)
        lead = hits[0] if hits else None
        ids = [m.rule_id for m in hits]
        what = display(" ".join(event.command))[:200]
        # 1. explicit deny entries
        denial: tuple[str, list[RuleMatch], Entry | None, str] | None = None
        for deny, scope in self.deny:
            if not scope.event(event, labels):
                continue
            if scope.rules is not None:
                matched = [m for m in hits if scope.rule(m.rule_id)]
                if not matched:
                    continue
            else:
                matched = hits
            reason = f"policy entry {_where(deny, self.policy)}: {deny.reason}"
            denial = (reason, matched, deny, deny.mode or self._mode(event, labels)[0])
            break
        allowed_by: Entry | None = None
        if denial is None:
            # 2. the rules, less the hits an allow entry covers
            left = []
            for m in hits:
                by = next((e for e, s in self.allow if s.rule(m.rule_id) and s.event(event, labels)), None)
                if by is None:
                    left.append(m)
                elif allowed_by is None and severity_rank(m.severity) >= self.deny_rank:
                    allowed_by = by
            if left and severity_rank(left[0].severity) >= self.deny_rank:
                top = left[0]
                reason = f"rule {top.rule_id} ({top.severity}): {top.title}"
                mode, mode_entry = self._mode(event, labels)
                denial = (reason, [m for m in left if severity_rank(m.severity) >= self.deny_rank], mode_entry, mode)
        if denial is None:
            entry_name = _where(allowed_by, self.policy) if allowed_by else None
            return Decision(True, self.default_mode, ids, lead.severity if lead else None, entry_name, message="allowed")
        reason, matched, entry, mode = denial
        rule_ids = [m.rule_id for m in matched]
        entry_name = _where(entry, self.policy) if entry is not None else None
        # 3. break glass: an approval for this user (and namespace) overrides any denial, and says so
        if self.approvals is not None:
            approval = self.approvals(event.actor.user, event.target.namespace, now or datetime.now(UTC))
            if approval is not None:
                note = (
                    f"execguard: allowed by break-glass approval {approval.id} for {approval.user} until "
                    f"{approval.until.isoformat(timespec='seconds')} ({approval.reason}); would deny: {reason}"
                )
                return Decision(True, mode, rule_ids, lead.severity if lead else None, entry_name, approval.id, note, [note], True)
        message = f"execguard denied {event.action} of {what!r}: {reason}" if what else f"execguard denied {event.action}: {reason}"
        if mode == "enforce":
            return Decision(False, mode, rule_ids, lead.severity if lead else None, entry_name, message=message, would_deny=True)
        warning = f"execguard ({mode} mode) would deny: {reason}"
        warnings = [warning] if mode == "warn" else []
        severity = lead.severity if lead else None
        return Decision(True, mode, rule_ids, severity, entry_name, message=warning, warnings=warnings, would_deny=True)
