"""kube-apiserver facts from its command line or static pod: anonymous authentication, authorization, audit backends."""

from __future__ import annotations

import re
from typing import Any

from ...k8s import dig
from ..engine import Item
from ..gather.inputs import CommandLine, Inputs, Obj, sequence
from .audit_policy import audit_policy_items
from .flags import parse_flags

TRUE = ("true", "1", "t", "yes", "y")


def _bool(v: str) -> bool:
    return v.strip().lower() in TRUE




def _container_argv(c: Any) -> list[str]:
    if not isinstance(c, dict):
        return []
    return [str(x) for x in sequence(c.get("command")) + sequence(c.get("args"))]


def apiserver_commands(inputs: Inputs) -> list[CommandLine]:
    out = [c for c in inputs.commands if c.program == "kube-apiserver"]
    for pod in inputs.of_kind("Pod"):
        for c in sequence(dig(pod.data, "spec", "containers")):
            argv = _container_argv(c)
            if argv and argv[0].rsplit("/", 1)[-1] == "kube-apiserver":
                out.append(CommandLine(argv, pod.file, pod.line))
    return out


_IMAGE_TAG = re.compile(r"kube-apiserver[^:@/]*:v?(\d+)\.(\d+)")
_GIT_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def apiserver_version(inputs: Inputs) -> tuple[tuple[int, int] | None, str]:
    """(major, minor) of the API server from live /version or a kube-apiserver image tag, and where it was read."""
    for o in inputs.of_kind("ServerVersion"):  # live: GET /version
        m = _GIT_VERSION.match(str(o.data.get("gitVersion") or ""))
        if m:
            return (int(m.group(1)), int(m.group(2))), f"/version {o.data.get('gitVersion')}"
    for pod in inputs.of_kind("Pod"):
        for c in sequence(dig(pod.data, "spec", "containers")):
            image = str(c.get("image") or "") if isinstance(c, dict) else ""
            m = _IMAGE_TAG.search(image)
            if m:
                return (int(m.group(1)), int(m.group(2))), f"image {image} in {pod.file}"
    return None, ""


HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
ANONYMOUS_GATE = "AnonymousAuthConfigurableEndpoints"


def feature_gates(value: str) -> dict[str, bool]:
    out = {}
    for part in value.split(","):
        name, eq, v = part.strip().partition("=")
        if eq:
            out[name.strip()] = _bool(v)
    return out


