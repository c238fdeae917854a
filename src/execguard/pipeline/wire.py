"""Events, hits and alerts as plain tuples in length-prefixed marshal batches: what workers hand back, and the
join's time-sorted runs on disk.

Pickling the model's slotted dataclasses runs a Python ``__getstate__``/``__setstate__`` per object, and
on a dense log unpickling cost the parent as much as parsing the records did (issue 10). A tuple of the
fields' values in declaration order is built and read back by C code (``attrgetter``, ``marshal``), and
strings repeated within a batch (a file name, rule titles, tags) are written once. Values marshal cannot
write (none today) send that batch as a pickle instead, so nothing is lost.
"""

from __future__ import annotations

import marshal
import pickle
import struct
from collections.abc import Callable, Iterator
from dataclasses import fields
from operator import attrgetter
from typing import IO, Any

from ..model import Actor, Alert, Event, Process, RbacChange, RuleMatch, SourceRef, Target
from ..times import time_ns

BATCH = 256  # records per marshal call: enough to share its strings, little to hold
_HEAD = struct.Struct("<IB")  # batch length, and its kind: marshal or pickle
_MARSHAL, _PICKLE = 0, 1

# the Event fields holding another dataclass, and the classes they hold
_NESTED: dict[str, type] = {"source": SourceRef, "actor": Actor, "target": Target, "rbac": RbacChange, "process": Process}
_NAMES = [f.name for f in fields(Event)]
_EVENT = attrgetter(*_NAMES)
_PARTS = {name: attrgetter(*(f.name for f in fields(cls))) for name, cls in _NESTED.items()}
_MATCH = attrgetter(*(f.name for f in fields(RuleMatch)))
_SOURCE, _ACTOR, _TARGET, _RBAC, _PROCESS = (_PARTS[name] for name in ("source", "actor", "target", "rbac", "process"))
# every spooled event passes encode_event and decode_event: they spell the fields and the nested parts' places
# out (no loop over them; the order is checked below decode_event)


def encode_event(event: Event) -> tuple[Any, ...]:
    v = _EVENT(event)
    source, actor, target, rbac, process = v[1], v[2], v[9], v[22], v[23]
    return (
        v[0],
        None if source is None else _SOURCE(source),
        None if actor is None else _ACTOR(actor),
        *v[3:9],
        None if target is None else _TARGET(target),
        *v[10:22],
        None if rbac is None else _RBAC(rbac),
        None if process is None else _PROCESS(process),
    )


def decode_event(v: tuple[Any, ...]) -> Event:
    # every field set from the tuple, in declaration order (checked below), then the parts: ~2x faster than
    # Event(...), whose __init__ sorts out defaults that a decoded event never needs
    e: Event = _new(Event)
    (
        e.time, e.source, e.actor, e.action, e.verb, e.resource, e.subresource, e.request_uri, e.stage, e.target,
        e.command, e.command_origin, e.command_body, e.tty, e.stdin, e.privileged, e.run_as_user, e.binds,
        e.outcome, e.code, e.event_id, e.raw, e.rbac, e.process,
    ) = v  # fmt: skip
    source, actor, target, rbac, process = v[1], v[2], v[9], v[22], v[23]
    if source is not None:
        e.source = SourceRef(*source)
    if actor is not None:
        e.actor = Actor(*actor)
    if target is not None:
        e.target = Target(*target)
    if rbac is not None:
        e.rbac = RbacChange(*rbac)
    if process is not None:
        e.process = Process(*process)
    return e


_new = object.__new__
if _NAMES != [
    "time", "source", "actor", "action", "verb", "resource", "subresource", "request_uri", "stage", "target",
    "command", "command_origin", "command_body", "tty", "stdin", "privileged", "run_as_user", "binds",
    "outcome", "code", "event_id", "raw", "rbac", "process",
]:  # fmt: skip  # pragma: no cover - the model changed
    raise ImportError("pipeline/wire.py: Event's fields changed; update decode_event")


def encode_hits(hits: list[RuleMatch]) -> list[tuple[Any, ...]]:
    return [_MATCH(m) for m in hits]


def decode_hits(values: list[tuple[Any, ...]]) -> list[RuleMatch]:
    return [RuleMatch(*m) for m in values]


def encode_alert(alert: Alert | None, event: Event) -> tuple[Any, ...] | None:
    """An alert; its event is left out when it is ``event`` (the one it was decided for), and restored so."""
    if alert is None:
        return None
    own = alert.event is event
    return (
        None if own else encode_event(alert.event),
        encode_hits(alert.matches),
        alert.suppressed,
        [_SOURCE(ref) for ref in alert.also_seen],
        [encode_event(e) for e in alert.covers],
    )


def decode_alert(values: tuple[Any, ...] | None, event: Event) -> Alert | None:
    if values is None:
        return None
    own, matches, suppressed, also_seen, covers = values
    return Alert(
        event if own is None else decode_event(own),
        decode_hits(matches),
        suppressed,
        [SourceRef(*ref) for ref in also_seen],
        [decode_event(e) for e in covers],
    )


def write_batch(f: IO[bytes], batch: list[Any]) -> None:
    try:
        blob, kind = marshal.dumps(batch), _MARSHAL
    except ValueError:  # a value marshal cannot write: this batch goes as a pickle
        blob, kind = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL), _PICKLE
    f.write(_HEAD.pack(len(blob), kind))
    f.write(blob)


def read_batch(f: IO[bytes]) -> list[Any] | None:
    """The next batch ``write_batch`` wrote; None at the end or at a batch cut short."""
    head = f.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None
    size, kind = _HEAD.unpack(head)
    blob = f.read(size)
    if len(blob) < size:
        return None
    got: list[Any] = marshal.loads(blob) if kind == _MARSHAL else pickle.loads(blob)
    return got


class Writer:
    """Records in order: ("e", event, hits, time), ("c", event, coded hits, time) and ("w", file, line, message);
    ``flush`` writes the last batch.

    ``time`` is the event's time as ``times.time_ns`` reads it: the parent then parses none (clock.py).
    Coded hits are the engine's own (``Engine.coded_hits``): rule numbers and reasons, far fewer bytes and
    objects than whole RuleMatches; ``read`` hands them to the ``from_wire`` it is given."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.batch: list[tuple[Any, ...]] = []

    def event(self, event: Event, hits: list[RuleMatch]) -> None:
        self.batch.append(("e", encode_event(event), encode_hits(hits), time_ns(event.time)))
        if len(self.batch) >= BATCH:
            self.flush()

    def coded(self, event: Event, hits: list[Any]) -> None:
        self.batch.append(("c", encode_event(event), hits, time_ns(event.time)))
        if len(self.batch) >= BATCH:
            self.flush()

    def warning(self, file: str, line: int | None, message: str) -> None:
        self.batch.append(("w", file, line, message))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            write_batch(self.f, self.batch)
            self.batch = []


def read(f: IO[bytes], from_wire: Callable[[Any], list[Any]] | None = None) -> Iterator[tuple[Any, ...]]:
    """The records ``Writer`` wrote, events and hits decoded (coded hits by ``from_wire``, as they are without
    it), each event's as an "e" record; stops at the end or at a batch cut short."""
    while (batch := read_batch(f)) is not None:
        for rec in batch:
            kind = rec[0]
            if kind == "c":
                yield "e", decode_event(rec[1]), rec[2] if from_wire is None else from_wire(rec[2]), rec[3]
            elif kind == "e":
                yield "e", decode_event(rec[1]), decode_hits(rec[2]), rec[3]
            else:
                yield rec
