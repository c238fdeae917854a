"""One AdmissionReview in, one AdmissionReview out: the webhook's logic without the HTTP around it.

Each command a request would run is judged on its own (a Deployment with a benign app container and
a miner in a postStart hook is denied for the hook); the request is refused when any judgement refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import k8s
from ..model import Event, display
from . import k8s_request
from .k8s_request import Facts

API_VERSION = "admission.k8s.io/v1"
# the API server passes warnings to the client; it may truncate ones over 256 characters, kubectl prints each on a line
WARNING_CHARS = 256
MAX_WARNINGS = 8
MESSAGE_CHARS = 1024


class Verdict(Protocol):
    """What a decider returns per event (guard/decide.py's Decision)."""

    allowed: bool
    message: str
    warnings: list[str]
    rules: list[str]
    entry: str | None


# event, pod labels -> verdict
Judge = Callable[[Event, dict[str, str]], Verdict]


@dataclass(slots=True)
class Outcome:
    """The answer and what to log about it."""

    facts: Facts | None
    allowed: bool
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    judged: int = 0  # events the decider saw
    note: str = ""  # why the request was not judged (unknown kind, nothing to run)

    def response(self) -> dict[str, Any]:
        """The AdmissionReview answer: apiVersion/kind as the API server requires, uid echoed."""
        body: dict[str, Any] = {"uid": self.facts.uid if self.facts else "", "allowed": self.allowed}
        if not self.allowed:
            body["status"] = {"code": 403, "reason": "Forbidden", "message": self.message[:MESSAGE_CHARS]}
        if self.warnings:
            body["warnings"] = self.warnings
        return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": body}

    def log_line(self) -> str:
        what = self.facts.what() if self.facts else "-"
        verdict = "allowed" if self.allowed else "denied"
        tail = self.message if not self.allowed else (self.note or (self.warnings[0] if self.warnings else ""))
        uid = self.facts.uid if self.facts else "-"
        dry = " (dry run)" if self.facts and self.facts.dry_run else ""
        return f"admission {uid} {verdict}{dry}: {what}" + (f": {tail}" if tail else "")


def pod_labels(request: dict[str, Any], f: Facts) -> dict[str, str]:
    """Labels of the pod a request runs in or creates (a workload: its template's); a CONNECT carries none."""
    obj = request.get("object")
    if not isinstance(obj, dict) or f.operation == "CONNECT":
        return {}
    path = _template_meta(f.resource)
    meta: Any = obj
    for key in path:
        meta = meta.get(key) if isinstance(meta, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items() if isinstance(v, (str, int, float, bool))}


def _template_meta(resource: str) -> tuple[str, ...]:
    """Where the pod's metadata sits: the spec path of sources/k8s.BY_RESOURCE with 'spec' swapped for 'metadata'."""
    spec = k8s.BY_RESOURCE.get(resource, ("Pod", ("spec",)))[1]
    return (*spec[:-1], "metadata")


def review(body: Any, judge: Judge) -> Outcome:
    """The outcome for a parsed AdmissionReview body; RequestError when it is not one (the server answers 400)."""
    request = k8s_request.parse_review(body)
    f = k8s_request.facts(request)
    if f.controller and f.resource in k8s.BY_RESOURCE:
        return Outcome(f, True, note=f"not judged: written by a controller for {f.controller}, judged at that owner's write")
    if not k8s_request.judged(f):
        return Outcome(f, True, note=f"not judged ({f.kind or 'no kind'} {f.operation or 'no operation'}): allowed")
    evs = k8s_request.events(request, f)
    if not evs:
        return Outcome(f, True, note="no command to judge")
    labels = pod_labels(request, f)
    denials: list[str] = []
    warnings: list[str] = []
    for ev in evs:
        verdict = judge(ev, labels)
        text = _message(verdict, ev)
        if not verdict.allowed:
            denials.append(text)
        warnings.extend(w[:WARNING_CHARS] for w in verdict.warnings)
    warnings = list(dict.fromkeys(warnings))[:MAX_WARNINGS]
    if denials:
        return Outcome(f, False, "; ".join(dict.fromkeys(denials)), warnings, len(evs))
    return Outcome(f, True, "", warnings, len(evs))


def _message(verdict: Verdict, ev: Event) -> str:
    """The decider's message, with the rules and the policy entry named when it does not name them, and where."""
    text = verdict.message
    extra = []
    if verdict.rules and not any(r in text for r in verdict.rules):
        extra.append(f"rules hit: {', '.join(verdict.rules[:3])}")
    if verdict.entry and verdict.entry not in text:
        extra.append(f"policy entry {verdict.entry}")
    if ev.command_origin and ev.command_origin != "container":
        extra.append(f"in {ev.command_origin}")
    if ev.target.container:
        extra.append(f"container {display(ev.target.container)}")
    return text + (f" ({'; '.join(extra)})" if extra else "")
