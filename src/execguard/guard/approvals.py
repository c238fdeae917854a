"""Break-glass approvals: a small JSONL file under the state dir, rewritten atomically.

``execguard guard approve`` adds one (write a temporary file, fsync, rename, under an flock so two
approvers do not lose each other's line); the deciders read it through ``ApprovalStore``, which
re-reads only when the file's mtime or size changes, so a decision costs one stat().
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .decide import Approval

FILE = "approvals.jsonl"
MAX_FOR = timedelta(hours=24)  # break glass is for an incident, not a standing grant


def state_dir(given: str | Path | None = None) -> Path:
    return Path(given or os.environ.get("EXECGUARD_STATE_DIR") or "/var/lib/execguard")


def _to_json(a: Approval) -> str:
    return json.dumps(
        {"id": a.id, "user": a.user, "namespace": a.namespace, "until": a.until.isoformat(), "reason": a.reason, "by": a.by},
        sort_keys=True,
    )


def _from_json(line: str) -> Approval | None:
    try:
        obj = json.loads(line)
        until = datetime.fromisoformat(obj["until"])
        return Approval(str(obj["id"]), str(obj["user"]), obj.get("namespace"), until, str(obj.get("reason", "")), obj.get("by"))
    except (ValueError, KeyError, TypeError):
        return None  # a damaged line grants nothing


def read_approvals(path: Path) -> list[Approval]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [a for a in map(_from_json, text.splitlines()) if a is not None]


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / ".approvals.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_approval(
    directory: Path, user: str, namespace: str | None, duration: timedelta, reason: str, by: str | None = None, now: datetime | None = None
) -> Approval:
    """Write a new approval; expired ones are dropped from the file on the way."""
    if not user.strip():
        raise ValueError("--user must not be empty")
    if not reason.strip():
        raise ValueError("--reason must say why (it is recorded with every decision it allows)")
    if duration <= timedelta(0) or duration > MAX_FOR:
        raise ValueError(f"--for must be between 1s and {int(MAX_FOR.total_seconds() // 3600)}h")
    now = now or datetime.now(UTC)
    approval = Approval(secrets.token_hex(6), user, namespace or None, now + duration, reason, by)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / FILE
    with _locked(directory):
        kept = [a for a in read_approvals(path) if a.until > now]
        tmp = directory / f".{FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.writelines(_to_json(a) + "\n" for a in [*kept, approval])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return approval


def parse_duration(text: str) -> timedelta:
    """30m, 2h, 90s, 1h30m."""
    units = {"s": 1, "m": 60, "h": 3600}
    total, number = 0, ""
    for ch in text.strip():
        if ch.isdigit():
            number += ch
        elif ch in units and number:
            total += int(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"duration {text!r}: write e.g. 30m, 2h or 1h30m")
    if number or not total:
        raise ValueError(f"duration {text!r}: write e.g. 30m, 2h or 1h30m")
    return timedelta(seconds=total)


class ApprovalStore:
    """The approvals file as the deciders see it; usable as Decider(approvals=store.lookup)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._approvals: list[Approval] = []

    def _current(self) -> list[Approval]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return []
        with self._lock:
            if stamp != self._stamp:
                self._approvals = read_approvals(self.path)
                self._stamp = stamp
            return self._approvals

    def lookup(self, user: str | None, namespace: str | None, now: datetime) -> Approval | None:
        if not user:
            return None  # an anonymous caller cannot hold an approval
        for a in self._current():
            if a.user == user and a.until > now and (a.namespace is None or a.namespace == namespace):
                return a
        return None
