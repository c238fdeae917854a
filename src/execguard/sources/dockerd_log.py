"""dockerd debug log (`dockerd -D`): API calls with their JSON bodies, so the exact argv of execs.

A call is logged as `Calling POST /v1.41/containers/NAME/exec`, its body on a later line as
`form data: {...}`. Lines may be plain logrus text (`time="..." level=debug msg="..."`), carry a
journald/syslog prefix (`... dockerd[123]: time=...`), or be `--log-format json` objects.

The exec ID is only logged later, in `Calling POST /exec/ID/start`; an exec create waits for the
next start (first come, first served) to get its ID, so it folds with `docker-events` records of
the same exec. A create that never starts is emitted with an error outcome when dockerd says so,
or with an unknown outcome when the log moves on or ends.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from .. import redact
from ..model import Event, SourceRef, Target
from .base import SourceError, as_str, as_str_list

FORMAT = "dockerd-log"

# every line the parser needs: calls and their bodies are paired, so both must pass the prefilter
LITERALS: tuple[bytes, ...] = (b"Calling POST", b"form data", b"Error setting up exec", b"/attach/ws")

PENDING_LIMIT = 64  # open calls kept waiting for a body or a start before they are emitted as they are
PENDING_LINES = 5000  # ... or once this many lines went by
CONTAINER_ID = re.compile(r"^[0-9a-f]{12,64}$")
LOGFMT_START = re.compile(r'(?:^|\s)(?:time="|level=\w+\s+msg=)')
# a quoted value cut short by a truncated line runs to its end
LOGFMT_PAIR = re.compile(r'([\w.-]+)=("(?:[^"\\]|\\.)*(?:"|\\?$)|\S*)')
GO_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2})|([0-7]{3})|(.))")
SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
SETUP_ERROR = re.compile(r"^Error setting up exec command in container (\S+?):")
START_KEYS = {"Detach", "Tty", "ConsoleSize"}


_LOGFMT_LINE = re.compile(r'^(?:[^{"]*\bdockerd(?:\[\d+\])?:\s*)?time="?[^" ]+"? level=\w+ msg=')


def sniff(head: bytes) -> bool:
    for raw in head.splitlines()[:30]:
        line = raw.decode("utf-8", "replace")
        # a logfmt line of its own (maybe behind a syslog/journald prefix), not such text quoted in JSON
        if _LOGFMT_LINE.match(line):
            return True
        obj = _json_record(line)
        if obj is not None:
            return True
    return False


def _json_record(line: str) -> dict[str, Any] | None:
    """A logrus JSON line (`{"level":..,"msg":..,"time":..}`), possibly behind a syslog prefix."""
    start = line.find("{")
    if start == -1 or (start > 0 and not line[:start].rstrip().endswith(":")):
        return None
    try:
        obj = orjson.loads(line[start:])
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, dict) and "msg" in obj and "level" in obj and "time" in obj:
        return obj
    return None


def _unquote(value: str) -> str:
    """Undo Go's %q quoting, which logrus uses for values with spaces or quotes."""
    if not value.startswith('"'):
        return value
    inner = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]

    def sub(m: re.Match[str]) -> str:
        hexa = m.group(1) or m.group(2)
        if hexa:
            return chr(int(hexa, 16))
        if m.group(3):
            return chr(int(m.group(3), 16))
        if m.group(4):
            return chr(int(m.group(4), 8))
        ch = m.group(5)
        return SIMPLE_ESCAPES.get(ch, ch)

    return GO_ESCAPE.sub(sub, inner)


def parse_line(line: str) -> tuple[str | None, str] | None:
    """(time, msg) of one log line, or None when it is not a dockerd record."""
    m = LOGFMT_START.search(line)
    if m is not None:
        fields = {k: _unquote(v) for k, v in LOGFMT_PAIR.findall(line[m.start() :])}
        if "msg" in fields:
            return fields.get("time"), fields["msg"]
    obj = _json_record(line)
    if obj is not None:
        return as_str(obj.get("time")), str(obj.get("msg"))
    return None


