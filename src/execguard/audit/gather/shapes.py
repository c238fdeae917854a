"""Where an offline object has the wrong shape (``rules: 5``, ``metadata: 7``, ``spec.containers: 5``), say so.

The collectors read a wrongly shaped field as empty (``inputs.mapping`` / ``inputs.sequence``) and go on with the
rest; this module names the file, document line, object and field, so the user knows what was not audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...k8s import WORKLOADS
from .inputs import Obj

Shape = tuple[tuple[str, ...], type]  # path ("*" = every element of a list) and the type it must have

_POD_SPEC: list[Shape] = [
    *((((key,), list)) for key in ("containers", "initContainers", "ephemeralContainers", "volumes")),
    *((((key, "*"), dict)) for key in ("containers", "initContainers", "ephemeralContainers", "volumes")),
    (("volumes", "*", "hostPath"), dict),
]
for _key in ("containers", "initContainers", "ephemeralContainers"):
    _POD_SPEC += [((_key, "*", "securityContext"), dict), ((_key, "*", "lifecycle"), dict)]
    for _handler in ("livenessProbe", "readinessProbe", "startupProbe"):
        _exec = (_key, "*", _handler, "exec")
        _POD_SPEC += [((_key, "*", _handler), dict), (_exec, dict), ((*_exec, "command"), list)]

_META: list[Shape] = [(("metadata",), dict), (("metadata", "labels"), dict), (("metadata", "ownerReferences"), list)]
_RULES: list[Shape] = [(("rules",), list), (("rules", "*"), dict)]
_RULES += [(("rules", "*", f), list) for f in ("verbs", "apiGroups", "resources", "resourceNames")]
_AGGREGATION: list[Shape] = [
    (("aggregationRule",), dict),
    (("aggregationRule", "clusterRoleSelectors"), list),
    (("aggregationRule", "clusterRoleSelectors", "*"), dict),
    (("aggregationRule", "clusterRoleSelectors", "*", "matchLabels"), dict),
    (("aggregationRule", "clusterRoleSelectors", "*", "matchExpressions"), list),
]
_BINDING: list[Shape] = [(("roleRef",), dict), (("subjects",), list), (("subjects", "*"), dict)]


def _template(*prefix: str) -> list[Shape]:
    heads = [(prefix[: i + 1], dict) for i in range(len(prefix))]
    return heads + [(prefix + path, t) for path, t in _POD_SPEC]


SHAPES: dict[str, list[Shape]] = {
    "Role": _RULES,
    "ClusterRole": _RULES + _AGGREGATION,
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
    "DockerDaemonConfig": [(("authorization-plugins",), list)],
}
for _kind, (_, _path) in WORKLOADS.items():
    SHAPES[_kind] = _template(*_path)

_NAMES: dict[type, str] = {dict: "a mapping", list: "a list"}


def _walk(value: Any, path: tuple[str, ...], want: type, at: str) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) for each value at ``path`` that is present, not null, and not of type ``want``."""
    if not path:
        if value is not None and not isinstance(value, want):
            yield at, value
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(value, list):
            for i, v in enumerate(value):
                yield from _walk(v, rest, want, f"{at}[{i}]")
        return
    if isinstance(value, dict) and head in value:
        yield from _walk(value[head], rest, want, f"{at}.{head}" if at else head)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def problems(obj: Obj) -> list[str]:
    """One warning per wrongly shaped field of ``obj``: 'FILE:LINE: Kind name: rules is a number, expected a list; ignored'."""
    out: list[str] = []
    where = f"{obj.file}:{obj.line}" if obj.line else obj.file
    label = f"{obj.kind} {obj.name}".rstrip()
    for path, want in _META + SHAPES.get(obj.kind, []):
        for at, value in _walk(obj.data, path, want, ""):
            out.append(f"{where}: {label}: {at} is {_type_name(value)}, expected {_NAMES[want]}; ignored")
    return out
