"""execguard's normalized fields (docs/fields.md) rewritten as the fields of a raw Kubernetes audit event.

A SIEM holds the audit event as the API server wrote it, not execguard's Event: `action: exec` is
`objectRef.resource: pods` and `objectRef.subresource: exec` there, `outcome: denied` is response code 401
or 403, and the decoded argv only exists inside the URL-encoded `requestURI`. `ExpandFields` is a pySigma
transformation that replaces each detection item on one of our fields by the detection on audit fields
that holds the same test, or fails the rule with the reason it cannot be said there. The audit field
names used here are the audit JSON paths; each target's pipeline then maps them to its own names.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from sigma.conditions import ConditionOR
from sigma.exceptions import SigmaTransformationError
from sigma.modifiers import SigmaContainsModifier, SigmaStartswithModifier
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaNull, SigmaString, SpecialChars

# Our fields that are the audit event's own, under another name.
PLAIN: dict[str, str] = {
    "verb": "verb",
    "resource": "objectRef.resource",
    "subresource": "objectRef.subresource",
    "request_uri": "requestURI",
    "stage": "stage",
    "code": "responseStatus.code",
    "event_id": "auditID",
    "actor.user": "user.username",
    "actor.groups": "user.groups",
    "actor.source_ip": "sourceIPs",
    "actor.user_agent": "userAgent",
    "actor.impersonated_user": "impersonatedUser.username",
}

# What each action is in the audit event. None: the action is derived from more than the event's own
# fields can say in one search (a pod spec's containers, an RBAC object's rules, list-after-get patterns).
_KUBELET = {"resource": "nodes", "subresource": "proxy"}
ACTIONS: dict[str, list[dict[str, str]] | None] = {
    "exec": [{"resource": "pods", "subresource": "exec"}],
    "attach": [{"resource": "pods", "subresource": "attach"}],
    "portforward": [{"resource": "pods", "subresource": "portforward"}],
    "ephemeral_container": [{"resource": "pods", "subresource": "ephemeralcontainers"}],
    "kubelet_run": [{**_KUBELET, "uri": "/proxy/run/"}],
    "kubelet_exec": [{**_KUBELET, "uri": "/proxy/exec/"}],
    "kubelet_attach": [{**_KUBELET, "uri": "/proxy/attach/"}],
    "kubelet_portforward": [{**_KUBELET, "uri": "/proxy/portForward/"}, {**_KUBELET, "uri": "/proxy/portforward/"}],
    "kubelet_cri": [{**_KUBELET, "uri": "/proxy/cri/"}],
    "kubelet_other": None,
    "create": None,
    "rbac": None,
    "discovery": None,
    "runtime_exec": None,
    "process": None,
    "other": None,
}
ACTION_WHY = {
    "kubelet_other": "every other nodes/proxy path (a negation of the kubelet paths)",
    "create": "a command inside a created pod or workload spec (requestObject)",
    "rbac": "RBAC writes are judged by the capabilities their rules grant",
    "discovery": "discovery is a set of list/get patterns on collection URIs",
    "runtime_exec": "containerd events are not in the Kubernetes audit log",
    "process": "node process telemetry is not in the Kubernetes audit log",
    "other": "'other' is whatever no other action matched",
}

# Fields the raw audit event does not hold, with the reason (checked before a generic message).
DERIVED_WHY = {
    "command.argv0": "the base name of argv[0] is derived from the decoded argv",
    "command.shell": "'argv[0] is a shell' is derived from the decoded argv",
    "command.decoded": "base64 payloads are decoded by execguard",
    "command.origin": "which part of a pod spec runs a command is derived from requestObject",
    "command.body_conflict": "the argv of a request body compared with the URI's",
    "command.present": "whether a command was recorded is derived",
    "actor.principals": "the principals are derived from the user, its groups and implied groups",
    "actor.credential_pod": "the pod of a bound token is in user.extra under a key with dots and a slash, named differently by each target",
    "actor.kind": "only anonymous, service_account and node are prefixes of the user name",
    "privileged": "privileged is derived from a pod spec or a Docker exec",
    "run_as_user": "a Docker exec field",
    "binds": "a Docker create field",
    "target.container": "the container is a URI parameter",
    "target.node": "the node of a nodes/proxy call is part of the URI path",
    "target.image": "the image is inside a pod spec",
    "target.kind": "the kind created is derived",
    "target.cluster": "the cluster name is not in the audit event",
    "target.container_id": "a Docker field",
}

# The audit fields the expansions write (and a target maps); a rule may also name them directly.
RAW = sorted({*PLAIN.values(), "objectRef.resource", "objectRef.subresource", "objectRef.namespace", "objectRef.name", "requestURI",
              "responseStatus.code", "user.username"})

KINDS = {
    "anonymous": ("", "system:anonymous"),
    "service_account": ("startswith", "system:serviceaccount:"),
    "node": ("startswith", "system:node:"),
}
COMMAND_FIELDS = ("command", "command.line", "command.text")


@dataclass
class Unexportable(Exception):
    field: str
    why: str

    def __str__(self) -> str:
        return f"{self.field}: {self.why}"


def _plain(item: SigmaDetectionItem) -> list[str]:
    """The item's values as plain strings, when it has no modifier and no wildcard."""
    if item.modifiers:
        raise Unexportable(item.field or "", "a modifier on a derived field: " + ", ".join(m.__name__ for m in item.modifiers))
    out = []
    for v in item.value:
        if not isinstance(v, SigmaString) or v.contains_special():
            raise Unexportable(item.field or "", f"value {v!s} is not a plain string")
        out.append(str(v))
    return out


