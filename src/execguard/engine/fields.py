"""The flat field view rules match on (docs/fields.md), built lazily from an Event.

A field is computed the first time something reads it and kept for the rest of the event, so
an event costs only the fields its candidate rules read: the base64 decoding behind
``command.text`` runs for events a rule asks about the command, once, not per hit.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from ..decode import command_text, decoded_blobs
from ..model import SHELLS, Event, Process, RbacChange

_MISSING = object()


class Lookup(Protocol):
    """Anything reasons and correlations read fields from: a FieldView, an Overlay or a plain dict."""

    def get(self, name: str, default: Any = None, /) -> Any: ...


def _argv0(e: Event) -> str | None:
    return posixpath.basename(e.command[0]) if e.command else None


def _rbac(get: Callable[[RbacChange], Any]) -> Callable[[Event], Any]:
    return lambda e: get(e.rbac) if e.rbac is not None else None


def _process(get: Callable[[Process], Any]) -> Callable[[Event], Any]:
    return lambda e: get(e.process) if e.process is not None else None


def _parent_argv0(p: Process) -> str | None:
    first = p.parent_command[0] if p.parent_command else p.parent_exe
    return posixpath.basename(first) if first else None


def _rbac_name(r: RbacChange) -> str | None:
    return f"{r.namespace}/{r.name}" if r.namespace and r.name else r.name


# Fields computed from the event alone. The command.* fields that need each other are in _VIEWED.
_PLAIN: dict[str, Callable[[Event], Any]] = {
    "time": lambda e: e.time,
    "source.format": lambda e: e.source.format,
    "source.file": lambda e: e.source.file,
    "source.line": lambda e: e.source.line,
    "actor.user": lambda e: e.actor.user,
    "actor.groups": lambda e: e.actor.groups,
    "actor.source_ip": lambda e: e.actor.source_ip,
    "actor.user_agent": lambda e: e.actor.user_agent,
    "actor.impersonated_user": lambda e: e.actor.impersonated_user,
    "actor.kind": lambda e: e.actor.kind,
    "actor.principals": lambda e: e.actor.principals(),
    "actor.credential_pod": lambda e: e.actor.credential_pod,
    "action": lambda e: e.action,
    "verb": lambda e: e.verb,
    "resource": lambda e: e.resource,
    "subresource": lambda e: e.subresource,
    "request_uri": lambda e: e.request_uri,
    "stage": lambda e: e.stage,
    "target.cluster": lambda e: e.target.cluster,
    "target.namespace": lambda e: e.target.namespace,
    "target.pod": lambda e: e.target.pod,
    "target.container": lambda e: e.target.container,
    "target.container_id": lambda e: e.target.container_id,
    "target.image": lambda e: e.target.image,
    "target.node": lambda e: e.target.node,
    "target.kind": lambda e: e.target.kind,
    "command": lambda e: e.command,
    "command.present": lambda e: bool(e.command),
    "command.argv0": _argv0,
    "command.line": lambda e: " ".join(e.command),
    "command.decoded": lambda e: decoded_blobs(e.command),
    "command.text": lambda e: None,  # placeholder for the order; computed in FieldView.get from line and decoded
    "command.shell": lambda e: (a in SHELLS) if (a := _argv0(e)) else False,
    "command.origin": lambda e: e.command_origin,
    "command.body_conflict": lambda e: e.command_body,
    "tty": lambda e: e.tty,
    "stdin": lambda e: e.stdin,
    "privileged": lambda e: e.privileged,
    "run_as_user": lambda e: e.run_as_user,
    "binds": lambda e: e.binds,
    "outcome": lambda e: e.outcome,
    "code": lambda e: e.code,
    "event_id": lambda e: e.event_id,
    "process.pid": _process(lambda p: p.pid),
    "process.ppid": _process(lambda p: p.ppid),
    "process.exe": _process(lambda p: p.exe),
    "process.cwd": _process(lambda p: p.cwd),
    "process.uid": _process(lambda p: p.uid),
    "process.parent_exe": _process(lambda p: p.parent_exe),
    "process.parent_argv0": _process(_parent_argv0),
    "process.parent_command": _process(lambda p: " ".join(p.parent_command)),
    "process.exec_id": _process(lambda p: p.exec_id),
    "process.in_init_tree": _process(lambda p: p.in_init_tree),
    "process.known": _process(lambda p: p.known or None),
    "rbac.kind": _rbac(lambda r: r.kind),
    "rbac.name": _rbac(_rbac_name),
    "rbac.role": _rbac(lambda r: r.role_ref),
    "rbac.subjects": _rbac(lambda r: r.subjects),
    "rbac.principals": _rbac(lambda r: r.principals),
    "rbac.subject_class": _rbac(lambda r: r.subject_classes),
    "rbac.capabilities": _rbac(lambda r: r.capabilities),
    "rbac.known": _rbac(lambda r: r.known),
}

# Every name a rule may match on, listed in docs/fields.md (a test keeps them equal).
FIELDS: tuple[str, ...] = tuple(_PLAIN)
RBAC_FIELDS: tuple[str, ...] = tuple(n for n in FIELDS if n.startswith("rbac."))


def _key(value: Any) -> Hashable:
    return tuple(value) if value.__class__ is list else value


def _command_key(e: Event) -> Hashable:
    return tuple(e.command)


# What a field's value depends on, cheaper to get than the value: every command.* field is a
# function of the argv, so a memo can key on the argv without decoding or joining it.
def _basis(get: Callable[[Event], Any]) -> Callable[[Event], Hashable]:
    return lambda e: _key(get(e))


BASIS: dict[str, Callable[[Event], Hashable]] = {name: _basis(get) for name, get in _PLAIN.items()}
for _name in ("command", "command.present", "command.argv0", "command.line", "command.decoded", "command.text", "command.shell"):
    BASIS[_name] = _command_key
BASIS_GROUP = {name: ("command" if fn is _command_key else name) for name, fn in BASIS.items()}

# The same for the fields that are an attribute of the event (path for operator.attrgetter), so a
# whole key can be read in one C call; list-valued ones are turned into tuples after.
ATTRS: dict[str, str] = {
    "time": "time", "source.format": "source.format", "source.file": "source.file", "source.line": "source.line",
    "actor.user": "actor.user", "actor.groups": "actor.groups", "actor.source_ip": "actor.source_ip",
    "actor.user_agent": "actor.user_agent", "actor.impersonated_user": "actor.impersonated_user",
    "actor.kind": "actor.kind", "actor.credential_pod": "actor.credential_pod", "action": "action", "verb": "verb",
    "resource": "resource", "subresource": "subresource", "request_uri": "request_uri", "stage": "stage",
    "target.cluster": "target.cluster", "target.namespace": "target.namespace", "target.pod": "target.pod",
    "target.container": "target.container", "target.container_id": "target.container_id",
    "target.image": "target.image", "target.node": "target.node", "target.kind": "target.kind",
    "command": "command", "command.origin": "command_origin", "command.body_conflict": "command_body", "tty": "tty",
    "stdin": "stdin", "privileged": "privileged", "run_as_user": "run_as_user", "binds": "binds",
    "outcome": "outcome", "code": "code", "event_id": "event_id",
}  # fmt: skip
LISTS = frozenset({"actor.groups", "actor.source_ip", "command", "command.body_conflict", "binds"})


class FieldView:
    """The fields of one event, each computed on first read. ``get`` is what matchers and reasons use."""

    __slots__ = ("_fold", "_gate", "_lower", "_text", "event", "shown", "values")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.values: dict[str, Any] = {}
        # per-field derived forms the matchers share within one event
        self._lower: dict[str, list[str]] = {}
        self._text: dict[str, list[str]] = {}
        self._fold: dict[str, list[str]] = {}
        self._gate: dict[str, list[str]] = {}
        self.shown: dict[Any, str] = {}  # placeholders of reasons as rendered (engine/reason.py)

    def get(self, name: str, default: Any = None, /) -> Any:
        value = self.values.get(name, _MISSING)
        if value is _MISSING:
            if name == "command.text":
                value = command_text(self.get("command.line"), self.get("command.decoded"))
            else:
                fn = _PLAIN.get(name)
                if fn is None:
                    return default
                value = fn(self.event)
            self.values[name] = value
        return value

    def __getitem__(self, name: str) -> Any:
        if name not in _PLAIN:
            raise KeyError(name)
        return self.get(name)

    def flat(self) -> dict[str, Any]:
        """Every field, in the documented order."""
        return {name: self.get(name) for name in FIELDS}

    def values_of(self, name: str) -> list[Any]:
        value = self.get(name)
        if value is None:
            return []
        if value.__class__ is list:
            return value
        return [value]

    def lowered(self, name: str) -> list[str]:
        """The field's values as lower-case strings."""
        got = self._lower.get(name)
        if got is None:
            got = self._lower[name] = [(v if isinstance(v, str) else scalar(v)).lower() for v in self.values_of(name)]
        return got

    def texts(self, name: str) -> list[str]:
        """The field's non-boolean values as strings."""
        got = self._text.get(name)
        if got is None:
            got = self._text[name] = [v if isinstance(v, str) else str(v) for v in self.values_of(name) if not isinstance(v, bool)]
        return got

    def folded(self, name: str, fold: Callable[[str], str]) -> list[str]:
        """``texts`` case-folded, for IGNORECASE literal tests."""
        got = self._fold.get(name)
        if got is None:
            got = self._fold[name] = [fold(t) for t in self.texts(name)]
        return got

    def gate_texts(self, name: str, fold: Callable[[str], str]) -> list[str]:
        """``lowered`` case-folded, for rule gates."""
        got = self._gate.get(name)
        if got is None:
            got = self._gate[name] = [fold(s) for s in self.lowered(name)]
        return got


class Overlay:
    """A view with a few more names on top (a correlation's count and window), for reasons."""

    __slots__ = ("extra", "view")

    def __init__(self, view: Lookup, extra: dict[str, Any]) -> None:
        self.view = view
        self.extra = extra

    def get(self, name: str, default: Any = None, /) -> Any:
        if name in self.extra:
            return self.extra[name]
        return self.view.get(name, default)


def scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def flat_fields(event: Event) -> dict[str, Any]:
    """All fields of an event as a plain dict (what rules see; docs/fields.md)."""
    return FieldView(event).flat()
