"""What every source module provides, and the error it raises for a record of the wrong shape."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from ..model import Event, SourceRef


class SourceError(ValueError):
    """A record that is valid JSON/text but not of the shape its source expects."""


class NotProcess(Exception):
    """A well-formed record of a process-telemetry format that is no process start (a file or network
    event, a Falco alert on an open or on the Kubernetes audit): counted by the reader, never an alert."""


class JsonSource(Protocol):
    FORMAT: str
    # action -> byte literals of which every raw line producing that action holds one
    LITERALS: dict[str, tuple[bytes, ...]]

    def match(self, obj: dict[str, Any]) -> bool: ...

    def events(self, obj: dict[str, Any], ref: SourceRef) -> Iterable[Event]: ...


class TextParser(Protocol):
    def feed(self, lineno: int, line: bytes) -> Iterator[Event]: ...

    def close(self) -> Iterator[Event]: ...


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SourceError(f"{what} is {type(value).__name__}, not an object")
    return value


def as_str(value: Any) -> str | None:
    if type(value) is str:  # nearly always: the rest only for odd records
        return value
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def as_str_list(value: Any) -> list[str]:
    if type(value) is list:
        for v in value:
            if type(v) is not str:
                break
        else:  # every element a string, as in nearly every record: a copy, four times quicker than the filter below
            return value[:]
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    return []


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