def _eq(field: str, value: str | None, modifier: str = "") -> SigmaDetectionItem:
    key = field + (f"|{modifier}" if modifier else "")
    return SigmaDetectionItem.from_mapping(key, value)


def _any(detections: list[SigmaDetection | SigmaDetectionItem]) -> SigmaDetection:
    return SigmaDetection(detections, item_linking=ConditionOR)


def action(item: SigmaDetectionItem) -> SigmaDetection:
    values = _plain(item)
    alternatives: list[SigmaDetection | SigmaDetectionItem] = []
    left = []
    for value in values:
        shapes = ACTIONS.get(value)
        if shapes is None:
            left.append(value)
            continue
        for shape in shapes:
            parts: list[SigmaDetection | SigmaDetectionItem] = [
                _eq("objectRef.resource", shape["resource"]), _eq("objectRef.subresource", shape["subresource"])]
            if "uri" in shape:
                parts.append(_eq("requestURI", shape["uri"], "contains"))
            alternatives.append(SigmaDetection(parts))
    if not alternatives:
        raise Unexportable("action", "; ".join(f"{v}: {ACTION_WHY.get(v, 'not an action')}" for v in left))
    return _any(alternatives)


def dropped_actions(values: list[str]) -> list[str]:
    """Actions of a rule's list that have no audit form (the rest of the list still exports)."""
    return [v for v in values if ACTIONS.get(v) is None]


def outcome(item: SigmaDetectionItem) -> SigmaDetection:
    alternatives: list[SigmaDetection | SigmaDetectionItem] = []
    for value in _plain(item):
        if value == "denied":  # an authorization forbid always answers 403; 401 is an unauthenticated caller
            alternatives.append(SigmaDetectionItem.from_mapping("responseStatus.code", [401, 403]))
        elif value == "allowed":
            alternatives.append(SigmaDetectionItem.from_mapping("responseStatus.code|lt", 400))
        elif value == "unknown":  # no response yet: the RequestReceived stage
            alternatives.append(SigmaDetectionItem("responseStatus.code", [], [SigmaNull()]))
        else:
            raise Unexportable("outcome", f"'{value}' (code >= 400 other than 401 and 403) needs a negation inside one value")
    return _any(alternatives)


def actor_kind(item: SigmaDetectionItem) -> SigmaDetection:
    alternatives: list[SigmaDetection | SigmaDetectionItem] = []
    for value in _plain(item):
        if value not in KINDS:
            raise Unexportable("actor.kind", f"'{value}' is what is left after the other kinds (a negation)")
        modifier, prefix = KINDS[value]
        alternatives.append(_eq("user.username", prefix, modifier))
    return _any(alternatives)


def flag(item: SigmaDetectionItem) -> SigmaDetectionItem:
    name = item.field or ""
    values = item.value
    if item.modifiers or len(values) != 1 or str(values[0]).lower() != "true":
        raise Unexportable(name, "only 'true' is a URI parameter (false is its absence or any other value)")
    return SigmaDetectionItem.from_mapping("requestURI|contains", [f"{name}=true", f"{name}=1"])


def uri_forms(text: str, base64_too: bool) -> list[str]:
    """What `text` inside one argv element, or spread over several, looks like in the request URI.

    kubectl and client-go write the argv as `command=` parameters, escaped as Go's url.QueryEscape does
    (space as '+', everything but letters, digits and -_.~ as %XX): quote_plus with no safe characters
    is the same. A space in the text may also be the gap between two argv elements (`&command=`), and
    other clients escape a space as %20. With base64_too, the three base64 forms of the text at each
    offset (Sigma's base64offset), escaped the same way, find it inside an encoded payload.
    """
    forms = [quote_plus(text, safe=""), quote(text, safe="")]
    if " " in text:
        forms.append("&command=".join(quote_plus(part, safe="") for part in text.split(" ")))
    if base64_too and len(text) >= 3:
        forms += [quote_plus(b, safe="") for b in base64_offsets(text)]
    return list(dict.fromkeys(forms))


