"""Docker daemon events: `docker events --format '{{json .}}'` lines and Engine API /events objects.

`exec_create: CMD` / `exec_start: CMD` carry the command joined by spaces, so argv boundaries are
lost here: the command is split on white space (the dockerd debug log keeps the exact argv).
Both become action "exec" with event_id = the exec ID, so the engine folds them into one alert
while a create that was never started is still seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .. import redact
from ..model import Event, SourceRef, Target
from .base import SourceError, as_dict, as_int, as_str

FORMAT = "docker-events"

LITERALS: dict[str, tuple[bytes, ...]] = {
    "exec": (b"exec_create", b"exec_start"),
    "attach": (b"\"attach",),  # quoted: a bare "attach" also hits every volumeattachments line
}

POD_LABEL = "io.kubernetes.pod.name"
NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
CONTAINER_LABEL = "io.kubernetes.container.name"


def match(obj: dict[str, Any]) -> bool:
    if "Action" in obj and "Actor" in obj and "Type" in obj:
        return True
    # events of API < 1.22 have only the legacy keys
    return "status" in obj and "id" in obj and ("from" in obj or "time" in obj) and "auditID" not in obj


def _time(obj: dict[str, Any]) -> str | None:
    nano = as_int(obj.get("timeNano"))
    if nano is not None:
        secs, frac = divmod(nano, 1_000_000_000)
        stamp = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{frac:09d}Z"
    whole = as_int(obj.get("time"))
    if whole is not None:
        return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return as_str(obj.get("time"))


def events(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    actor = as_dict(obj.get("Actor"), "Actor")
    attrs = as_dict(actor.get("Attributes"), "Actor.Attributes")
    action_text = as_str(obj.get("Action")) or as_str(obj.get("status"))
    if action_text is None:
        raise SourceError("docker event without Action or status")
    kind = as_str(obj.get("Type")) or "container"
    verb, _, cmd = action_text.partition(":")
    verb = verb.strip()

    target = Target(kind="container" if kind == "container" else kind)
    if kind == "container":
        target.container_id = as_str(actor.get("ID")) or as_str(obj.get("id"))
        target.image = as_str(attrs.get("image")) or as_str(obj.get("from"))
        target.container = as_str(attrs.get(CONTAINER_LABEL)) or as_str(attrs.get("name"))
        target.pod = as_str(attrs.get(POD_LABEL))
        target.namespace = as_str(attrs.get(NAMESPACE_LABEL))

    ev = Event(
        time=_time(obj),
        source=ref,
        action="other",
        verb=verb,
        target=target,
        event_id=as_str(attrs.get("execID")),
        raw=f"{ref.file}:{ref.line}" if ref.line else ref.file,
    )
    if kind != "container":
        yield ev
        return
    if verb in ("exec_create", "exec_start"):
        ev.action = "exec"
        # joined by spaces upstream: split on white space, quoting is already lost
        ev.command = redact.argv(cmd.split())
        ev.outcome = "allowed" if verb == "exec_start" else "unknown"
    elif verb == "attach":
        ev.action = "attach"
        ev.outcome = "allowed"
    elif verb == "exec_die":
        code = as_int(attrs.get("exitCode"))
        ev.code = code
        ev.outcome = "unknown" if code is None else ("allowed" if code == 0 else "error")
    yield ev
