"""Policy dataclasses: what the file says, already validated, nothing compiled.

YAML keys are camelCase like Kubernetes objects; SCOPE_KEYS maps them to the Scope fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime

API_VERSION = "execguard/v1"
KIND = "Policy"

# allow: the actor/command is expected (guard lets it through; hunt hides its alerts)
# suppress: known noise, hidden from hunt; severity: re-rate the matching rules' hits
# deny: guard refuses what the scope matches (hunt ignores it); mode: how guard acts in a scope
# probe: execs on the node the scope matches are expected with no API-server record (a backup agent's
# crictl exec): the join (engine/join.py) does not call them bypasses
ACTIONS = ("allow", "suppress", "severity", "deny", "mode", "probe")
HIDING = frozenset({"allow", "suppress"})
# enforce: refuse; warn: let through with a warning to the client; audit: let through, record only
MODES = ("enforce", "warn", "audit")

SCOPE_KEYS = {
    "rules": "rules",
    "users": "users",
    "groups": "groups",
    "serviceAccounts": "service_accounts",
    "namespaces": "namespaces",
    "pods": "pods",
    "containers": "containers",
    "images": "images",
    "commands": "commands",
    "commandRegex": "command_regex",
    "sourceIPs": "source_ips",
    "labels": "labels",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Each field is a list of alternatives (any may match); every field given must match."""

    rules: tuple[str, ...] = ()  # globs over the rule id (the Sigma name)
    users: tuple[str, ...] = ()  # globs over the authenticated user
    groups: tuple[str, ...] = ()  # globs; any of the actor's groups
    service_accounts: tuple[str, ...] = ()  # NAMESPACE/NAME globs, from system:serviceaccount:NS:NAME
    namespaces: tuple[str, ...] = ()
    pods: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()  # globs over the argv joined with spaces
    command_regex: tuple[str, ...] = ()  # regular expressions searched in the joined argv
    source_ips: tuple[str, ...] = ()  # addresses or CIDRs; every one of the actor's source IPs (X-Forwarded-For is forgeable)
    labels: tuple[str, ...] = ()  # KEY=VALUE globs over the pod's labels (guard only: logged events carry no labels)

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    action: str  # one of ACTIONS
    reason: str
    scope: Scope
    severity: str | None = None  # the new level, for action: severity
    expires: date | datetime | None = None
    line: int = 0  # where the entry starts in the file
    mode: str | None = None  # deny and mode entries: enforce | warn | audit

    def expired(self, now: datetime) -> bool:
        """A date is the last day the entry applies (UTC); a datetime is the instant it stops."""
        if self.expires is None:
            return False
        if isinstance(self.expires, datetime):
            when = self.expires if self.expires.tzinfo else self.expires.replace(tzinfo=UTC)
            return now >= when
        return now.astimezone(UTC).date() > self.expires


@dataclass(frozen=True, slots=True)
class Policy:
    entries: tuple[Entry, ...] = ()
    file: str = ""
    name: str | None = None

    def expired(self, now: datetime) -> list[Entry]:
        return [e for e in self.entries if e.expired(now)]
