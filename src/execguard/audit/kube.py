"""Kubelet, kube-apiserver and audit-policy facts from command lines, static pod manifests and config files;
the coverage of a live API listing (lists it could not read)."""

from __future__ import annotations

from typing import Any

from .engine import Item
from .inputs import CommandLine, Inputs, Obj
from .live import coverage_items

TRUE = ("true", "1", "t", "yes", "y")


def parse_flags(argv: list[str], bool_flags: frozenset[str] = frozenset()) -> dict[str, str]:
    """``--name=value`` / ``--name value`` / bare boolean ``--name``; the last occurrence wins (as pflag)."""
    out: dict[str, str] = {}
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if not a.startswith("--"):
            continue
        name, eq, value = a[2:].partition("=")
        if eq:
            out[name] = value
        elif name in bool_flags:
            out[name] = "true"
        elif i < len(argv):
            out[name] = argv[i]
            i += 1
    return out


def _bool(v: str) -> bool:
    return v.strip().lower() in TRUE


def _show_default(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else (str(v) if v != "" else "none")


def _dig(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


# ---------------------------------------------------------------- kubelet

KUBELET_BOOL = frozenset({"anonymous-auth", "authentication-token-webhook"})


def kubelet_facts(
    flags: dict[str, str], config: Obj | None, config_named: str | None, unresolved: list[str] | None = None
) -> dict[str, Any]:
    """Effective kubelet settings. Flags override the --config file; each source has its own defaults.

    Flag defaults: --anonymous-auth=true, --authorization-mode=AlwaysAllow, --read-only-port=10255.
    kubelet.config.k8s.io/v1beta1 defaults: anonymous.enabled=false, authorization.mode=Webhook, readOnlyPort=0.
    When --config names a file we were not given, or the command line holds variables we could not expand
    (systemd Environment=/EnvironmentFile=), settings not set by a visible flag are unknown (None).
    """
    cfg = config.data if config else None
    missing = config_named is not None and cfg is None
    facts: dict[str, Any] = {
        "config_file": config_named or (config.file if config else None),
        "config_missing": missing,
        "unresolved": list(unresolved or []),
    }

    def pick(flag: str, conv: Any, cfg_path: tuple[str, ...], cfg_default: Any, flag_default: Any) -> tuple[Any, str]:
        if flag in flags:
            return conv(flags[flag]), f"flag --{flag}={flags[flag]}"
        if unresolved:
            return None, f"unknown: command line has unexpanded {', '.join(unresolved)}"
        if cfg is not None:
            v = _dig(cfg, *cfg_path)
            if v is not None:
                return v, f"config {'.'.join(cfg_path)}: {_show_default(v)}"
            return cfg_default, f"config default ({'.'.join(cfg_path)} unset → {_show_default(cfg_default)})"
        if missing:
            return None, f"unknown: --config {config_named} not in the input"
        return flag_default, f"flag default (--{flag} unset → {_show_default(flag_default)})"

    facts["anonymous_auth"], facts["anonymous_auth_from"] = pick(
        "anonymous-auth", _bool, ("authentication", "anonymous", "enabled"), False, True
    )
    facts["authorization_mode"], facts["authorization_mode_from"] = pick(
        "authorization-mode", str, ("authorization", "mode"), "Webhook", "AlwaysAllow"
    )
    facts["read_only_port"], facts["read_only_port_from"] = pick("read-only-port", int, ("readOnlyPort",), 0, 10255)
    facts["client_ca_file"], facts["client_ca_file_from"] = pick("client-ca-file", str, ("authentication", "x509", "clientCAFile"), "", "")
    return facts


def kubelet_items(inputs: Inputs) -> list[Item]:
    items: list[Item] = []
    used: set[str] = set()
    for cl in (c for c in inputs.commands if c.program == "kubelet"):
        argv, unresolved = inputs.expand(cl)
        flags = parse_flags(argv, KUBELET_BOOL)
        named = flags.get("config")
        config = inputs.resolve(named, "KubeletConfiguration") if named else None
        if config:
            used.add(config.file)
        facts = kubelet_facts(flags, config, named, unresolved)
        items.append(Item("kubelet", f"kubelet ({cl.file})", facts, cl.file, cl.line))
    for o in inputs.of_kind("KubeletConfiguration"):
        if o.file not in used:
            items.append(Item("kubelet", f"kubelet config {o.file}", kubelet_facts({}, o, None), o.file, o.line))
    return items


# ---------------------------------------------------------------- kube-apiserver


def _container_argv(c: dict[str, Any]) -> list[str]:
    return [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]


def apiserver_commands(inputs: Inputs) -> list[CommandLine]:
    out = [c for c in inputs.commands if c.program == "kube-apiserver"]
    for pod in inputs.of_kind("Pod"):
        for c in (pod.data.get("spec") or {}).get("containers") or []:
            argv = _container_argv(c)
            if argv and argv[0].rsplit("/", 1)[-1] == "kube-apiserver":
                out.append(CommandLine(argv, pod.file, pod.line))
    return out


HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
ANONYMOUS_GATE = "AnonymousAuthConfigurableEndpoints"


def _feature_gates(value: str) -> dict[str, bool]:
    out = {}
    for part in value.split(","):
        name, eq, v = part.strip().partition("=")
        if eq:
            out[name.strip()] = _bool(v)
    return out


def anonymous_facts(flags: dict[str, str], authn_file: str | None, authn: Obj | None) -> dict[str, Any]:
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
        conditions = [c for c in section.get("conditions") or [] if isinstance(c, dict)]
        paths = [str(c.get("path") or "") for c in conditions]
        conflicts = []
        if flag is not None:
            conflicts.append(f"--anonymous-auth={flag} is set and {where} has an anonymous section")
        if conditions and not enabled:
            conflicts.append(f"{where}: anonymous.conditions are set but anonymous.enabled is not true")
        if _feature_gates(flags.get("feature-gates", "")).get(ANONYMOUS_GATE) is False:
            conflicts.append(f"--feature-gates {ANONYMOUS_GATE}=false and {where} has an anonymous section")
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
        facts: dict[str, Any] = anonymous_facts(flags, authn_file, authn)
        authz_config = flags.get("authorization-config")
        modes: list[str] | None
        if authz_config:
            obj = inputs.resolve(authz_config, "AuthorizationConfiguration")
            modes = [str(a.get("type")) for a in obj.data.get("authorizers") or []] if obj else None
            facts["authorization_from"] = f"--authorization-config {authz_config}" + ("" if obj else " (not in the input)")
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


# ---------------------------------------------------------------- audit policy

# (resource, subresource, namespaced, verbs) a T1609 request is audited as.
AUDITED = (
    ("pods", "exec", True, ("get", "create")),
    ("pods", "attach", True, ("get", "create")),
    ("pods", "ephemeralcontainers", True, ("patch", "update")),
    ("nodes", "proxy", False, ("get", "create")),
)
STAGES_THAT_SEE_EXEC = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete"})


def _strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def audit_resource_match(rule: dict[str, Any], group: str, resource: str, subresource: str) -> str:
    """'all', 'some' (only named objects) or 'none' — audit policy semantics (not RBAC's):
    ``*`` all; exact ``resource/subresource``; ``*/sub``; ``resource/*`` (which also matches ``resource`` itself);
    ``pods`` alone does not match ``pods/exec``; an empty resources list in a group matches all of that group.
    """
    combined = f"{resource}/{subresource}" if subresource else resource
    best = "none"
    for gr in rule.get("resources") or []:
        if not isinstance(gr, dict) or str(gr.get("group") or "") != group:
            continue
        res_list = _strs(gr.get("resources"))
        if not res_list:
            return "all"
        named = bool(_strs(gr.get("resourceNames")))
        for res in res_list:
            hit = (
                res == combined
                or res == "*"
                or (bool(subresource) and res.startswith("*/") and subresource == res[2:])
                or (res.endswith("/*") and resource == res[:-2])
            )
            if hit:
                if not named:
                    return "all"
                best = "some"
    return best


def rule_applies(rule: dict[str, Any], verb: str, group: str, resource: str, subresource: str, namespaced: bool) -> tuple[str, list[str]]:
    """('all' | 'some' | 'none', conditions) for a request of this kind by anyone in any namespace."""
    conds: list[str] = []
    verbs = _strs(rule.get("verbs"))
    if verbs and verb not in verbs:
        return "none", conds
    if rule.get("users"):
        conds.append("users " + ",".join(_strs(rule["users"])))
    if rule.get("userGroups"):
        conds.append("userGroups " + ",".join(_strs(rule["userGroups"])))
    namespaces = _strs(rule.get("namespaces"))
    if namespaces or rule.get("resources"):
        if namespaces:
            if not namespaced:
                if "" not in namespaces:
                    return "none", conds
            else:
                conds.append("namespaces " + ",".join(n or '""' for n in namespaces))
        if rule.get("resources"):
            m = audit_resource_match(rule, group, resource, subresource)
            if m == "none":
                return "none", conds
            if m == "some":
                conds.append("resourceNames")
    elif rule.get("nonResourceURLs"):
        return "none", conds
    return ("some" if conds else "all"), conds


def policy_coverage(policy: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [r for r in policy.get("rules") or [] if isinstance(r, dict)]
    policy_omit = set(_strs(policy.get("omitStages")))
    out = []
    for resource, sub, namespaced, verbs in AUDITED:
        for verb in verbs:
            level, at, omit = "None", "no rule matches (default None)", set(policy_omit)
            exceptions: list[str] = []
            blind_for: list[str] = []
            for i, r in enumerate(rules, 1):
                how, conds = rule_applies(r, verb, "", resource, sub, namespaced)
                if how == "none":
                    continue
                lvl = str(r.get("level") or "None")
                r_omit = policy_omit | set(_strs(r.get("omitStages")))
                if how == "some":
                    exceptions.append(f"rule {i} ({'; '.join(conds)}): {lvl}")
                    if lvl == "None" or STAGES_THAT_SEE_EXEC <= r_omit:
                        blind_for.append(f"rule {i} ({'; '.join(conds)})")
                    continue
                level, at, omit = lvl, f"rule {i}", r_omit
                break
            blind = level == "None" or STAGES_THAT_SEE_EXEC <= omit
            out.append(
                {
                    "resource": f"{resource}/{sub}",
                    "verb": verb,
                    "level": level,
                    "rule": at,
                    "omit_stages": sorted(omit),
                    "blind": blind,
                    "exceptions": exceptions,
                    "blind_for": blind_for,
                    # exec/attach/proxy commands are in requestURI (Metadata); a debug container's command is in the body.
                    "command_visible": not blind and (sub != "ephemeralcontainers" or level in ("Request", "RequestResponse")),
                }
            )
    return out


def audit_policy_items(policy: Obj) -> list[Item]:
    items = []
    for cov in policy_coverage(policy.data):
        facts = {"policy": policy.file, **cov}
        target = f"audit policy {policy.file}: {cov['verb']} {cov['resource']}"
        items.append(Item("audit_coverage", target, facts, policy.file, policy.line))
    return items


def collect(inputs: Inputs) -> list[Item]:
    items = kubelet_items(inputs) + coverage_items(inputs)
    api, used = apiserver_items(inputs)
    items += api
    for p in inputs.of_kind("Policy"):
        if p.file not in used and str(p.data.get("apiVersion", "")).startswith("audit.k8s.io"):
            items += audit_policy_items(p)
    return items
