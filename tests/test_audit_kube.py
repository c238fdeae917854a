"""Kubelet (flags vs KubeletConfiguration defaults, --config), kube-apiserver (flags, --authorization-config,
--authentication-config anonymous section) and audit-policy coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from execguard.audit.cli import run_audit
from execguard.audit.inputs import Obj
from execguard.audit.kube import anonymous_facts, parse_flags, policy_coverage

DATA = Path(__file__).parent / "data" / "audit"


def ids(sub: str) -> set[str]:
    return {f.id for f in run_audit(from_dir=str(DATA / sub)).findings}


def test_kubelet_flag_defaults_are_insecure() -> None:
    assert ids("kubelet/flags") == {"EG-KUBELET-001", "EG-KUBELET-002", "EG-KUBELET-003", "EG-KUBELET-004"}


def test_kubelet_config_file_defaults_are_secure() -> None:
    assert ids("kubelet/config") == set()  # unit names --config; v1beta1 defaults: anonymous off, Webhook, port 0


def test_kubelet_flags_override_config() -> None:
    res = run_audit(from_dir=str(DATA / "kubelet/override"))
    assert {f.id for f in res.findings} == {"EG-KUBELET-001", "EG-KUBELET-003"}
    assert "flag --anonymous-auth=true" in next(f.evidence for f in res.findings if f.id == "EG-KUBELET-001")


def test_kubelet_reads_its_own_config_path_not_the_default() -> None:
    res = run_audit(from_dir=str(DATA / "kubelet/custom-path"))
    assert {f.id for f in res.findings} == {"EG-KUBELET-001", "EG-KUBELET-002", "EG-KUBELET-003", "EG-KUBELET-004"}
    assert all("custom-path/kubelet.service" in (f.file or "") for f in res.findings)


def test_kubelet_missing_config_is_unknown_not_guessed() -> None:
    assert ids("kubelet/missing") == {"EG-KUBELET-005"}


def test_kubelet_proc_cmdline() -> None:
    assert ids("kubelet/proc") == set()


def test_parse_flags_forms() -> None:
    f = parse_flags(["kubelet", "--a=1", "--b", "2", "--anonymous-auth", "--a=3"], frozenset({"anonymous-auth"}))
    assert f == {"a": "3", "b": "2", "anonymous-auth": "true"}


def test_apiserver_insecure() -> None:
    assert ids("apiserver/insecure") == {"EG-API-001", "EG-API-002", "EG-API-003"}


def test_apiserver_secure_with_policy_coverage() -> None:
    res = run_audit(from_dir=str(DATA / "apiserver/secure"))
    assert {f.id for f in res.findings} == {"EG-AUDIT-003", "EG-AUDIT-004"}  # 004: debug command needs Request
    assert len([f for f in res.findings if f.id == "EG-AUDIT-003"]) == 8  # 4 resources x 2 verbs, by rule 1


def test_apiserver_authorization_config_and_missing_policy() -> None:
    res = run_audit(from_dir=str(DATA / "apiserver/authz-config"))
    assert {f.id for f in res.findings} == {"EG-API-001", "EG-API-002", "EG-API-004"}


def _cov(name: str) -> dict[tuple[str, str], dict[str, object]]:
    import yaml

    policy = yaml.safe_load((DATA / "policy" / name).read_text())
    return {(c["resource"], c["verb"]): c for c in policy_coverage(policy)}


def test_drop_reads_drops_websocket_exec() -> None:
    c = _cov("drop-reads.yaml")
    assert c[("pods/exec", "get")]["blind"] and not c[("pods/exec", "create")]["blind"]
    assert c[("pods/exec", "create")]["level"] == "Metadata"
    assert c[("nodes/proxy", "get")]["blind"]


def test_pods_does_not_match_subresources() -> None:
    assert all(v["blind"] for v in _cov("pods-only.yaml").values())


def test_pods_star_matches_subresources_in_audit_policy() -> None:
    c = _cov("pods-star.yaml")
    assert c[("pods/exec", "get")]["level"] == "Request"
    assert c[("pods/ephemeralcontainers", "patch")]["command_visible"]
    assert c[("nodes/proxy", "get")]["blind"]


def test_star_subresource() -> None:
    c = _cov("star-exec.yaml")
    assert not c[("pods/exec", "get")]["blind"] and not c[("nodes/proxy", "create")]["blind"]
    assert c[("pods/attach", "get")]["blind"]


def test_exceptions_and_omit_stages() -> None:
    c = _cov("exceptions.yaml")
    e = c[("pods/exec", "get")]
    assert not e["blind"] and len(e["blind_for"]) == 2  # user rule + kube-system namespace rule
    assert len(c[("nodes/proxy", "get")]["blind_for"]) == 1  # namespaces [kube-system] never matches nodes
    assert all(v["blind"] for v in _cov("omit-all.yaml").values())


def test_group_nonresource_and_resource_names() -> None:
    c = _cov("wrong-group.yaml")
    assert all(v["blind"] for v in c.values())
    assert c[("nodes/proxy", "get")]["exceptions"] == ["rule 3 (resourceNames): Request"]


def test_policy_findings() -> None:
    res = run_audit(from_dir=str(DATA / "policy"))
    got = {(f.id, Path(f.file or "").name, f.facts["resource"], f.facts["verb"]) for f in res.findings}
    assert ("EG-AUDIT-001", "drop-reads.yaml", "pods/exec", "get") in got
    assert ("EG-AUDIT-003", "drop-reads.yaml", "pods/exec", "create") in got
    assert ("EG-AUDIT-002", "exceptions.yaml", "pods/exec", "get") in got
    assert ("EG-AUDIT-004", "drop-reads.yaml", "pods/ephemeralcontainers", "patch") in got  # Metadata hides the command
    assert ("EG-AUDIT-004", "pods-star.yaml", "pods/ephemeralcontainers", "patch") not in got


def test_kubeadm_dropin_expands_environment_and_environment_files() -> None:
    res = run_audit(from_dir=str(DATA / "kubelet/kubeadm"))
    assert [(f.id, f.evidence) for f in res.findings] == [("EG-KUBELET-003", "read-only port 10255 (flag --read-only-port=10255)")]


def test_unexpanded_variables_make_settings_unknown() -> None:
    assert ids("kubelet/kubeadm-partial") == {"EG-KUBELET-005", "EG-KUBELET-006"}


# ---------------------------------------------------------------- --authentication-config: anonymous section


def api_findings(sub: str) -> dict[str, str]:
    """EG-API-* id → evidence (EG-API-004: these fixtures name an audit policy they do not ship)."""
    return {f.id: f.evidence for f in run_audit(from_dir=str(DATA / "apiserver" / sub)).findings if f.id != "EG-API-004"}


def test_authn_config_anonymous_on_every_path_is_anonymous_auth() -> None:
    got = api_findings("authn-anonymous-all")
    assert set(got) == {"EG-API-002"}  # same check and severity as --anonymous-auth=true
    assert "/etc/kubernetes/authn/config.yaml: anonymous.enabled true with no conditions (every path)" in got["EG-API-002"]


def test_authn_config_health_paths_only_is_fine() -> None:
    assert api_findings("authn-health-only") == {}  # apiserver.config.k8s.io/v1, /livez /readyz /healthz


def test_authn_config_other_paths_are_named() -> None:
    got = api_findings("authn-extra-paths")
    assert set(got) == {"EG-API-010"}
    assert got["EG-API-010"].startswith("anonymous requests are authenticated on /version, /api/v1/namespaces/default/pods (")


def test_authn_config_with_anonymous_auth_flag_is_a_conflict() -> None:
    got = api_findings("authn-conflict")
    assert set(got) == {"EG-API-011"}  # no guess between the flag (false) and the file (enabled)
    assert "--anonymous-auth=false is set and /etc/kubernetes/authn/config.yaml has an anonymous section" in got["EG-API-011"]


def test_authn_config_disabled_found_by_file_name() -> None:
    assert api_findings("authn-disabled") == {}  # JSON file at DIR/authn-config.json, named /etc/kubernetes/authn/...


def test_authn_config_missing_is_unknown() -> None:
    assert set(api_findings("authn-missing")) == {"EG-API-012"}


def test_authn_config_without_anonymous_section_keeps_the_flag_default() -> None:
    got = api_findings("authn-no-anonymous")
    assert set(got) == {"EG-API-002"} and "default (true); /etc/kubernetes/authn/config.yaml has no anonymous section" in got["EG-API-002"]


def _authn(anonymous: object) -> Obj:
    return Obj({"apiVersion": "apiserver.config.k8s.io/v1beta1", "kind": "AuthenticationConfiguration", "anonymous": anonymous}, "a.yaml")


@pytest.mark.parametrize(
    ("flags", "anonymous", "expected"),
    [
        ({}, {"enabled": True, "conditions": []}, (True, [], [])),  # an empty list is no condition
        ({}, {"enabled": True, "conditions": [{"path": "/livez"}, {"path": "/healthz/etcd"}]}, (False, ["/healthz/etcd"], [])),
        ({}, {"enabled": True, "conditions": [{"path": "/LIVEZ"}]}, (False, ["/LIVEZ"], [])),  # exact, case-sensitive
        ({}, {}, (False, [], [])),  # enabled defaults to false
        ({}, {"conditions": [{"path": "/livez"}]}, (None, [], ["conditions are set but anonymous.enabled is not true"])),
        ({"anonymous-auth": "true"}, {"enabled": True}, (None, [], ["--anonymous-auth=true is set"])),
        (
            {"feature-gates": "AnonymousAuthConfigurableEndpoints=false"},
            {"enabled": False},
            (None, [], ["AnonymousAuthConfigurableEndpoints=false"]),
        ),
        ({"feature-gates": "AnonymousAuthConfigurableEndpoints=true"}, {"enabled": True}, (True, [], [])),
    ],
)
def test_anonymous_facts(flags: dict[str, str], anonymous: object, expected: tuple[bool | None, list[str], list[str]]) -> None:
    facts = anonymous_facts(flags, "/etc/kubernetes/a.yaml", _authn(anonymous))
    anon, other, conflicts = expected
    assert facts["anonymous_auth"] is anon
    assert facts["anonymous_other_paths"] == other
    assert len(facts["anonymous_conflicts"]) == len(conflicts)
    assert all(c in got for c, got in zip(conflicts, facts["anonymous_conflicts"], strict=True))


def test_anonymous_facts_without_the_file() -> None:
    # The flag is trusted: had the missing file an anonymous section, the API server would not start at all.
    assert anonymous_facts({"anonymous-auth": "false"}, "/x.yaml", None)["anonymous_auth"] is False
    assert anonymous_facts({}, "/x.yaml", None)["anonymous_auth"] is None
    assert anonymous_facts({}, None, None)["anonymous_auth"] is True
