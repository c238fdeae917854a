"""The few containerd API messages ``watch --containerd`` needs, in protobuf's wire format.

No generated code and no protobuf runtime: grpcio carries bytes, and these functions turn them into
plain values. Field numbers are those of containerd's api/ (the same in 1.6, 1.7 and 2.x):

- ``containerd.services.events.v1.SubscribeRequest``: filters = 1 (repeated string)
- ``containerd.types.Envelope``: timestamp = 1 (google.protobuf.Timestamp: seconds = 1, nanos = 2),
  namespace = 2, topic = 3, event = 4 (google.protobuf.Any: type_url = 1, value = 2)
- ``containerd.events.TaskExecAdded``: container_id = 1, exec_id = 2;
  ``TaskExecStarted``: container_id = 1, exec_id = 2, pid = 3;
  ``TaskCreate``: container_id = 1, bundle = 2, pid = 6; ``TaskStart``: container_id = 1, pid = 2;
  ``TaskExit``: container_id = 1, id = 2, pid = 3, exit_status = 4
- ``containerd.services.containers.v1.GetContainerRequest``: id = 1; ``GetContainerResponse``: container = 1;
  ``Container``: id = 1, labels = 2 (map<string,string>: entries key = 1, value = 2), image = 3,
  runtime = 4 (name = 1), spec = 5 (Any; the OCI runtime spec as JSON), sandbox = 11

Unknown fields are skipped, as protobuf requires; a malformed message raises ``WireError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
MAX_VARINT_BYTES = 10


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(MAX_VARINT_BYTES):
        if at + i >= len(buf):
            raise WireError("varint cut short")
        b = buf[at + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, at + i + 1
        shift += 7
    raise WireError("varint longer than 10 bytes")


def fields(buf: bytes) -> dict[int, list[int | bytes]]:
    """Field number -> its values in order: ints for varint and fixed fields, bytes for length-delimited ones."""
    out: dict[int, list[int | bytes]] = {}
    at = 0
    while at < len(buf):
        key, at = _varint(buf, at)
        number, kind = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if kind == VARINT:
            value, at = _varint(buf, at)
        elif kind == LEN:
            size, at = _varint(buf, at)
            if at + size > len(buf):
                raise WireError(f"field {number}: {size} bytes announced, {len(buf) - at} left")
            value, at = buf[at : at + size], at + size
        elif kind in (FIXED64, FIXED32):
            width = 8 if kind == FIXED64 else 4
            if at + width > len(buf):
                raise WireError(f"field {number}: fixed value cut short")
            value, at = int.from_bytes(buf[at : at + width], "little"), at + width
        else:
            raise WireError(f"field {number}: wire type {kind} (groups are not used by containerd)")
        out.setdefault(number, []).append(value)
    return out


def _last(f: dict[int, list[int | bytes]], number: int) -> int | bytes | None:
    values = f.get(number)
    return values[-1] if values else None  # proto3: the last value of a repeated scalar wins


def _str(f: dict[int, list[int | bytes]], number: int) -> str:
    v = _last(f, number)
    if v is None:
        return ""
    if not isinstance(v, bytes):
        raise WireError(f"field {number}: a number where a string belongs")
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"field {number}: not UTF-8") from exc


def _bytes(f: dict[int, list[int | bytes]], number: int) -> bytes:
    v = _last(f, number)
    if v is None:
        return b""
    if not isinstance(v, bytes):
        raise WireError(f"field {number}: a number where a message belongs")
    return v


def _int(f: dict[int, list[int | bytes]], number: int) -> int:
    v = _last(f, number)
    if v is None:
        return 0
    if not isinstance(v, int):
        raise WireError(f"field {number}: bytes where a number belongs")
    return v


def _key(number: int, kind: int) -> bytes:
    return _encode_varint(number << 3 | kind)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_string(number: int, value: str) -> bytes:
    data = value.encode("utf-8")
    return _key(number, LEN) + _encode_varint(len(data)) + data


def encode_varint_field(number: int, value: int) -> bytes:
    return _key(number, VARINT) + _encode_varint(value)


def encode_subscribe(filters: list[str]) -> bytes:
    return b"".join(encode_string(1, f) for f in filters)


def encode_get_container(container_id: str) -> bytes:
    return encode_string(1, container_id)


@dataclass(slots=True)
class Any_:
    type_url: str = ""
    value: bytes = b""


def decode_any(buf: bytes) -> Any_:
    f = fields(buf)
    return Any_(_str(f, 1), _bytes(f, 2))


@dataclass(slots=True)
class Envelope:
    time: str | None  # RFC 3339, UTC, with nanoseconds when there are any
    time_ns: int
    namespace: str
    topic: str
    event: Any_


def _timestamp(buf: bytes) -> tuple[str | None, int]:
    f = fields(buf)
    seconds, nanos = _int(f, 1), _int(f, 2)
    if seconds >= 1 << 63:
        seconds -= 1 << 64  # int64 as a two's-complement varint
    if not buf:
        return None, 0
    try:
        base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError) as exc:
        raise WireError(f"timestamp {seconds} out of range") from exc
    return f"{base}.{nanos:09d}Z" if nanos else f"{base}Z", seconds * 1_000_000_000 + nanos


def decode_envelope(buf: bytes) -> Envelope:
    f = fields(buf)
    time, ns = _timestamp(_bytes(f, 1))
    return Envelope(time, ns, _str(f, 2), _str(f, 3), decode_any(_bytes(f, 4)))


@dataclass(slots=True)
class TaskEvent:
    """What the task topics carry, in one shape: exec_id is TaskExit's ``id`` too."""

    container_id: str = ""
    exec_id: str = ""
    pid: int = 0
    exit_status: int | None = None


