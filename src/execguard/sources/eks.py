"""Amazon EKS control-plane audit logs as they leave CloudWatch Logs.

Shapes accepted (the native audit event sits in ``message``/``@message`` as a JSON string or object):
- one log record (``get-log-events`` item, Logs Insights row, data-lake row with ``@timestamp``/``p_*`` keys);
- ``aws logs filter-log-events`` / ``get-log-events`` output: ``{"events": [...]}``;
- a CloudWatch Logs subscription payload (Firehose/Lambda): ``{"messageType": "DATA_MESSAGE", "logGroup": ...,
  "logStream": ..., "logEvents": [...]}``.
A native event already unwrapped (``auditID`` at the top) is left to the k8s-audit source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from ..model import Event, SourceRef
from . import k8s_audit
from .base import SourceError, as_str

FORMAT = "eks"

# The message is the native event, escaped once: the k8s-audit literals hold no quote, so they survive.
LITERALS: dict[str, tuple[bytes, ...]] = dict(k8s_audit.LITERALS)

MESSAGE_KEYS = ("message", "@message")
# keys CloudWatch (or an export of it) puts beside the message
RECORD_KEYS = ("logStreamName", "logStream", "@logStream", "ingestionTime", "eventId", "@timestamp", "@log", "logGroup", "@ptr")
AUDIT_STREAM = "kube-apiserver-audit"
_GROUP = re.compile(r"/aws/eks/([^/]+)/cluster")


def match(obj: dict[str, Any]) -> bool:
    if "auditID" in obj or obj.get("kind") in ("Event", "EventList"):
        return False
    if isinstance(obj.get("logEvents"), list) and "messageType" in obj:
        return True
    events = obj.get("events")
    if isinstance(events, list):
        first = events[0] if events else None
        return isinstance(first, dict) and "message" in first and ("logStreamName" in first or "ingestionTime" in first)
    return any(k in obj for k in MESSAGE_KEYS) and any(k in obj for k in RECORD_KEYS)


def events(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    if isinstance(obj.get("logEvents"), list):
        yield from _subscription(obj, ref)
    elif isinstance(obj.get("events"), list):
        yield from _batch(obj["events"], ref, cluster_of(as_str(obj.get("logGroup"))), None)
    else:
        yield from _record(obj, ref, None, None)


def cluster_of(log_group: str | None) -> str | None:
    """Cluster name from ``/aws/eks/NAME/cluster`` (also ``ACCOUNT:/aws/eks/NAME/cluster`` in Logs Insights)."""
    if not log_group:
        return None
    found = _GROUP.search(log_group)
    return found.group(1) if found else None


def embedded_event(value: Any, what: str) -> dict[str, Any]:
    """The native audit event carried as a JSON string (or already an object) in a wrapper field."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            raise SourceError(f"{what} is not JSON (not an audit record)")
        try:
            inner = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"{what} is not valid JSON ({exc})") from None
        if isinstance(inner, dict):
            return inner
    raise SourceError(f"{what} holds no audit event object")


def _subscription(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    if obj.get("messageType") == "CONTROL_MESSAGE":
        return  # CloudWatch's reachability probe: nothing to read
    stream = as_str(obj.get("logStream"))
    yield from _batch(obj["logEvents"], ref, cluster_of(as_str(obj.get("logGroup"))), stream)


def _batch(items: list[Any], ref: SourceRef, cluster: str | None, stream: str | None) -> Iterator[Event]:
    """Every audit event of a batch; one bad item must not hide the others, so errors count only if all fail."""
    out: list[Event] = []
    errors: list[str] = []
    skipped = 0
    for item in items:
        if not isinstance(item, dict):
            errors.append(f"log event is {type(item).__name__}, not an object")
            continue
        item_stream = as_str(item.get("logStreamName")) or stream
        if item_stream and not item_stream.startswith(AUDIT_STREAM):
            skipped += 1  # authenticator, scheduler ... streams of the same log group
            continue
        try:
            out.extend(_record(item, ref, cluster, item_stream))
        except SourceError as exc:
            errors.append(str(exc))
    if not out and errors:
        raise SourceError(f"{len(errors)} log events unreadable, first: {errors[0]}")
    if not out and skipped and not errors:
        raise SourceError(f"{skipped} log events from non-audit streams (not {AUDIT_STREAM}-*) skipped")
    yield from out


def _record(obj: dict[str, Any], ref: SourceRef, cluster: str | None, stream: str | None) -> Iterator[Event]:
    stream = stream or as_str(obj.get("logStreamName") or obj.get("logStream") or obj.get("@logStream"))
    if stream and not stream.startswith(AUDIT_STREAM):
        raise SourceError(f"log stream {stream!r} is not an audit stream")
    key = next((k for k in MESSAGE_KEYS if k in obj), None)
    if key is None:
        raise SourceError("CloudWatch record without a message")
    inner = embedded_event(obj[key], key)
    cluster = cluster or cluster_of(as_str(obj.get("logGroup") or obj.get("@log")))
    yield from k8s_audit.from_audit_event(inner, ref, cluster=cluster)
