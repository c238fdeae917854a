"""An alert as a JSON object: the shape the jsonl and OCSF outputs (and tests) share."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from ..model import Actor, Alert, Event, Process, RbacChange, RuleMatch, SourceRef, Target, display, match_rank

# the characters logged commands hold most often that display escapes (a tab in a script), as it escapes them
_COMMON = (("\t", "\\x09"), ("\n", "\\n"), ("\r", "\\x0d"))


def _shown(value: str) -> str:
    """model.display: every character it escapes is one str.isprintable refuses (a control, format or
    separator character, a surrogate), so printable text comes back as it is without the pattern's scan,
    non-ASCII (a reason cut with '…') included. Text that is printable once its tabs and newlines are escaped
    (most scripts in commands) holds nothing else display would escape, so str.replace does it all."""
    if value.isprintable():
        return value
    shown = value
    for raw, escaped in _COMMON:
        shown = shown.replace(raw, escaped)
    return shown if shown.isprintable() else display(value)


# reasons and commands repeat from alert to alert; escaping them is a pure function of the text
_display = lru_cache(maxsize=4096)(_shown)


def _source(s: SourceRef) -> dict[str, Any]:
    return {"format": s.format, "file": s.file, "line": s.line}


def _actor_dict(actor: Actor) -> dict[str, Any]:
    return {
        "user": actor.user,
        "groups": list(actor.groups),
        "source_ip": list(actor.source_ip),
        "user_agent": actor.user_agent,
        "impersonated_user": actor.impersonated_user,
        "kind": actor.kind,
        "credential_pod": actor.credential_pod,
    }


def _target(t: Target) -> dict[str, Any]:
    return {
        "cluster": t.cluster, "namespace": t.namespace, "pod": t.pod, "container": t.container,
        "container_id": t.container_id, "image": t.image, "node": t.node, "kind": t.kind,
    }  # fmt: skip


def _rbac(r: RbacChange) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "name": f"{r.namespace}/{r.name}" if r.namespace and r.name else r.name,
        "role": r.role_ref,
        "subjects": list(r.subjects),
        "principals": list(r.principals),
        "subject_class": list(r.subject_classes),
        "capabilities": list(r.capabilities),
        "known": r.known,
    }


def _process(p: Process) -> dict[str, Any]:
    return {
        "pid": p.pid, "ppid": p.ppid, "exe": p.exe, "cwd": p.cwd, "uid": p.uid, "parent_exe": p.parent_exe,
        "parent_command": list(p.parent_command), "exec_id": p.exec_id, "in_init_tree": p.in_init_tree, "known": p.known,
    }  # fmt: skip


def _covered(ev: Event) -> dict[str, Any]:
    """A process or runtime exec the join folded into this alert, with the identity it was given."""
    return {
        "time": ev.time,
        "source": _source(ev.source),
        "action": ev.action,
        "command": ev.command,
        "command_display": _display(" ".join(ev.command)),
        "actor": {
            "user": ev.actor.user, "groups": list(ev.actor.groups),
            "source_ip": list(ev.actor.source_ip), "user_agent": ev.actor.user_agent,
        },
        "target": _target(ev.target),
        "event_id": ev.event_id,
        **({"process": _process(ev.process)} if ev.process is not None else {}),
    }


def alert_dict(alert: Alert) -> dict[str, Any]:
    """The alert's JSON object."""
    ev = alert.event
    matches = alert.matches
    if len(matches) == 1:  # most alerts: nothing to rank or merge
        ranked = matches
        tags = sorted(set(matches[0].tags))
    else:
        ranked = sorted(matches, key=match_rank, reverse=True)
        tags = sorted({t for m in matches for t in m.tags})
    lead = ranked[0]  # Alert.lead: the first of the most severe (reverse keeps the sort stable)
    shape = {
        "rule_id": lead.rule_id,
        "title": lead.title,
        "severity": lead.severity,
        "technique": "T1609",
        "procedures": [t for t in tags if not t.startswith("T")],
        "time": ev.time,
        "source": _source(ev.source),
        "sources": [_source(ev.source), *(_source(s) for s in alert.also_seen)] if alert.also_seen else [_source(ev.source)],
        "actor": _actor_dict(ev.actor),
        "target": _target(ev.target),
        **_what(ev),
        "reasons": [_display(m.reason) for m in ranked],
        "rules": [{"rule_id": m.rule_id, "title": m.title, "severity": m.severity} for m in ranked],
    }
    # the optional parts last, in this order
    if alert.suppressed is not None:
        shape["suppressed"] = alert.suppressed
    if ev.rbac is not None:
        shape["rbac"] = _rbac(ev.rbac)
    if ev.process is not None:
        shape["process"] = _process(ev.process)
    if alert.covers:  # the join (docs/node.md): what this exec ran, each with the identity of who asked
        shape["covers"] = [_covered(e) for e in alert.covers]
    # a throttle summary (sinks/throttle.py, a subclass of Alert) says how many repeats it held back
    if alert.__class__ is not Alert and (throttled := getattr(alert, "throttled", None)) is not None:
        shape["throttled"] = throttled
    return shape