@dataclass
class Call:
    kind: str  # exec | create | start
    lineno: int
    event: Event
    seen_at: int = 0


@dataclass
class Parser:
    file: str
    _calls: deque[Call] = field(default_factory=deque)  # waiting for their `form data` line
    _execs: deque[Call] = field(default_factory=deque)  # exec creates waiting for their start
    _ready: list[Event] = field(default_factory=list)  # built while a bad line raised
    _lineno: int = 0

    def feed(self, lineno: int, line: bytes) -> Iterator[Event]:
        self._lineno = lineno
        out, self._ready = self._ready, []
        try:
            self._feed(lineno, line.decode("utf-8", "replace"), out)
        except SourceError:
            self._ready = out  # the events survive the warning and go out with the next line
            raise
        out.extend(self._expire())
        yield from out

    def close(self) -> Iterator[Event]:
        out, self._ready = self._ready, []
        out.extend(c.event for c in self._calls)
        out.extend(c.event for c in self._execs)
        self._calls.clear()
        self._execs.clear()
        yield from out

    # ---- one line ----------------------------------------------------------------------
    def _feed(self, lineno: int, text: str, out: list[Event]) -> None:
        parsed = parse_line(text)
        if parsed is None:
            return
        time, msg = parsed
        if msg.startswith("Calling "):
            self._call(lineno, time, msg[len("Calling ") :], out)
        elif msg.startswith("form data: "):
            self._body(msg[len("form data: ") :], out)
        else:
            m = SETUP_ERROR.match(msg)
            if m:
                self._exec_failed(m.group(1), out)

    def _call(self, lineno: int, time: str | None, request: str, out: list[Event]) -> None:
        method, _, uri = request.partition(" ")
        parts = urlsplit(uri.strip())
        segs = [s for s in parts.path.split("/") if s]
        if segs and re.fullmatch(r"v\d+(\.\d+)?", segs[0]):
            segs = segs[1:]
        query = parse_qsl(parts.query, keep_blank_values=True)
        ref = SourceRef(format=FORMAT, file=self.file, line=lineno)
        ev = Event(time=time, source=ref, request_uri=redact.text(uri.strip()), raw=f"{self.file}:{lineno}")
        if method == "POST" and segs == ["containers", "create"]:
            ev.action, ev.verb = "create", "create"
            ev.target.kind = "container"
            ev.target.container = dict(query).get("name") or None
            self._calls.append(Call("create", lineno, ev, lineno))
        elif method == "POST" and len(segs) == 3 and segs[0] == "containers" and segs[2] == "exec":
            ev.action, ev.verb = "exec", "exec_create"
            _name_target(segs[1], ev.target)
            self._calls.append(Call("exec", lineno, ev, lineno))
        elif method == "POST" and len(segs) == 3 and segs[0] == "exec" and segs[2] == "start":
            self._calls.append(Call("start", lineno, ev, lineno))
            self._exec_started(segs[1], ev, out)
        elif len(segs) >= 3 and segs[0] == "containers" and segs[2] == "attach":
            ev.action, ev.verb = "attach", "attach"
            _name_target(segs[1], ev.target)
            flags = {k: v.strip().lower() in ("1", "true") for k, v in query}
            ev.stdin = flags.get("stdin")
            out.append(ev)

    def _body(self, text: str, out: list[Event]) -> None:
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            call = self._calls.popleft() if self._calls else None
            if call is not None and call.kind != "start":
                self._finish(call, out)
            raise SourceError(f"bad form data ({exc}); the call is reported without its body") from None
        if not isinstance(body, dict):
            raise SourceError(f"form data is a JSON {type(body).__name__}, not an object")
        kind = _body_kind(body)
        call = next((c for c in self._calls if c.kind == kind), None)
        if call is None:
            return  # the body of a call we do not follow (or whose Calling line was not kept)
        self._calls.remove(call)
        if kind == "exec":
            _exec_body(body, call.event)
        elif kind == "create":
            _create_body(body, call.event)
            health = _healthcheck(body, call.event)
            if health is not None:
                out.append(health)
        if kind != "start":
            self._finish(call, out)

    def _finish(self, call: Call, out: list[Event]) -> None:
        if call.kind == "exec":
            call.seen_at = self._lineno
            self._execs.append(call)  # waits for its start to learn the exec ID
        else:
            out.append(call.event)

    def _exec_started(self, exec_id: str, start: Event, out: list[Event]) -> None:
        if self._execs:
            ev = self._execs.popleft().event
            ev.event_id = exec_id
            ev.outcome = "allowed"
            out.append(ev)
            return
        # the create is not in this log: report the start alone
        start.action, start.verb, start.event_id, start.outcome = "exec", "exec_start", exec_id, "allowed"
        out.append(start)

    def _exec_failed(self, container: str, out: list[Event]) -> None:
        for call in self._execs:
            t = call.event.target
            if container in (t.container, t.container_id):
                self._execs.remove(call)
                call.event.outcome = "error"
                out.append(call.event)
                return

    def _expire(self) -> list[Event]:
        out: list[Event] = []
        for queue in (self._calls, self._execs):
            while queue and (len(queue) > PENDING_LIMIT or self._lineno - queue[0].seen_at > PENDING_LINES):
                call = queue.popleft()
                if call.kind != "start":
                    out.append(call.event)
        return out


