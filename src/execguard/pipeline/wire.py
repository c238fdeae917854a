"""What workers hand back: events, their hits and warnings as plain tuples, in length-prefixed marshal batches.

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
from collections.abc import Iterator
from dataclasses import fields
from operator import attrgetter
from typing import IO, Any

from ..model import Actor, Event, Process, RbacChange, RuleMatch, SourceRef, Target

BATCH = 256  # records per marshal call: enough to share its strings, little to hold
_HEAD = struct.Struct("<IB")  # batch length, and its kind: marshal or pickle
_MARSHAL, _PICKLE = 0, 1

# the Event fields holding another dataclass, and the classes they hold
_NESTED: dict[str, type] = {"source": SourceRef, "actor": Actor, "target": Target, "rbac": RbacChange, "process": Process}
_NAMES = [f.name for f in fields(Event)]
_EVENT = attrgetter(*_NAMES)
_PARTS = {name: attrgetter(*(f.name for f in fields(cls))) for name, cls in _NESTED.items()}
_AT = [_NAMES.index(name) for name in _NESTED]
_MATCH = attrgetter(*(f.name for f in fields(RuleMatch)))


def encode_event(event: Event) -> tuple[Any, ...]:
    values = list(_EVENT(event))
    for at, name in zip(_AT, _NESTED, strict=True):
        part = values[at]
        if part is not None:
            values[at] = _PARTS[name](part)
    return tuple(values)


def decode_event(values: tuple[Any, ...]) -> Event:
    v = list(values)
    for at, cls in zip(_AT, _NESTED.values(), strict=True):
        part = v[at]
        if part is not None:
            v[at] = cls(*part)
    return Event(*v)


def encode_hits(hits: list[RuleMatch]) -> list[tuple[Any, ...]]:
    return [_MATCH(m) for m in hits]


def decode_hits(values: list[tuple[Any, ...]]) -> list[RuleMatch]:
    return [RuleMatch(*m) for m in values]


class Writer:
    """Records in order: ("e", event, hits) and ("w", file, line, message); ``close`` writes the last batch."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.batch: list[tuple[Any, ...]] = []

    def event(self, event: Event, hits: list[RuleMatch]) -> None:
        self.batch.append(("e", encode_event(event), encode_hits(hits)))
        if len(self.batch) >= BATCH:
            self.flush()

    def warning(self, file: str, line: int | None, message: str) -> None:
        self.batch.append(("w", file, line, message))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        try:
            blob, kind = marshal.dumps(self.batch), _MARSHAL
        except ValueError:  # a value marshal cannot write: this batch goes as a pickle
            blob, kind = pickle.dumps(self.batch, protocol=pickle.HIGHEST_PROTOCOL), _PICKLE
        self.f.write(_HEAD.pack(len(blob), kind))
        self.f.write(blob)
        self.batch = []


def read(f: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    """The records ``Writer`` wrote, events and hits decoded; stops at the end or at a batch cut short."""
    while True:
        head = f.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return
        size, kind = _HEAD.unpack(head)
        blob = f.read(size)
        if len(blob) < size:
            return
        for rec in marshal.loads(blob) if kind == _MARSHAL else pickle.loads(blob):
            if rec[0] == "e":
                yield "e", decode_event(rec[1]), decode_hits(rec[2])
            else:
                yield rec
