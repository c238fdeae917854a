"""Azure Kubernetes Service audit logs.

Shapes accepted:
- Azure Monitor diagnostic records, categories ``kube-audit`` / ``kube-audit-admin``: the native event is a JSON
  string (or an object) in ``properties.log``; the cluster is the last part of ``resourceId``;
- the storage-account / Event Hub export wrapper ``{"records": [...]}``;
- rows of the Log Analytics tables ``AKSAudit`` / ``AKSAuditAdmin`` exported as JSON (columns ``AuditId``,
  ``Verb``, ``RequestUri``, ``User``, ``SourceIps``, ``ObjectRef``, ``ResponseStatus`` ...; dynamic columns may
  arrive as JSON strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from ..model import Event, SourceRef
from . import k8s_audit
from .base import SourceError, as_str
from .eks import embedded_event

FORMAT = "aks"

# properties.log is the native event escaped once; the k8s-audit literals hold no quote, so they survive.
LITERALS: dict[str, tuple[bytes, ...]] = dict(k8s_audit.LITERALS)

AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})
TABLES = frozenset({"AKSAudit", "AKSAuditAdmin"})
_CLUSTER = re.compile(r"/managedclusters/([^/]+)", re.IGNORECASE)

# Log Analytics column -> native audit event field
COLUMNS = {
    "AuditId": "auditID",
    "Verb": "verb",
    "RequestUri": "requestURI",
    "User": "user",
    "ImpersonatedUser": "impersonatedUser",
    "SourceIps": "sourceIPs",
    "UserAgent": "userAgent",
    "ObjectRef": "objectRef",
    "ResponseStatus": "responseStatus",
    "RequestObject": "requestObject",
    "Annotations": "annotations",
    "Stage": "stage",
    "Level": "level",
    "RequestReceivedTime": "requestReceivedTimestamp",
    "StageReceivedTime": "stageTimestamp",
}
DYNAMIC = frozenset({"User", "ImpersonatedUser", "SourceIps", "ObjectRef", "ResponseStatus", "RequestObject", "Annotations"})


def match(obj: dict[str, Any]) -> bool:
    if "auditID" in obj or obj.get("kind") in ("Event", "EventList"):
        return False
    records = obj.get("records")
    if isinstance(records, list):
        first = records[0] if records else None
        return isinstance(first, dict) and "category" in first and "properties" in first
    if "category" in obj and isinstance(obj.get("properties"), dict) and ("resourceId" in obj or "operationName" in obj):
        return True
    table = obj.get("Type")
    return (isinstance(table, str) and table in TABLES) or ("AuditId" in obj and ("RequestUri" in obj or "Verb" in obj))


def events(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    records = obj.get("records")
    if isinstance(records, list):
        yield from _records(records, ref)
    elif "category" in obj:
        yield from _diagnostic(obj, ref)
    else:
        yield from _table_row(obj, ref)


def cluster_of(resource_id: str | None) -> str | None:
    if not resource_id:
        return None
    found = _CLUSTER.search(resource_id)
    # diagnostic records upper-case the resource id, Log Analytics lower-cases it; ARM names ignore case
    return found.group(1).lower() if found else None


def _records(items: list[Any], ref: SourceRef) -> Iterator[Event]:
    """Audit records of an export batch; other categories in it (kube-apiserver, guard ...) are passed over."""
    out: list[Event] = []
    errors: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            errors.append(f"record is {type(item).__name__}, not an object")
            continue
        if as_str(item.get("category")) not in AUDIT_CATEGORIES:
            continue
        try:
            out.extend(_diagnostic(item, ref))
        except SourceError as exc:
            errors.append(str(exc))
    if not out and errors:
        raise SourceError(f"{len(errors)} record{'' if len(errors) == 1 else 's'} unreadable, first: {errors[0]}")
    if not out and items and not errors:
        raise SourceError("no kube-audit records in this batch (not an audit record)")
    yield from out


def _diagnostic(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    category = as_str(obj.get("category"))
    if category not in AUDIT_CATEGORIES:
        raise SourceError(f"category {category!r} is not an audit record")
    props = obj.get("properties")
    if not isinstance(props, dict) or "log" not in props:
        raise SourceError("diagnostic record without properties.log")
    inner = embedded_event(props["log"], "properties.log")
    yield from k8s_audit.from_audit_event(inner, ref, cluster=cluster_of(as_str(obj.get("resourceId"))))


def _table_row(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    native: dict[str, Any] = {}
    for column, name in COLUMNS.items():
        if column in obj and obj[column] is not None:
            native[name] = _dynamic(obj[column]) if column in DYNAMIC else obj[column]
    if "auditID" not in native and "requestURI" not in native:
        raise SourceError("AKSAudit row without AuditId or RequestUri")
    native.setdefault("verb", "")
    cluster = cluster_of(as_str(obj.get("_ResourceId") or obj.get("ResourceId")))
    yield from k8s_audit.from_audit_event(native, ref, cluster=cluster)


def _dynamic(value: Any) -> Any:
    """Log Analytics exports (CSV->JSON, az CLI) may render a dynamic column as its JSON text."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value
