"""Linux audit logs (auditd's /var/log/audit/audit.log, raw or `ausearch -i`): one event per execve.

An execve is several records sharing ``msg=audit(TIME:SERIAL)``: SYSCALL (pid, ppid, uid, auid, ses,
comm, exe, success), EXECVE (``argc`` and ``a0..aN``), CWD, PATH, PROCTITLE and EOE at the end.
Records of different events interleave, so records are grouped by node and serial in a bounded
buffer; a group is complete at its EOE, or once the log moved ``WINDOW`` seconds or ``PENDING_LINES``
lines past it, or when more than ``PENDING_LIMIT`` groups are open (the oldest goes first).

Values: an argument is ``"quoted"`` or, when it holds a space, quote or control character, hex;
a long one is split (``a1_len=N a1[0]=... a1[1]=...``), possibly over several EXECVE records.
PROCTITLE is the hex argv with NULs between, cut by the kernel at 128 bytes: used only without EXECVE.
auditd 3's ENRICHED format appends ``\\x1dAUID="alice" UID="root"`` names; `ausearch -i` prints names
and decoded text in place (its local time is read as UTC). The container is known only where a record
names it (a CONTAINER_ID record's ``contid``, a ``cgroup=`` path with a container id); otherwise it
is left unknown and ``process.known`` says so.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..model import Actor, Event, Process, SourceRef, Target
from . import procs
from .base import SourceError

FORMAT = "auditd"

LITERALS: tuple[bytes, ...] = (
    b"type=SYSCALL", b"type=EXECVE", b"type=PROCTITLE", b"type=CWD", b"type=PATH", b"type=EOE", b"type=CONTAINER_ID",
    b"type=1300", b"type=1309", b"type=1327", b"type=1307", b"type=1302", b"type=1320",
)  # fmt: skip

WINDOW = 2.0  # seconds of log time a group waits for its EOE
PENDING_LINES = 5000
PENDING_LIMIT = 4096

# a record at the start of its line, maybe behind a syslog prefix (audispd, journald), never inside JSON or
# quotes: a command that mentions "type=EXECVE msg=audit(...)" must not make a JSON log read as auditd
_RECORD = re.compile(
    r"^(?:[^{\"]*?\s)??(?:node=(?P<node>\S+)\s+)?type=(?P<type>\w+)\s+(?:msg=)?audit\((?P<stamp>[^)]*?):(?P<serial>\d+)\)\s*:?\s?(?P<body>.*)$"
)
_RAW_STAMP = re.compile(r"^\d{1,11}(?:\.\d{1,9})?$")  # epoch seconds before the year 5000
_SYSCALL = re.compile(r"(?:^|\s)syscall=(\w+)")
_PAIR = re.compile(r"([\w\[\]]+)=(\"[^\"]*\"|'[^']*'|\S*)")
_ARG = re.compile(r"^a(\d+)(?:\[(\d+)\])?$")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_NUMERIC = {"1300": "SYSCALL", "1309": "EXECVE", "1327": "PROCTITLE", "1307": "CWD", "1302": "PATH", "1320": "EOE"}
# by name (ausearch -i, ENRICHED) or number: x86_64 59/322, aarch64 221/281, i386 11/358
_EXEC_SYSCALLS = {
    "execve": "execve", "execveat": "execveat", "59": "execve", "322": "execveat",
    "221": "execve", "281": "execveat", "11": "execve", "358": "execveat",
}  # fmt: skip
_KEEP = frozenset({"SYSCALL", "EXECVE", "PROCTITLE", "CWD", "PATH", "CONTAINER_ID"})
_DENIED_EXITS = frozenset({"-13", "-1", "EACCES", "EPERM"})
# untrusted strings, which raw logs write quoted or in hex
_TEXT_KEYS = frozenset({"exe", "comm", "cwd", "name", "proctitle", "cgroup"})


def sniff(head: bytes) -> bool:
    return any(_RECORD.search(raw.decode("utf-8", "replace")) for raw in head.splitlines()[:30])


def _decode(v: str, raw: bool) -> str:
    if v.startswith('"') and v.endswith('"') and len(v) >= 2:
        return v[1:-1]
    if raw and _HEX.match(v):
        return bytes.fromhex(v).decode("utf-8", "replace")
    return v


def _seconds(text: str) -> tuple[float | None, bool]:
    """(epoch seconds, raw?) of the audit(...) stamp: seconds in raw logs, `ausearch -i`'s local date (read as UTC)."""
    if _RAW_STAMP.match(text):
        return float(text), True
    try:
        when = datetime.strptime(text.strip(), "%m/%d/%Y %H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None, False
    return when.timestamp(), False


def _iso(group: _Group) -> str | None:
    """RFC 3339 time of a group, its fraction as the log wrote it (milliseconds)."""
    whole, _, frac = group.stamp.partition(".")
    if group.raw and whole.isdigit() and frac.isdigit():
        return datetime.fromtimestamp(int(whole), UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac}Z"
    return procs.iso_seconds(group.secs)


@dataclass
class _Group:
    node: str | None
    serial: str
    secs: float
    stamp: str
    raw: bool
    lineno: int
    execve: bool = False  # an EXECVE record was seen
    bodies: list[tuple[str, str]] = field(default_factory=list)  # (record type, text): parsed only if it is an exec
    records: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    args: list[tuple[str, str]] = field(default_factory=list)  # EXECVE pairs in order, over all its records
    names: dict[str, str] = field(default_factory=dict)  # ENRICHED: AUID="alice" UID="root"

    def parse(self) -> None:
        """The records' fields, read once the group is known to be an exec (most syscalls are not)."""
        for kind, text in self.bodies:
            body, _, enriched = text.partition("\x1d")
            for k, v in _PAIR.findall(enriched):
                self.names[k] = v.strip('"')
            if kind == "EXECVE":
                self.args.extend(_execve_pairs(body, self.raw))
                continue
            if kind == "PROCTITLE" and not self.raw:
                pairs = {"proctitle": body.partition("proctitle=")[2]}
            else:
                pairs = {k: (_decode(v, self.raw) if k in _TEXT_KEYS else v.strip('"')) for k, v in _PAIR.findall(body)}
            self.records.setdefault(kind, []).append(pairs)


@dataclass
class Parser:
    file: str
    _open: OrderedDict[tuple[str | None, str], _Group] = field(default_factory=OrderedDict)
    _ready: list[Event] = field(default_factory=list)
    # the time of the record last read: a group older by WINDOW is complete. The current record's, not the
    # latest seen, so that one line with a wild clock flushes the open groups once rather than every group after it
    _now: float = 0.0

    def feed(self, lineno: int, line: bytes) -> Iterator[Event]:
        out, self._ready = self._ready, []
        try:
            self._feed(lineno, line.decode("utf-8", "replace"), out)
            self._expire(lineno, out)
        except SourceError:
            self._ready = out  # what was complete goes out with the next line
            raise
        yield from out

    def close(self) -> Iterator[Event]:
        out, self._ready = self._ready, []
        while self._open:
            try:
                self._finish(self._open.popitem(last=False)[1], out)
            except SourceError:
                continue  # no line to name at the end; a group that cannot be read is dropped, the others go out
        yield from out

    def _feed(self, lineno: int, line: str, out: list[Event]) -> None:
        if line.startswith("----"):  # ausearch's separator: the events before it are whole
            while self._open:
                self._finish(self._open.popitem(last=False)[1], out)
            return
        m = _RECORD.search(line)
        if m is None:
            if "type=" in line and "audit(" in line:
                raise SourceError("not an audit record line")
            return  # ausearch's ---- and time-> lines, other text
        kind = _NUMERIC.get(m["type"], m["type"])
        key = (m["node"], m["serial"])
        if kind == "EOE":
            group = self._open.pop(key, None)
            if group is not None:
                self._finish(group, out)
            return
        if kind not in _KEEP:
            return
        group = self._open.get(key)
        if group is None:
            secs, raw = _seconds(m["stamp"])
            if secs is None:
                raise SourceError(f"unreadable audit time {m['stamp'][:40]!r}")
            group = _Group(m["node"], m["serial"], secs, m["stamp"], raw, lineno)
            self._open[key] = group
            while len(self._open) > PENDING_LIMIT:
                self._finish(self._open.popitem(last=False)[1], out)
        self._now = group.secs
        group.bodies.append((kind, m["body"]))
        if kind == "EXECVE":
            group.execve = True

    def _expire(self, lineno: int, out: list[Event]) -> None:
        while self._open:
            group = next(iter(self._open.values()))
            if self._now - group.secs <= WINDOW and lineno - group.lineno <= PENDING_LINES:
                break
            self._open.popitem(last=False)
            self._finish(group, out)

    def _finish(self, group: _Group, out: list[Event]) -> None:
        syscall = next((_SYSCALL.search(b) for k, b in group.bodies if k == "SYSCALL"), None)
        verb = _EXEC_SYSCALLS.get(syscall[1]) if syscall else None
        if not group.execve and verb is None:
            return  # some other syscall
        ref = SourceRef(format=FORMAT, file=self.file, line=group.lineno)
        try:
            group.parse()
            sys = (group.records.get("SYSCALL") or [{}])[0]
            out.append(_event(group, sys, verb or "execve", ref))
        except (ValueError, KeyError, TypeError, IndexError, OverflowError, OSError) as exc:  # a source bug must not cost the stream
            raise SourceError(f"the execve at line {group.lineno} could not be read ({type(exc).__name__}: {exc})") from exc


def _execve_pairs(body: str, raw: bool) -> list[tuple[str, str]]:
    if raw:
        # a split argument's pieces stay as written: their hex is joined before it is decoded
        return [(k, _decode(v, True) if _ARG.match(k) and "[" not in k else v) for k, v in _PAIR.findall(body)]
    # ausearch -i prints decoded arguments as they are, spaces included: a value runs to the next " aN="
    out: list[tuple[str, str]] = []
    for piece in re.split(r"\s(?=a\d+(?:\[\d+\])?=|argc=|a\d+_len=)", " " + body):
        k, eq, v = piece.strip().partition("=")
        if eq:
            out.append((k, v))
    return out


def _argv(group: _Group) -> tuple[list[str], str]:
    whole: dict[int, str] = {}
    parts: dict[int, dict[int, str]] = {}
    argc = None
    for k, v in group.args:
        if k == "argc":
            argc = procs.number(v)
            continue
        m = _ARG.match(k)
        if m is None:
            continue
        i = int(m[1])
        if m[2] is None:
            whole[i] = "" if v == "(null)" else v
        else:
            parts.setdefault(i, {})[int(m[2])] = v
    for i, pieces in parts.items():
        joined = "".join(pieces[j].strip('"') for j in sorted(pieces))
        quoted = any(p.startswith('"') for p in pieces.values())
        whole.setdefault(i, _decode(joined, group.raw and not quoted))
    if whole:
        n = max(argc or 0, max(whole) + 1)
        missing = [i for i in range(n) if i not in whole]
        known = f"EXECVE records lost for arguments {missing[:5]}" if missing else ""
        return [whole.get(i, "") for i in range(n)], known
    titles = group.records.get("PROCTITLE")
    if titles and titles[0].get("proctitle"):
        text = titles[0]["proctitle"]
        argv = text.split("\0") if "\0" in text else text.split()
        return [a for a in argv if a], "argv from PROCTITLE (the kernel keeps its first 128 bytes)"
    return [], "no EXECVE or PROCTITLE record: argv unknown"


def _event(group: _Group, sys: dict[str, str], verb: str, ref: SourceRef) -> Event:
    argv, known = _argv(group)
    exe = procs.value(sys.get("exe"))
    if exe is None:
        path = (group.records.get("PATH") or [{}])[0]
        exe = procs.value(path.get("name"))
    if not argv:
        comm = procs.value(sys.get("comm"))
        argv = [comm or exe or "?"]
    cwd = procs.value((group.records.get("CWD") or [{}])[0].get("cwd"))
    container_id = None
    for rec in group.records.get("CONTAINER_ID", []):
        container_id = container_id or procs.value(rec.get("contid"))
    for recs in group.records.values():
        for rec in recs:
            container_id = container_id or procs.container_from_cgroup(rec.get("cgroup"))
    if container_id is None:
        known = "; ".join(x for x in (known, "container unknown: the records name none") if x)
    uid = sys.get("uid")
    auid = group.names.get("AUID") or procs.value(sys.get("auid"))
    actor = Actor(user=auid if auid and not auid.isdigit() else f"auid:{auid}") if auid and auid != "unset" else None
    success = sys.get("success")
    outcome = "allowed"
    if success == "no":
        outcome = "denied" if sys.get("exit", "").split("(")[0] in _DENIED_EXITS else "error"
    proc = Process(
        pid=procs.number(sys.get("pid")),
        ppid=procs.number(sys.get("ppid")),
        exe=exe,
        cwd=cwd,
        uid=procs.number(uid),
        known=known,
    )
    target = Target(container_id=container_id, node=group.node)
    run_as = group.names.get("UID") or procs.value(uid)
    return procs.event(ref, _iso(group), argv, proc, target, outcome=outcome, verb=verb, run_as=run_as, actor=actor)