def _name_target(ref: str, target: Target) -> None:
    # the API takes a name or an ID; keep what the caller used, and say when it is an ID
    target.container = ref
    if CONTAINER_ID.match(ref):
        target.container_id = ref


def _body_kind(body: dict[str, Any]) -> str:
    if "Image" in body or "HostConfig" in body:
        return "create"
    if "Cmd" in body:
        return "exec"
    if set(body) <= START_KEYS:
        return "start"
    return "other"


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _exec_body(body: dict[str, Any], ev: Event) -> None:
    ev.command = redact.argv(as_str_list(body.get("Cmd")))
    ev.privileged = _flag(body.get("Privileged"))
    ev.tty = _flag(body.get("Tty"))
    ev.stdin = _flag(body.get("AttachStdin"))
    user = body.get("User")
    ev.run_as_user = redact.text(user) if isinstance(user, str) else None
    # Env is deliberately not copied: it often holds secrets and no rule needs it yet


def _healthcheck(body: dict[str, Any], create: Event) -> Event | None:
    """A HEALTHCHECK the daemon runs inside the container every interval: a create-time command of its own.

    Privilege and mounts stay on the create event, so the container-level rules fire once.
    """
    health = body.get("Healthcheck")
    test = as_str_list(health.get("Test")) if isinstance(health, dict) else []
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return None  # NONE disables it; an empty test inherits the image's
    argv = ["/bin/sh", "-c", " ".join(test[1:])] if test[0] == "CMD-SHELL" else test[1:]
    if not argv:
        return None
    ev = replace(create, target=replace(create.target), privileged=None, binds=[], tty=None, stdin=None)
    ev.command = redact.argv(argv)
    ev.command_origin = "healthcheck"
    return ev


def _create_body(body: dict[str, Any], ev: Event) -> None:
    host = body.get("HostConfig")
    host = host if isinstance(host, dict) else {}
    ev.target.image = as_str(body.get("Image"))
    ev.command = redact.argv(as_str_list(body.get("Entrypoint")) + as_str_list(body.get("Cmd")))
    ev.command_origin = "container"
    ev.privileged = _flag(host.get("Privileged"))
    ev.tty = _flag(body.get("Tty"))
    ev.stdin = _flag(body.get("OpenStdin"))
    user = body.get("User")
    ev.run_as_user = redact.text(user) if isinstance(user, str) else None
    binds = as_str_list(host.get("Binds"))
    mounts = host.get("Mounts")
    if isinstance(mounts, list):
        for m in mounts:
            if isinstance(m, dict) and m.get("Type") == "bind" and m.get("Source") and m.get("Target"):
                binds.append(f"{m['Source']}:{m['Target']}" + (":ro" if m.get("ReadOnly") else ""))
    ev.binds = binds
