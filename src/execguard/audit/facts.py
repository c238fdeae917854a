"""The facts each item kind can carry, declared once.

A collector (``collect/``) or live reader (``gather/``) builds ``Item(kind, target, facts)``; ``checks.yml`` names
those facts in ``when:`` and in its evidence and remediation templates. Facts are plain string keys, so a typo
there would never fire (or render as ``?``): the catalogue is checked against this table when it loads, and
tests check that every item the collectors build keeps to it.
"""

from __future__ import annotations

_DOCKER_HOST = ("scheme", "address", "port", "loopback")  # collect.docker.parse_host
_KUBELET_SETTINGS = ("anonymous_auth", "authorization_mode", "read_only_port", "client_ca_file")  # collect.kubelet

FACTS: dict[str, frozenset[str]] = {
    # collect/rbac.py
    "rbac_grant": frozenset(
        {
            "capability", "get_note", "objects", "resource_names", "scope", "subject", "subject_class",
            "subject_kind", "subject_name", "subject_namespace", "verbs", "via",
        }
    ),
    "rbac_get_only": frozenset({"subject", "capability", "scope", "verbs", "via", "why"}),
    "workload_sa": frozenset({"capabilities", "namespace", "service_account", "via", "workload"}),
    # collect/workloads.py
    "workload_hostpath": frozenset({"exposes_runtime", "path", "runtime_socket", "volume", "workload"}),
    "workload_pod": frozenset({"host_pid", "privileged", "privileged_containers", "workload"}),
    "exec_probe": frozenset({"command", "container", "image", "namespace", "probe", "workload"}),
    # collect/kubelet.py
    "kubelet": frozenset(
        {
            "config_file", "config_missing", "config_dir", "config_dir_missing", "drop_ins", "unresolved", "invalid",
            *_KUBELET_SETTINGS, *(f"{s}_from" for s in _KUBELET_SETTINGS),
        }
    ),
    # collect/apiserver.py
    "apiserver": frozenset(
        {
            "always_allow", "anonymous_auth", "anonymous_auth_from", "anonymous_conflicts", "anonymous_other_paths",
            "anonymous_paths", "audit_backends", "audit_enabled", "audit_policy_file", "audit_policy_missing",
            "authentication_config", "authentication_config_missing", "authorization_from", "authorization_known",
            "authorization_modes",
        }
    ),
    # collect/audit_policy.py
    "audit_coverage": frozenset(
        {"policy", "resource", "verb", "level", "rule", "omit_stages", "blind", "exceptions", "blind_for", "command_visible"}
    ),
    # collect/coverage.py (the gaps gather/live.py records)
    "kube_api_coverage": frozenset({"api", "kind", "list", "status", "reason", "message", "affects"}),
    # collect/docker.py
    "docker_listener": frozenset({"daemon", "host", *_DOCKER_HOST, "tls", "tlsverify", "tlsverify_implied"}),
    "docker_daemon": frozenset({"daemon", "hosts", "userns_remap", "authorization_plugins", "group", "live"}),
    # gather/docker_live.py
    "docker_api": frozenset(
        {
            "url", *_DOCKER_HOST, "transport", "anonymous", "unauthenticated", "client_cert_required", "answered",
            "read", "read_with", "version", "api_version", "os", "security_options", "error",
        }
    ),
    "docker_socket": frozenset(
        {"path", "mode", "owner", "group", "group_members", "world_writable", "group_writable", "non_root_group"}
    ),
    # gather/probe.py
    "tcp_probe": frozenset(
        {
            "address", "port", "service", "open", "answer", "tls", "client_cert_required", "docker_unauthenticated",
            "kubelet_anonymous", "kubelet_readonly", "version", "api_version",
        }
    ),
}  # fmt: skip
