"""OCSF 1.1 Detection Finding (class 2004) per alert.

Checked against a JSON schema derived from ocsf/ocsf-schema v1.1.0 (tests/test_ocsf_schema.py): only the
class's attributes (what has no place in it goes under ``unmapped``), and no nulls: an unknown value is left out.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import IO, Any

import orjson

from .. import __version__
from ..model import Alert
from .alert_json import alert_dict

SEVERITY_ID = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}


def _epoch_ms(ts: str | None) -> int | None:
    if not ts:
        return None
    try:
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _time(ts: str | None) -> int:
    """The event's time; ``time`` is required, so the finding's own when the event has none."""
    ms = _epoch_ms(ts)
    return int(time.time() * 1000) if ms is None else ms


def to_ocsf(alert: Alert) -> dict[str, Any]:
    d = alert_dict(alert)
    ev = alert.event
    resources: list[dict[str, Any]] = []
    if ev.target.pod or ev.target.container or ev.target.container_id:
        resources.append(
            {
                "type": "Kubernetes Pod" if ev.target.pod else "Container",
                "name": ev.target.pod or ev.target.container,
                "uid": ev.target.container_id,
                "namespace": ev.target.namespace,
                "labels": [x for x in (ev.target.container, ev.target.image) if x],
            }
        )
    finding: dict[str, Any] = {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "severity_id": SEVERITY_ID.get(alert.severity, 0),
        "severity": alert.severity.capitalize(),
        "status_id": 3 if alert.suppressed is not None else 1,  # OCSF finding status: 1 New, 3 Suppressed
        "status_detail": alert.suppressed,
        "time": _time(ev.time),
        "message": d["reasons"][0] if d["reasons"] else d["title"],
        "metadata": {
            "version": "1.1.0",
            "product": {"name": "execguard", "vendor_name": "execguard", "version": __version__},
            "log_name": ev.source.format,
            "original_time": ev.time,
            "uid": ev.event_id or ev.raw,  # a record with no id of its own: its short reference (file:line)
        },
        "finding_info": {
            "uid": f"{d['rule_id']}:{ev.event_id or ev.raw}",
            "title": d["title"],
            "desc": "; ".join(d["reasons"]),
            "analytic": {"uid": d["rule_id"], "name": d["title"], "type_id": 1, "type": "Rule"},
            "related_analytics": [{"uid": r["rule_id"], "name": r["title"], "type_id": 1} for r in d["rules"]],
            "types": d["procedures"],
        },
        "attacks": [
            {
                "technique": {"uid": "T1609", "name": "Container Administration Command"},
                "tactic": {"uid": "TA0002", "name": "Execution"},
                "version": "v15",
            }
        ],
        "actor": {"user": {"name": ev.actor.user, "groups": [{"name": g} for g in ev.actor.groups]}},
        "resources": resources,
        "evidences": [
            {
                "process": {
                    "cmd_line": d["command_display"] if ev.command else None,
                    # the command runs in the target container (an image object needs an image id, which is not known)
                    "container": {"name": ev.target.container, "uid": ev.target.container_id},
                },
                "src_endpoint": {"ip": ev.actor.source_ip[0]} if ev.actor.source_ip else None,
                "data": {
                    "action": ev.action, "verb": ev.verb, "outcome": ev.outcome, "code": ev.code,
                    "source": d["source"], "sources": d["sources"],
                },
            },
            # the join (docs/node.md): each process this exec ran, with the identity of who asked
            *(
                {
                    "process": {
                        "cmd_line": c["command_display"] or None,
                        "pid": (c.get("process") or {}).get("pid"),
                        "container": {"name": c["target"]["container"], "uid": c["target"]["container_id"]},
                    },
                    "data": {"action": c["action"], "source": c["source"], "actor": c["actor"], "time": c["time"]},
                }
                for c in d.get("covers", [])
            ),
        ],
        "unmapped": {
            "execguard": {
                "command": ev.command, "command_origin": ev.command_origin, "tty": ev.tty, "stdin": ev.stdin,
                # a Detection Finding has no http_request: the API request the exec came in
                "request_uri": ev.request_uri, "user_agent": ev.actor.user_agent if ev.request_uri else None,
            }
        },
    }
    return _compact(finding)


def _compact(value: Any) -> Any:
    """``value`` without null attributes, nor objects left empty by them (OCSF has no null values)."""
    if isinstance(value, dict):
        out = {k: _compact(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


class OcsfSink:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, alert: Alert) -> None:
        self.out.write(orjson.dumps(to_ocsf(alert), option=orjson.OPT_OMIT_MICROSECONDS) + b"\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()