# topic -> (field of exec_id or 0, field of pid or 0, field of exit_status or 0)
TASK_FIELDS = {
    "/tasks/exec-added": (2, 0, 0),
    "/tasks/exec-started": (2, 3, 0),
    "/tasks/create": (0, 6, 0),
    "/tasks/start": (0, 2, 0),
    "/tasks/exit": (2, 3, 4),
}


def decode_task(topic: str, buf: bytes) -> TaskEvent:
    """A task event of one of TASK_FIELDS' topics (KeyError for any other)."""
    exec_no, pid_no, status_no = TASK_FIELDS[topic]
    f = fields(buf)
    return TaskEvent(
        container_id=_str(f, 1),
        exec_id=_str(f, exec_no) if exec_no else "",
        pid=_int(f, pid_no) if pid_no else 0,
        exit_status=_int(f, status_no) if status_no else None,
    )


@dataclass(slots=True)
class Container:
    id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    image: str = ""
    runtime: str = ""
    spec: Any_ = field(default_factory=Any_)
    sandbox: str = ""


def decode_container(buf: bytes) -> Container:
    f = fields(buf)
    labels: dict[str, str] = {}
    for entry in f.get(2, []):
        if not isinstance(entry, bytes):
            raise WireError("field 2: a number where a label belongs")
        e = fields(entry)
        labels[_str(e, 1)] = _str(e, 2)
    runtime = fields(_bytes(f, 4))
    return Container(_str(f, 1), labels, _str(f, 3), _str(runtime, 1), decode_any(_bytes(f, 5)), _str(f, 11))


def decode_get_container_response(buf: bytes) -> Container:
    return decode_container(_bytes(fields(buf), 1))


# The scan after a reconnect (containerd_scan.py):
# - ``containerd.services.namespaces.v1.ListNamespacesResponse``: namespaces = 1 (Namespace: name = 1)
# - ``containerd.services.tasks.v1.ListTasksResponse``: tasks = 1 (containerd.v1.types.Process:
#   container_id = 1, id = 2, pid = 3, status = 4 (2 = RUNNING))
# - ``ListPidsRequest``: container_id = 1; ``ListPidsResponse``: processes = 1 (ProcessInfo: pid = 1,
#   info = 2, an Any of ``containerd.runc.v1.ProcessDetails``: exec_id = 1)
RUNNING = 2


def _messages(buf: bytes, number: int) -> list[dict[int, list[int | bytes]]]:
    out = []
    for v in fields(buf).get(number, []):
        if not isinstance(v, bytes):
            raise WireError(f"field {number}: a number where a message belongs")
        out.append(fields(v))
    return out


def decode_namespaces(buf: bytes) -> list[str]:
    return [_str(f, 1) for f in _messages(buf, 1)]


def decode_tasks(buf: bytes) -> list[TaskEvent]:
    """Running tasks only: container id and the pid of its first process (Tasks/List puts the container id in
    ``id`` and leaves ``container_id`` empty; either is taken)."""
    return [TaskEvent(_str(f, 1) or _str(f, 2), "", _int(f, 3)) for f in _messages(buf, 1) if _int(f, 4) == RUNNING]


def decode_pids(buf: bytes) -> list[tuple[int, str]]:
    """(pid, exec id) of a task's processes; the exec id is empty for all but an exec's own process."""
    out = []
    for f in _messages(buf, 1):
        info = decode_any(_bytes(f, 2))
        out.append((_int(f, 1), _str(fields(info.value), 1) if info.type_url.endswith("ProcessDetails") else ""))
    return out