def base64_offsets(text: str) -> list[str]:
    """The stable middle of `text` base64-encoded at offsets 0, 1 and 2 (what Sigma's base64offset gives)."""
    data = text.encode()
    start = (0, 2, 3)
    end = (None, -3, -2)
    out = []
    for i in range(3):
        encoded = base64.b64encode(i * b" " + data).decode()
        stop = end[(len(data) + i) % 3]
        out.append(encoded[start[i]:stop])
    return out


def _shape(v: object, name: str) -> tuple[str, str]:
    """('contains'|'startswith'|'equals', text) of a value: '*x*' and 'x*' are how a plain value says the first two."""
    if not isinstance(v, SigmaString):
        raise Unexportable(name, f"value {v!s} is not a string")
    parts = list(v.s)
    star = SpecialChars.WILDCARD_MULTI
    kind = "equals"
    if len(parts) == 3 and parts[0] == star and parts[2] == star:
        kind, parts = "contains", parts[1:2]
    elif len(parts) == 2 and parts[1] == star:
        kind, parts = "startswith", parts[:1]
    if any(not isinstance(p, str) for p in parts):
        raise Unexportable(name, f"wildcards inside {v!s}")
    return kind, "".join(str(p) for p in parts)


def command(item: SigmaDetectionItem) -> SigmaDetectionItem:
    name = item.field or ""
    mods = set(item.modifiers)
    if mods - {SigmaContainsModifier, SigmaStartswithModifier}:
        raise Unexportable(name, "a regular expression or other modifier over the decoded argv: the raw requestURI holds it "
                                 "URL-encoded, so the same test cannot be written on it")
    forms = []
    for v in item.value:
        # the modifiers have already turned contains/startswith values into '*x*' and 'x*'
        kind, text = _shape(v, name)
        if kind == "contains":
            forms += uri_forms(text, base64_too=name == "command.text")
        elif kind == "startswith" and name in ("command.line", "command.text"):
            # the first argv element opens the command parameters
            forms += [f"command={f}" for f in uri_forms(text, base64_too=False)]
        else:
            raise Unexportable(name, f"'{v!s}': an exact or prefix test on one argv element cannot be told apart "
                                     "in the URL-encoded requestURI")
    return SigmaDetectionItem.from_mapping("requestURI|contains", list(dict.fromkeys(forms)))


KUBELET_PATHS = ("run", "exec", "attach", "portForward", "portforward")


def where(item: SigmaDetectionItem) -> SigmaDetection:
    """target.namespace / target.pod: objectRef for pods/*, the URI path /proxy/VERB/NS/POD/... for kubelet calls."""
    name = item.field or ""
    audit = "objectRef.namespace" if name == "target.namespace" else "objectRef.name"
    alternatives: list[SigmaDetection | SigmaDetectionItem] = []
    for v in item.value:
        kind, text = _shape(v, name)
        if kind == "contains" and name == "target.namespace":
            raise Unexportable(name, "a part of a namespace cannot be found in the kubelet URI path")
        alternatives.append(SigmaDetectionItem(audit, [], [v]))
        # the namespace is one path segment; the pod follows it ('*' may also span a segment: a little broader)
        for verb in KUBELET_PATHS:
            if name == "target.namespace":
                alternatives.append(_eq("requestURI", f"/proxy/{verb}/{text}/", "contains"))
            else:
                tail = {"equals": f"/{text}/*", "startswith": f"/{text}*", "contains": f"{text}*"}[kind]
                alternatives.append(SigmaDetectionItem("requestURI", [], [SigmaString(f"*/proxy/{verb}/*{tail}")]))
    return _any(alternatives)


def expand(item: SigmaDetectionItem) -> SigmaDetection | SigmaDetectionItem | None:
    """The audit-field form of one detection item (None: a plain field, left to the mapping), or Unexportable."""
    name = item.field
    if name is None:
        raise Unexportable("keywords", "a keyword search has no field to map")
    if name in PLAIN or name in RAW:
        return None  # the target's field mapping renames it
    if name == "action":
        return action(item)
    if name == "outcome":
        return outcome(item)
    if name == "actor.kind":
        return actor_kind(item)
    if name in ("target.namespace", "target.pod"):
        return where(item)
    if name in ("tty", "stdin"):
        return flag(item)
    if name in COMMAND_FIELDS:
        return command(item)
    if name in DERIVED_WHY:
        raise Unexportable(name, DERIVED_WHY[name])
    raise Unexportable(name, "not a field of the Kubernetes audit event")


class ExpandFields(DetectionItemTransformation):
    """pySigma transformation: our fields to raw audit fields; a field with no audit form fails the rule."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetection | SigmaDetectionItem | None:
        try:
            return expand(detection_item)
        except Unexportable as exc:
            raise SigmaTransformationError(str(exc)) from None
