"""An Alert back from the JSON that ``Alert.to_dict`` wrote (the store, a spill file).

``alert_dict(restore(d)) == d`` for every alert execguard writes (tests/test_store.py checks it), so
the table and jsonl sinks can show stored alerts exactly as hunt showed them.
"""

from __future__ import annotations

from typing import Any

from ..model import Actor, Alert, Event, Process, RbacChange, RuleMatch, SourceRef, Target


def _source(d: dict[str, Any] | None) -> SourceRef:
    d = d or {}
    return SourceRef(format=d.get("format") or "", file=d.get("file") or "", line=d.get("line"))


def restore(d: dict[str, Any]) -> Alert:
    actor = d.get("actor") or {}
    target = d.get("target") or {}
    ev = Event(
        time=d.get("time"),
        source=_source(d.get("source")),
        actor=Actor(
            user=actor.get("user"),
            groups=list(actor.get("groups") or []),
            source_ip=list(actor.get("source_ip") or []),
            user_agent=actor.get("user_agent"),
            impersonated_user=actor.get("impersonated_user"),
            credential_pod=actor.get("credential_pod"),
        ),
        action=d.get("action") or "other",
        verb=d.get("verb"),
        request_uri=d.get("request_uri"),
        target=Target(**{k: target.get(k) for k in Target.__dataclass_fields__}),
        command=list(d.get("command") or []),
        command_origin=d.get("command_origin"),
        command_body=list(d.get("command_body_conflict") or []),
        tty=d.get("tty"),
        stdin=d.get("stdin"),
        privileged=d.get("privileged"),
        run_as_user=d.get("run_as_user"),
        outcome=d.get("outcome") or "unknown",
        code=d.get("code"),
        event_id=d.get("event_id"),
        rbac=_rbac(d.get("rbac")),
        process=_process(d.get("process")),
    )
    # tags: the lead rule carries them all, so the union (what to_dict writes) is unchanged
    procedures = list(d.get("procedures") or [])
    tags = ["T1609", *procedures] if procedures else []
    rules = d.get("rules") or [{"rule_id": d.get("rule_id") or "?", "title": d.get("title") or "", "severity": d.get("severity") or "info"}]
    reasons = list(d.get("reasons") or [])
    matches = [
        RuleMatch(
            rule_id=r.get("rule_id") or "?", title=r.get("title") or "", severity=r.get("severity") or "info",
            tags=tags if i == 0 else [], reason=reasons[i] if i < len(reasons) else "",
        )
        for i, r in enumerate(rules)
    ]
    sources = d.get("sources") or []
    covers = [_covered(c) for c in d.get("covers") or []]
    return Alert(event=ev, matches=matches, suppressed=d.get("suppressed"), also_seen=[_source(s) for s in sources[1:]], covers=covers)


def _covered(d: dict[str, Any]) -> Event:
    actor = d.get("actor") or {}
    target = d.get("target") or {}
    return Event(
        time=d.get("time"),
        source=_source(d.get("source")),
        actor=Actor(
            user=actor.get("user"), groups=list(actor.get("groups") or []),
            source_ip=list(actor.get("source_ip") or []), user_agent=actor.get("user_agent"),
        ),
        action=d.get("action") or "other",
        target=Target(**{k: target.get(k) for k in Target.__dataclass_fields__}),
        command=list(d.get("command") or []),
        event_id=d.get("event_id"),
        process=_process(d.get("process")),
    )  # fmt: skip


def _rbac(d: dict[str, Any] | None) -> RbacChange | None:
    if d is None:
        return None
    return RbacChange(
        kind=d.get("kind") or "",
        name=d.get("name"),  # already "namespace/name" as written
        rules=None,
        role_ref=d.get("role"),
        subjects=list(d.get("subjects") or []),
        principals=list(d.get("principals") or []),
        subject_classes=list(d.get("subject_class") or []),
        capabilities=list(d.get("capabilities") or []),
        known=d.get("known") or "",
    )


def _process(d: dict[str, Any] | None) -> Process | None:
    if d is None:
        return None
    return Process(
        pid=d.get("pid"), ppid=d.get("ppid"), exe=d.get("exe"), cwd=d.get("cwd"), uid=d.get("uid"),
        parent_exe=d.get("parent_exe"), parent_command=list(d.get("parent_command") or []),
        exec_id=d.get("exec_id"), in_init_tree=d.get("in_init_tree"), known=d.get("known") or "",
    )  # fmt: skip
