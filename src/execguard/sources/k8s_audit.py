"""Kubernetes audit events (audit.k8s.io v1 and v1beta1): one Event object, or an EventList.

The other cloud formats (EKS, GKE, AKS) unwrap to this and reuse ``from_audit_event``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from operator import attrgetter
from typing import Any

from .. import redact
from ..k8s import BY_RESOURCE
from ..model import Actor, Event, SourceRef, Target
from . import k8s_rbac
from .base import SourceError, as_dict, as_int, as_str, as_str_list
from .k8s_query import EXEC_OPTION_KEYS, TRUE, exec_query, flag, parameters, redacted_argv, redacted_uri, split

FORMAT = "k8s-audit"

LITERALS: dict[str, tuple[bytes, ...]] = {
    "exec": (b"/exec",),
    "attach": (b"/attach",),
    "portforward": (b"/portforward",),
    "ephemeral_container": (b"ephemeralcontainers",),
    "kubelet_run": (b"/proxy",),
    "kubelet_exec": (b"/proxy",),
    "kubelet_attach": (b"/proxy",),
    "kubelet_portforward": (b"/proxy",),
    "kubelet_cri": (b"/proxy",),
    "kubelet_other": (b"/proxy",),
    "create": (b"command", b"args"),
    "rbac": (b"rbac.authorization.k8s.io",),
    # secrets or pods listed by a client (curl, a Go client, kubectl get): the collection URI, bare or with
    # kubectl's ?limit=500 only, then its closing quote (escaped once in EKS/AKS) and verb list, which
    # kube-apiserver writes right after requestURI. Informer relists (resourceVersion=0), watches and pod
    # creates, most lines naming these collections, stay out. Self access reviews. Exec lines hold /pods/NAME/.
    "discovery": (
        *(form.replace(b"R", r) for r in (b"secrets", b"pods") for q in (b"", b"?limit=500") for form in (
            b'/R' + q + b'","verb":"list"', b'/R' + q + b'\\",\\"verb\\":\\"list\\"', b'/R' + q + b'", "verb": "list"')),
        b"selfsubject",
    ),
}

POD_SUBRESOURCE_ACTIONS = {
    "exec": "exec",
    "attach": "attach",
    "portforward": "portforward",
    "ephemeralcontainers": "ephemeral_container",
}
KUBELET_ACTIONS = {
    "run": "kubelet_run",
    "exec": "kubelet_exec",
    "attach": "kubelet_attach",
    "portforward": "kubelet_portforward",
    "portForward": "kubelet_portforward",
    "cri": "kubelet_cri",
}
WRITE_VERBS = {"create", "update", "patch"}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# exec handlers in a container spec: the kubelet runs their command inside the container
HOOKS = (
    ("lifecycle.postStart", ("lifecycle", "postStart", "exec", "command")),
    ("lifecycle.preStop", ("lifecycle", "preStop", "exec", "command")),
    ("livenessProbe", ("livenessProbe", "exec", "command")),
    ("readinessProbe", ("readinessProbe", "exec", "command")),
    ("startupProbe", ("startupProbe", "exec", "command")),
)


def match(obj: dict[str, Any]) -> bool:
    kind = obj.get("kind")
    if kind in ("Event", "EventList"):
        return True
    return "auditID" in obj or ("requestURI" in obj and "verb" in obj)


def events(obj: dict[str, Any], ref: SourceRef) -> list[Event]:
    # a list, not a generator: the reader lists a record's events whole anyway (Reader._guard)
    kind = obj.get("kind")
    if kind == "EventList":
        items = obj.get("items")
        if not isinstance(items, list):
            raise SourceError("EventList without an items list")
        out: list[Event] = []
        for item in items:
            out += from_audit_event(as_dict(item, "EventList item"), ref)
        return out
    if kind != "Event" and "auditID" not in obj and not ("requestURI" in obj and "verb" in obj):  # match(obj)
        raise SourceError(NOT_AUDIT)
    return _event(obj, ref, None)


def _outcome(code: int | None, decision: str | None, status: str | None) -> str:
    if decision == "forbid" or code in (401, 403):
        return "denied"
    if code is not None and code >= 400:
        return "error"
    if status == "Failure":
        return "error"
    if code is not None or decision == "allow":
        return "allowed"
    return "unknown"


def _kubelet_target(rest: list[str], target: Target) -> None:
    # /run|exec|attach/{ns}/{pod}/{container} or /{ns}/{pod}/{uid}/{container}
    args = rest[1:]
    if len(args) >= 2:
        target.namespace, target.pod = args[0], args[1]
    if len(args) == 3:
        target.container = args[2]
    elif len(args) >= 4:
        target.container = args[3]


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _containers_from_patch_ops(ops: list[Any]) -> list[dict[str, Any]]:
    """JSON-patch ops that set a container, its command/args, or one of its exec hooks become pseudo
    containers: the value nested back under its path below the container, so hooks are found too."""
    found: list[dict[str, Any]] = []
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
            continue
        path = str(op.get("path", ""))
        value = op.get("value")
        steps = path.split("/")
        at = next((i for i, s in enumerate(steps[:-1]) if s in CONTAINER_LISTS and (steps[i + 1].isdigit() or steps[i + 1] == "-")), None)
        if at is None:
            if steps[-1] in ("command", "args"):
                found.append({"name": path, steps[-1]: value})
            elif isinstance(value, dict) and ("command" in value or "args" in value):
                found.append(value)
            continue
        pseudo: Any = value
        for step in reversed(steps[at + 2 :]):
            pseudo = {step: pseudo}
        if isinstance(pseudo, dict):
            found.append(pseudo if at + 2 == len(steps) else {"name": path, **pseudo})
    return found


def container_commands(c: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(origin, argv) of every command a container spec makes the kubelet run: its entrypoint override,
    then lifecycle hooks and exec probes (a postStart hook runs a script as surely as a command does)."""
    argv = as_str_list(c.get("command")) + as_str_list(c.get("args"))
    if argv:
        yield "container", argv
    for name, path in HOOKS:
        hook = as_str_list(_dig(c, path))
        if hook:
            yield name, hook


