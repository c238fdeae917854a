"""A rule's reason: a template whose {field} placeholders are filled from the event's fields."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .checks import PLACEHOLDER
from .fields import FIELDS, FieldView, Lookup


def _where(fields: Lookup) -> str:
    """Where a command ran, in whatever terms the source knows (pod, container, node)."""
    ns, pod, ctr = fields.get("target.namespace"), fields.get("target.pod"), fields.get("target.container")
    parts = []
    if pod:
        parts.append(f"{ns}/{pod}" if ns else str(pod))
    elif ns:
        parts.append(f"namespace {ns}")
    if ctr:
        parts.append(f"container {ctr}")
    elif fields.get("target.container_id"):
        parts.append(f"container {str(fields.get('target.container_id'))[:12]}")
    origin = fields.get("command.origin")
    if origin and origin != "container":
        parts.append(f"[{origin}]")  # a hook or probe command, not the entrypoint
    if fields.get("target.node") and not pod:
        parts.append(f"node {fields.get('target.node')}")
    return " ".join(parts) or "an unnamed target"


def _who(fields: Lookup) -> str:
    user = fields.get("actor.user")
    who = str(user) if user else "an unidentified caller"
    ips = fields.get("actor.source_ip")
    return f"{who} from {ips[0]}" if ips else who


def _argv(fields: Lookup) -> str:
    """The command line, or why a node source could not read it (a process gone before /proc was read)."""
    line = fields.get("command.line")
    if line:
        return str(line)
    known = fields.get("process.known")
    return f"argv unknown: {known}" if known else "(no command recorded)"


# placeholders computed from several fields, so reasons read well for every source
DERIVED: dict[str, Callable[[Lookup], str]] = {"where": _where, "who": _who, "argv": _argv}
# the fields each derived placeholder reads
DERIVED_READS = {
    "where": ("target.namespace", "target.pod", "target.container", "target.container_id", "command.origin", "target.node"),
    "who": ("actor.user", "actor.source_ip"),
    "argv": ("command.line", "process.known"),
}
_DEFAULTS = {"command.line": "(no command recorded)", "command.text": "(no command recorded)", "command": "(no command recorded)"}


def fields_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


# A template split once into literal text and (name, default) placeholders; rendering is then a
# loop over the parts, not a regex substitution per alert.
Part = str | tuple[str, str | None]


@lru_cache(maxsize=1024)
def _parts(template: str) -> tuple[Part, ...]:
    out: list[Part] = []
    at = 0
    for m in PLACEHOLDER.finditer(template):
        if m.start() > at:
            out.append(template[at : m.start()])
        out.append((m.group(1), m.group(2)))
        at = m.end()
    if at < len(template):
        out.append(template[at:])
    return tuple(out)


def _value(name: str, default: str | None, fields: Lookup) -> str:
    value = DERIVED[name](fields) if name in DERIVED else fields.get(name)
    if fields_empty(value):
        return default if default is not None else _DEFAULTS.get(name, "?")
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    # command.text is the argv line, then the decoded payloads on lines of their own
    text = str(value).replace("\n", " || decoded: ")
    return text if len(text) <= 300 else text[:300] + "…"


def render(template: str, fields: Lookup) -> str:
    """Fill {field} placeholders; {field|text} gives the text to show when the field is empty."""
    # several rules' reasons of one event name the same placeholders ({who}, {where}): a FieldView
    # keeps what each came to, so each is worked out once per event
    shown: dict[Any, str] | None = fields.shown if isinstance(fields, FieldView) else None
    out = []
    for p in _parts(template):
        if p.__class__ is str:
            out.append(p)
            continue
        if shown is None:
            out.append(_value(p[0], p[1], fields))
            continue
        text = shown.get(p)
        if text is None:
            text = shown[p] = _value(p[0], p[1], fields)
        out.append(text)
    return "".join(out)


def reads(template: str) -> set[str] | None:
    """The fields a template's rendering depends on; None when it names something else (a correlation's count)."""
    out: set[str] = set()
    for p in _parts(template):
        if p.__class__ is str:
            continue
        name = p[0]
        if name in DERIVED_READS:
            out.update(DERIVED_READS[name])
        elif name in FIELDS:
            out.add(name)
        else:
            return None
    return out
