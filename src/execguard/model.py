"""The one normalized Event every source produces, and the Alert the engine emits.

Field names here are the contract between sources and rules: rules only name the
flat field names of engine/fields.py (documented in docs/fields.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox", "pwsh", "powershell", "cmd", "cmd.exe"})

# Actions an event can carry; rules filter on them and sources map them to raw literals.
ACTIONS = (
    "exec",  # pods/exec or docker exec
    "attach",  # pods/attach or docker attach
    "ephemeral_container",  # pods/ephemeralcontainers patch/update (kubectl debug)
    "kubelet_run",
    "kubelet_exec",
    "kubelet_attach",
    "kubelet_portforward",
    "kubelet_cri",
    "kubelet_other",  # nodes/proxy reconnaissance: /pods, /runningpods, /logs ...
    "portforward",
    "create",  # pod/controller/container created or changed with a command
    "runtime_exec",  # the container runtime started an exec process (containerd /tasks/exec-started), whoever asked
    "process",  # a process started in a container, seen by node telemetry (Tetragon, Falco, auditd, KubeArmor)
    "rbac",  # Role/ClusterRole/RoleBinding/ClusterRoleBinding created or changed (event.rbac)
    "discovery",  # secrets read, pods listed, access reviews: what a stolen token does before an exec
    "other",
)

SEVERITIES = ("info", "low", "medium", "high", "critical")


# characters that do not print as themselves: C0/C1 controls and DEL (terminal escapes), Unicode
# format characters (bidi embeddings, overrides and isolates, zero-width spaces and joiners, BOM,
# tag characters), line/paragraph separators and lone surrogates; one group, for split
_HIDDEN = re.compile(
    "([\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f])"
)


def _escape(ch: str) -> str:
    if ch == "\n":
        return "\\n"
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# split keeps the group: every odd piece is one character to escape, escaped by a look-up for the controls
# (a multi-line command in a reason has dozens) instead of a call back per match
_ESCAPES = {chr(code): _escape(chr(code)) for code in (*range(0x20), *range(0x7F, 0xA0))}


def display(value: str) -> str:
    """Text from a log made safe to show: every control, bidi or invisible character as an escape.

    A command cannot then reorder or hide part of itself (U+202E), clear the screen (ESC) or look
    like another command (zero-width space). Backslashes are left alone.
    """
    if value.isascii() and value.isprintable():
        return value
    parts = _HIDDEN.split(value)
    parts[1::2] = [_ESCAPES.get(ch) or _escape(ch) for ch in parts[1::2]]
    return "".join(parts)


_RANKS = {level: i for i, level in enumerate(SEVERITIES)}


def severity_rank(level: str) -> int:
    return _RANKS.get(level, 0)


class Rated(Protocol):
    severity: str


def match_rank(match: Rated) -> int:
    """``severity_rank`` of a rule match (or rule): the sort key of the hot paths that rank an alert's matches."""
    return _RANKS.get(match.severity, 0)


@dataclass(slots=True)
class SourceRef:
    format: str = ""
    file: str = ""
    line: int | None = None


def _principals(user: str, groups: tuple[str, ...]) -> tuple[str, ...]:
    implied: list[str] = []
    if user == "system:anonymous":
        implied = ["system:unauthenticated"]
    elif user:
        implied = ["system:authenticated"]
        if user.startswith("system:serviceaccount:") and user.count(":") == 3:
            implied += ["system:serviceaccounts", f"system:serviceaccounts:{user.split(':')[2]}"]
    return tuple(dict.fromkeys([*([user] if user else []), *groups, *implied]))


_PRINCIPALS: dict[tuple[str | None, tuple[str, ...]], tuple[str, ...]] = {}
_PRINCIPALS_MAX = 4096


@dataclass(slots=True)
class Actor:
    user: str | None = None
    groups: list[str] = field(default_factory=list)
    source_ip: list[str] = field(default_factory=list)
    user_agent: str | None = None
    impersonated_user: str | None = None
    credential_pod: str | None = None  # pod a service-account token was bound to

    def principals(self) -> list[str]:
        """The user and its groups, with the groups the API server always adds (GKE records no groups)."""
        # rules read this for nearly every event and the same few identities come back all day: built once per
        # user and groups (bounded), a fresh list each call
        key = (self.user, tuple(self.groups))
        got = _PRINCIPALS.get(key)
        if got is None:
            if len(_PRINCIPALS) >= _PRINCIPALS_MAX:
                _PRINCIPALS.clear()
            got = _PRINCIPALS[key] = _principals(self.user or "", key[1])
        return list(got)

    @property
    def kind(self) -> str:
        """anonymous | service_account | node | system | user | unknown."""
        user = self.user or ""
        if user == "system:anonymous" or "system:unauthenticated" in self.groups:
            return "anonymous"
        if user.startswith("system:serviceaccount:"):
            return "service_account"
        if user.startswith("system:node:"):
            return "node"
        if user.startswith("system:"):
            return "system"
        return "user" if user else "unknown"