# What an alert's rule matches decide, apart from their reasons, is the same for every alert of the same rules:
# the lead, the procedures, the "rules" list (as JSON), and the order the reasons go in. Keyed by each match's
# (rule_id, title, severity, tags); most alerts of a hunt share a few dozen such keys.
_Ruled = tuple[str, str, str, list[str], orjson.Fragment, "tuple[int, ...] | None"]
_RULED: dict[tuple[Any, ...], _Ruled] = {}
RULED_MAX = 4096  # then forgotten all at once


def _ruled(key: tuple[Any, ...], matches: list[RuleMatch]) -> _Ruled:
    if len(matches) == 1:
        ranked, order = matches, None
        tags = sorted(set(matches[0].tags))
    else:  # indices so that the reasons of the next alert of these rules go in the same order
        order = tuple(sorted(range(len(matches)), key=lambda i: match_rank(matches[i]), reverse=True))
        ranked = [matches[i] for i in order]
        tags = sorted({t for m in matches for t in m.tags})
    lead = ranked[0]
    rules = orjson.dumps([{"rule_id": m.rule_id, "title": m.title, "severity": m.severity} for m in ranked])
    got = (lead.rule_id, lead.title, lead.severity, [t for t in tags if not t.startswith("T")], orjson.Fragment(rules), order)
    if len(_RULED) >= RULED_MAX:
        _RULED.clear()
    _RULED[key] = got
    return got


def _what(ev: Event) -> dict[str, Any]:
    """The event's action, command and outcome, in the order both shapes write them."""
    command = ev.command
    return {
        "action": ev.action,
        "verb": ev.verb,
        "command": command,
        "command_display": _display(" ".join(command)),
        "command_origin": ev.command_origin,
        "command_body_conflict": ev.command_body,
        "tty": ev.tty,
        "stdin": ev.stdin,
        "privileged": ev.privileged,
        "run_as_user": ev.run_as_user,
        "outcome": ev.outcome,
        "code": ev.code,
        "event_id": ev.event_id,
        "request_uri": ev.request_uri,
    }


def alert_json(alert: Alert) -> bytes:
    """One line of JSON, without the trailing newline: ``orjson.dumps(alert_dict(alert))`` in fewer steps.

    A sorted hunt renders every alert after its last record is read, one process alone: its closing stretch.
    The source and target go as dicts (orjson writes a slotted dataclass at about twice a dict's cost), the
    actor as JSON made once per distinct actor."""
    ev = alert.event
    if alert.suppressed is not None or ev.rbac is not None or ev.process is not None or alert.covers or alert.__class__ is not Alert:
        return orjson.dumps(alert_dict(alert))  # the optional parts: rare in a hunt, the plain path
    matches = alert.matches
    if len(matches) == 1:
        m = matches[0]
        key: tuple[Any, ...] = (m.rule_id, m.title, m.severity, *m.tags)
    else:
        key = tuple((m.rule_id, m.title, m.severity, *m.tags) for m in matches)
    ruled = _RULED.get(key)
    if ruled is None:
        ruled = _ruled(key, matches)
    rule_id, title, severity, procedures, rules, order = ruled
    source = _source(ev.source)
    return orjson.dumps({
        "rule_id": rule_id,
        "title": title,
        "severity": severity,
        "technique": "T1609",
        "procedures": procedures,
        "time": ev.time,
        "source": source,
        "sources": [source, *(_source(s) for s in alert.also_seen)] if alert.also_seen else [source],
        "actor": _actor(ev.actor),
        "target": _target(ev.target),
        **_what(ev),
        "reasons": [_display(matches[0].reason)] if order is None else [_display(matches[i].reason) for i in order],
        "rules": rules,
    })  # fmt: skip


# The actor part as JSON, per distinct actor: a hunt's alerts come from a few dozen identities.
_ACTORS: dict[tuple[Any, ...], orjson.Fragment] = {}
ACTORS_MAX = 4096  # then forgotten all at once


def _actor(actor: Actor) -> orjson.Fragment:
    key = (actor.user, actor.user_agent, actor.impersonated_user, actor.credential_pod, len(actor.groups), *actor.groups, *actor.source_ip)
    got = _ACTORS.get(key)
    if got is None:
        got = orjson.Fragment(orjson.dumps(_actor_dict(actor)))
        if len(_ACTORS) >= ACTORS_MAX:
            _ACTORS.clear()
        _ACTORS[key] = got
    return got