def workload_containers(resource: str, body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return _containers_from_patch_ops(body)
    if not isinstance(body, dict):
        return []
    spec = _dig(body, BY_RESOURCE[resource][1])
    if not isinstance(spec, dict):
        return []
    out: list[dict[str, Any]] = []
    for key in CONTAINER_LISTS:
        items = spec.get(key)
        if isinstance(items, list):
            out.extend(c for c in items if isinstance(c, dict))
    return out


NOT_AUDIT = "not a Kubernetes audit event (no auditID/requestURI/verb)"


def from_audit_event(obj: dict[str, Any], ref: SourceRef, cluster: str | None = None) -> list[Event]:
    if not match(obj):
        raise SourceError(NOT_AUDIT)
    return _event(obj, ref, cluster)


def _event(obj: dict[str, Any], ref: SourceRef, cluster: str | None) -> list[Event]:
    # Every parsed line of a dense log comes here: the type tests of as_dict/as_str are made inline for the
    # common case (a dict, a string) and the model's classes built with positional arguments, which CPython
    # binds at half the cost of keywords (Event: 1.2 against 2.6 µs).
    get = obj.get
    user = get("user")
    if type(user) is not dict:
        user = as_dict(user, "user")
    imp = get("impersonatedUser")
    if type(imp) is not dict:
        imp = as_dict(imp, "impersonatedUser")
    extra = user.get("extra")
    if type(extra) is not dict:
        extra = as_dict(extra, "user.extra")
    obj_ref = get("objectRef")
    if type(obj_ref) is not dict:
        obj_ref = as_dict(obj_ref, "objectRef")
    status = get("responseStatus")
    if type(status) is not dict:
        status = as_dict(status, "responseStatus")
    annotations = get("annotations")
    if type(annotations) is not dict:
        annotations = as_dict(annotations, "annotations")
    uri = get("requestURI")
    uri = (uri if type(uri) is str else as_str(uri)) or ""
    verb = get("verb")
    if type(verb) is not str:
        verb = as_str(verb)
    resource = obj_ref.get("resource")
    if type(resource) is not str:
        resource = as_str(resource)
    subresource = obj_ref.get("subresource")
    if type(subresource) is not str:
        subresource = as_str(subresource)
    code = status.get("code")
    if type(code) is not int:
        code = as_int(code)
    pod_names = as_str_list(extra.get("authentication.kubernetes.io/pod-name")) if extra else None
    username = user.get("username")
    namespace = obj_ref.get("namespace")
    time = get("stageTimestamp") or get("requestReceivedTimestamp") or get("timestamp")
    stage = get("stage")
    event_id = get("auditID")

    # Actor(user, groups, source_ip, user_agent, impersonated_user, credential_pod)
    actor = Actor(
        username if type(username) is str else as_str(username),
        as_str_list(user.get("groups")),
        as_str_list(get("sourceIPs")),
        as_str(get("userAgent")),
        as_str(imp.get("username")) if imp else None,
        pod_names[0] if pod_names else None,
    )
    # Target(cluster, namespace, pod)
    target = Target(
        cluster,
        namespace if type(namespace) is str else as_str(namespace),
        as_str(obj_ref.get("name")) if resource == "pods" else None,
    )
    # Event(time, source, actor, action, verb, resource, subresource, request_uri, stage, target)
    base = Event(
        time if type(time) is str else as_str(time),
        ref,
        actor,
        "other",
        verb,
        resource,
        subresource,
        redacted_uri(uri) if uri else None,
        stage if type(stage) is str else as_str(stage),
        target,
    )
    base.outcome = _outcome(code, as_str(annotations.get("authorization.k8s.io/decision")), as_str(status.get("status")))
    base.code = code
    base.event_id = event_id if type(event_id) is str else as_str(event_id)
    base.raw = f"{ref.file}:{ref.line}" if ref.line else ref.file
    try:
        path, query = split(uri)
    except ValueError as exc:  # urlsplit rejects e.g. an unclosed '[' host
        raise SourceError(f"bad requestURI ({exc})") from None

    if resource == "pods" and subresource in POD_SUBRESOURCE_ACTIONS:
        pod_query = exec_query(query)
        base.action = POD_SUBRESOURCE_ACTIONS[subresource]
        base.target.container = pod_query.container
        base.command = list(pod_query.command)
        base.tty = pod_query.tty
        base.stdin = pod_query.stdin
        if base.action == "ephemeral_container":
            return [_ephemeral(obj, base)]
        options = exec_options(get("requestObject"))
        if options is not None:
            apply_exec_options(base, options, uri_has_options=pod_query.has_options)
        return [base]

    if resource == "nodes" and subresource == "proxy":
        params = parameters(query)
        base.target.node = as_str(obj_ref.get("name"))
        segments = [s for s in path.split("/") if s]
        rest = segments[segments.index("proxy") + 1 :] if "proxy" in segments else []
        base.action = KUBELET_ACTIONS.get(rest[0], "kubelet_other") if rest else "kubelet_other"
        if base.action in ("kubelet_run", "kubelet_exec", "kubelet_attach", "kubelet_portforward"):
            _kubelet_target(rest, base.target)
        cmd = [v for k, v in params if k == "command"]
        if not cmd:
            # kubelet /run takes one 'cmd' that it splits on white space
            cmd = [word for k, v in params if k == "cmd" for word in v.split()]
        base.command = list(redacted_argv(tuple(cmd)))
        base.tty = flag(params, "tty")
        base.stdin = flag(params, "stdin", "input")
        return [base]

    if k8s_rbac.is_rbac_write(resource, as_str(obj_ref.get("apiGroup")), verb, subresource):
        base.action = "rbac"
        base.target.kind = k8s_rbac.KINDS[str(resource)]
        base.rbac = k8s_rbac.change(obj, str(resource), base.target.namespace, as_str(obj_ref.get("name")))
        return [base]
    if _discovery(resource, subresource, verb):
        base.action = "discovery"
        return [base]

    if resource in BY_RESOURCE and verb in WRITE_VERBS:
        body = get("requestObject")
        commands = [(c, origin, argv) for c in workload_containers(resource, body) for origin, argv in container_commands(c)]
        if commands:
            base.action = "create"
            base.target.kind = BY_RESOURCE[resource][0]
            if base.target.pod is None and resource == "pods" and isinstance(body, dict):
                meta = as_dict(body.get("metadata"), "metadata")
                base.target.pod = as_str(meta.get("name") or meta.get("generateName"))
            out = []
            for c, origin, argv in commands:
                ev = _copy(base)
                ev.target.container = as_str(c.get("name"))
                ev.target.image = as_str(c.get("image"))
                ev.command = list(redacted_argv(tuple(argv)))
                ev.command_origin = origin
                sc = c.get("securityContext")
                if isinstance(sc, dict) and isinstance(sc.get("privileged"), bool):
                    ev.privileged = sc["privileged"]
                ev.tty = c.get("tty") if isinstance(c.get("tty"), bool) else None
                ev.stdin = c.get("stdin") if isinstance(c.get("stdin"), bool) else None
                out.append(ev)
            return out

    return [base]


def _discovery(resource: str | None, subresource: str | None, verb: str | None) -> bool:
    """Secrets or pods listed, or a self access review: the look around a stolen token takes before an exec.

    A get of one named secret is left out: every controller does it all day, and it costs the prefilter.
    """
    if subresource:
        return False
    if resource in ("secrets", "pods"):
        return verb == "list"
    return resource in ("selfsubjectaccessreviews", "selfsubjectrulesreviews") and verb == "create"


EXEC_OPTION_KINDS = {None, "PodExecOptions", "PodAttachOptions"}


def exec_options(body: Any) -> dict[str, Any] | None:
    """A request body in the shape of PodExecOptions/PodAttachOptions, else None."""
    if not isinstance(body, dict) or body.get("kind") not in EXEC_OPTION_KINDS:
        return None
    if not any(key in body for key in EXEC_OPTION_KEYS):
        return None
    return body


def _option_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip().lower() in TRUE
    return None


def apply_exec_options(ev: Event, options: dict[str, Any], uri_has_options: bool) -> None:
    """Take argv, container, stdin and tty from an exec/attach request body where the URI has none.

    The API server runs what the URI's query says, so its argv and container stand, and when it has any
    options its flags do too (an absent flag there means false). A body argv that differs from the URI's
    is kept aside (``command_body``) for a rule to report.
    """
    raw = options.get("command")
    # some exports flatten a one-element list to its string
    body_argv = redact.argv([raw] if isinstance(raw, str) and raw else as_str_list(raw))
    if not ev.command:
        ev.command = body_argv
    elif body_argv and body_argv != ev.command:
        ev.command_body = body_argv
    container = options.get("container")
    if not ev.target.container and isinstance(container, str) and container:
        ev.target.container = container
    if not uri_has_options:
        for name in ("tty", "stdin"):
            setattr(ev, name, _option_flag(options.get(name)))


def _ephemeral(obj: dict[str, Any], base: Event) -> Event:
    body = obj.get("requestObject")
    spec = _dig(body, ("spec",)) if isinstance(body, dict) else None
    if isinstance(spec, dict) and isinstance(spec.get("ephemeralContainers"), list):
        # the request lists every ephemeral container; the newest one is last
        items = [c for c in spec["ephemeralContainers"] if isinstance(c, dict)]
        if items:
            c = items[-1]
            ev = _copy(base)
            ev.target.container = as_str(c.get("name"))
            ev.target.image = as_str(c.get("image"))
            ev.command = redact.argv(as_str_list(c.get("command")) + as_str_list(c.get("args")))
            ev.tty = c.get("tty") if isinstance(c.get("tty"), bool) else None
            ev.stdin = c.get("stdin") if isinstance(c.get("stdin"), bool) else None
            target_name = as_str(c.get("targetContainerName"))
            if target_name:
                ev.target.kind = f"debug->{target_name}"
            return ev
    return base


# every field, in the order the dataclasses' __init__ takes them: a copy built positionally costs a fifth of
# dataclasses.replace's (which binds each field by keyword)
_EVENT_FIELDS = attrgetter(*(f.name for f in fields(Event)))
_TARGET_FIELDS = attrgetter(*(f.name for f in fields(Target)))


def _copy(ev: Event) -> Event:
    """``ev`` with its own target, command and command_body (what the events of one record set apart)."""
    new = Event(*_EVENT_FIELDS(ev))
    new.target = Target(*_TARGET_FIELDS(ev.target))
    new.command = list(ev.command)
    new.command_body = list(ev.command_body)
    return new