@dataclass(slots=True)
class Target:
    cluster: str | None = None
    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    container_id: str | None = None
    image: str | None = None
    node: str | None = None
    kind: str | None = None  # Pod, Deployment, container ...


@dataclass(slots=True)
class Process:
    """A process on the node (runtime exec and process telemetry); the argv is ``Event.command``."""

    pid: int | None = None
    ppid: int | None = None
    exe: str | None = None  # path of the binary
    cwd: str | None = None
    uid: int | None = None
    parent_exe: str | None = None
    parent_command: list[str] = field(default_factory=list)
    exec_id: str | None = None  # the runtime's exec id (containerd, Docker)
    in_init_tree: bool | None = None  # a descendant of the container's first process (not an exec)
    known: str = ""  # why the argv is missing or partial ("process exited before it was read")


@dataclass(slots=True)
class RbacChange:
    """What an RBAC write carries (sources/k8s_rbac.py); the engine completes ``capabilities`` from roles seen earlier."""

    kind: str  # Role | ClusterRole | RoleBinding | ClusterRoleBinding
    name: str | None = None
    namespace: str | None = None
    rules: list[dict[str, Any]] | None = None  # PolicyRules in the request; None: not in the log
    labels: dict[str, str] = field(default_factory=dict)
    selectors: list[dict[str, Any]] = field(default_factory=list)  # aggregationRule.clusterRoleSelectors
    role_ref: str | None = None  # bindings: "ClusterRole/NAME" or "Role/NAME"
    subjects: list[str] = field(default_factory=list)  # "ServiceAccount ns/name", "Group system:authenticated" ...
    principals: list[str] = field(default_factory=list)  # the same as user or group names ("system:serviceaccount:ns:name")
    subject_classes: list[str] = field(default_factory=list)  # anonymous, all_authenticated, default_service_account ...
    capabilities: list[str] = field(default_factory=list)  # exec-family capabilities granted
    known: str = ""  # how the capabilities are known: the rules in the request, a built-in role, a role seen at FILE:LINE


@dataclass(slots=True)
class Event:
    time: str | None = None
    source: SourceRef = field(default_factory=SourceRef)
    actor: Actor = field(default_factory=Actor)
    action: str = "other"
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None
    request_uri: str | None = None
    stage: str | None = None
    target: Target = field(default_factory=Target)
    command: list[str] = field(default_factory=list)
    # where a create-time command runs: container (entrypoint), lifecycle.postStart, livenessProbe, healthcheck ...
    command_origin: str | None = None
    # argv a request body (PodExecOptions) names when it disagrees with the URI's, which ``command`` keeps
    command_body: list[str] = field(default_factory=list)
    tty: bool | None = None
    stdin: bool | None = None
    privileged: bool | None = None
    run_as_user: str | None = None
    binds: list[str] = field(default_factory=list)
    outcome: str = "unknown"  # allowed | denied | error | unknown
    code: int | None = None
    event_id: str | None = None
    raw: str | None = None  # short reference to the record: file:line or an id
    rbac: RbacChange | None = None  # action "rbac" only
    process: Process | None = None  # actions "runtime_exec" and "process"


@dataclass(slots=True)
class RuleMatch:
    rule_id: str
    title: str
    severity: str
    tags: list[str]
    reason: str


@dataclass(slots=True)
class Alert:
    """One alert per event: the most severe rule leads, the others are listed."""

    event: Event
    matches: list[RuleMatch]
    suppressed: str | None = None  # "entry: reason" of the policy entry that hid it (hunt --show-suppressed)
    # other records of the same action in another source (docker events and the dockerd log)
    also_seen: list[SourceRef] = field(default_factory=list)
    # the join (engine/join.py): the processes and runtime execs this alert's exec caused, each carrying
    # the identity of the API-server record that asked for it; their own rule hits are in ``matches``
    covers: list[Event] = field(default_factory=list)

    @property
    def lead(self) -> RuleMatch:
        return max(self.matches, key=match_rank)

    @property
    def severity(self) -> str:
        return self.lead.severity
