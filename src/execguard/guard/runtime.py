"""A running guard's state: the rules, the policy (reloaded on SIGHUP, last good kept), approvals, the record.

Shared by the Docker plugin and the admission webhook: both build a Request and call ``decide``,
which records the decision. The Decider is swapped whole, so a request in flight finishes with the
policy it started with. It is also rebuilt hourly, so entries whose ``expires`` passes stop applying.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..engine.rule import Rule
from ..model import Event, display
from ..policy import Policy, PolicyError, load_policy
from .approvals import ApprovalStore
from .decide import Decider, Decision, Request
from .record import Recorder

REBUILD_EVERY = 3600.0


class GuardRuntime:
    def __init__(
        self,
        rules: list[Rule],
        recorder: Recorder,
        policy_path: Path | None = None,
        default_mode: str = "enforce",
        deny_at: str = "high",
        approvals: ApprovalStore | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.rules = rules
        self.recorder = recorder
        self.policy_path = policy_path
        self.default_mode = default_mode
        self.deny_at = deny_at
        self.approvals = approvals
        self.warn = warn or (lambda _msg: None)
        self._lock = threading.Lock()
        # the first load raises PolicyError: a guard must not start on a policy it cannot read
        self.policy = load_policy(policy_path) if policy_path else Policy()
        self.decider = self._build(self.policy)

    def _build(self, policy: Policy) -> Decider:
        self._built = time.monotonic()
        lookup = self.approvals.lookup if self.approvals else None
        return Decider(self.rules, policy, self.default_mode, self.deny_at, lookup)

    def reload(self) -> bool:
        """Re-read the policy file; on any problem keep the last good policy and say why."""
        if self.policy_path is None:
            return True
        try:
            policy = load_policy(self.policy_path)
        except PolicyError as exc:
            for line in exc.lines():
                self.warn(f"policy reload refused, the last good policy stays in force: {line}")
            self.recorder.record("policy", {"file": str(self.policy_path), "loaded": False, "problems": exc.lines()})
            return False
        decider = self._build(policy)
        with self._lock:
            self.policy, self.decider = policy, decider
        self.recorder.record("policy", {"file": str(self.policy_path), "loaded": True, "entries": len(policy.entries)})
        return True

    def current(self) -> Decider:
        if time.monotonic() - self._built > REBUILD_EVERY:
            decider = self._build(self.policy)
            with self._lock:
                self.decider = decider
        return self.decider

    def decide(self, request: Request, extra: dict[str, Any] | None = None) -> Decision:
        event = request.event()
        decision = self.current().decide_event(event, request.labels, datetime.now(UTC), request.host_pid)
        self.recorder.record("decision", {**describe(request, event), **decision.to_dict(), **(extra or {})})
        return decision


def describe(request: Request, ev: Event) -> dict[str, Any]:
    """What a decision record says about the request: who, where, what (the event's argv is redacted); never the environment."""
    return {
        "platform": request.platform,
        "operation": request.operation,
        "user": request.user,
        "groups": request.groups,
        "namespace": request.namespace,
        "pod": request.pod,
        "container": request.container,
        "image": request.image,
        "command": ev.command,
        "command_display": display(" ".join(ev.command)),
        "privileged": request.privileged,
        "mounts": request.mounts,
        "host_pid": request.host_pid,
        "uri": request.uri,
    }