def anonymous_facts(
    flags: dict[str, str], authn_file: str | None, authn: Obj | None, version: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Anonymous authentication of kube-apiserver from --anonymous-auth and the --authentication-config file.

    ``anonymous_auth`` is true only when anonymous requests are authenticated on every path; a file's
    ``anonymous.conditions`` (exact, case-sensitive paths) restrict it to those paths. The API server refuses
    to start when --anonymous-auth is given together with an ``anonymous`` section, when conditions are set
    with ``enabled: false``, or with the section while the AnonymousAuthConfigurableEndpoints gate is off;
    those are reported as conflicts and the setting is unknown (None), not guessed.
    """
    flag = flags.get("anonymous-auth")
    facts: dict[str, Any] = {
        "authentication_config": authn_file,
        "authentication_config_missing": bool(authn_file) and authn is None,
        "anonymous_paths": None,
        "anonymous_other_paths": [],
        "anonymous_conflicts": [],
    }
    section = authn.data.get("anonymous") if authn else None
    if authn is not None and section is not None:
        where = str(authn_file)
        section = section if isinstance(section, dict) else {}
        enabled = section.get("enabled") is True
        conditions = [c for c in sequence(section.get("conditions")) if isinstance(c, dict)]
        paths = [str(c.get("path") or "") for c in conditions]
        conflicts = []
        if flag is not None:
            conflicts.append(f"--anonymous-auth={flag} is set and {where} has an anonymous section")
        if conditions and not enabled:
            conflicts.append(f"{where}: anonymous.conditions are set but anonymous.enabled is not true")
        gate = feature_gates(flags.get("feature-gates", "")).get(ANONYMOUS_GATE)
        if gate is False:
            conflicts.append(f"--feature-gates {ANONYMOUS_GATE}=false and {where} has an anonymous section")
        elif version is not None and (version < (1, 31) or (version < (1, 32) and gate is not True)):
            # the section came in 1.31 behind an alpha gate (off by default), on by default from 1.32
            need = "Kubernetes 1.31 or later" if version < (1, 31) else f"{ANONYMOUS_GATE}=true on 1.31 (alpha, off by default)"
            conflicts.append(f"Kubernetes {version[0]}.{version[1]} and {where} has an anonymous section, which needs {need}")
        facts["anonymous_conflicts"] = conflicts
        if conflicts:
            facts["anonymous_auth"] = None
            facts["anonymous_auth_from"] = "unknown: the API server does not start with this configuration"
            return facts
        facts["anonymous_auth"] = enabled and not paths
        facts["anonymous_paths"] = paths if enabled else []
        facts["anonymous_other_paths"] = [p for p in paths if p not in HEALTH_PATHS] if enabled else []
        if not enabled:
            facts["anonymous_auth_from"] = f"{where}: anonymous.enabled false"
        elif paths:
            facts["anonymous_auth_from"] = f"{where}: anonymous only on {', '.join(paths)}"
        else:
            facts["anonymous_auth_from"] = f"{where}: anonymous.enabled true with no conditions (every path)"
        return facts
    if flag is not None:
        facts["anonymous_auth"] = _bool(flag)
        facts["anonymous_auth_from"] = f"--anonymous-auth={flag}"
        if facts["authentication_config_missing"]:
            # Were the file to hold an anonymous section, the API server would refuse the flag and not run.
            facts["anonymous_auth_from"] += f" (--authentication-config {authn_file} not in the input)"
    elif facts["authentication_config_missing"]:
        facts["anonymous_auth"] = None
        facts["anonymous_auth_from"] = "unknown (that file may hold an anonymous section)"
    else:
        facts["anonymous_auth"] = True
        facts["anonymous_auth_from"] = "default (true)" + (f"; {authn_file} has no anonymous section" if authn else "")
    return facts


def apiserver_items(inputs: Inputs) -> tuple[list[Item], set[str]]:
    items: list[Item] = []
    policies_used: set[str] = set()
    for cl in apiserver_commands(inputs):
        flags = parse_flags(cl.argv, frozenset({"anonymous-auth"}))
        authn_file = flags.get("authentication-config")
        authn = inputs.resolve(authn_file, "AuthenticationConfiguration") if authn_file else None
        facts: dict[str, Any] = anonymous_facts(flags, authn_file, authn, apiserver_version(inputs)[0])
        authz_config = flags.get("authorization-config")
        modes: list[str] | None
        if authz_config:
            obj = inputs.resolve(authz_config, "AuthorizationConfiguration")
            authorizers = obj.data.get("authorizers") if obj else None
            if obj is None or not isinstance(authorizers, list | None):
                modes = None  # not in the input, or authorizers that do not decode (the API server does not start)
            else:
                modes = [str(a.get("type")) for a in sequence(authorizers) if isinstance(a, dict)]
            note = " (not in the input)" if obj is None else "" if modes is not None else " (authorizers is not a list)"
            facts["authorization_from"] = f"--authorization-config {authz_config}{note}"
        elif "authorization-mode" in flags:
            modes = [m for m in flags["authorization-mode"].split(",") if m]
            facts["authorization_from"] = f"--authorization-mode={flags['authorization-mode']}"
        else:
            modes = ["AlwaysAllow"]
            facts["authorization_from"] = "default (--authorization-mode unset → AlwaysAllow)"
        facts["authorization_modes"] = modes
        facts["authorization_known"] = modes is not None
        facts["always_allow"] = bool(modes) and "AlwaysAllow" in (modes or [])
        backends = [b for b, f in (("log", "audit-log-path"), ("webhook", "audit-webhook-config-file")) if flags.get(f)]
        policy_file = flags.get("audit-policy-file")
        facts["audit_backends"] = backends
        facts["audit_policy_file"] = policy_file
        facts["audit_enabled"] = bool(backends and policy_file)
        policy = inputs.resolve(policy_file, "Policy") if policy_file else None
        facts["audit_policy_missing"] = bool(policy_file) and policy is None
        if policy:
            policies_used.add(policy.file)
        items.append(Item("apiserver", f"kube-apiserver ({cl.file})", facts, cl.file, cl.line))
        if policy and facts["audit_enabled"]:
            items.extend(audit_policy_items(policy))
    return items, policies_used


