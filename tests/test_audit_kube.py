"""Kubelet (flags vs KubeletConfiguration defaults, --config), kube-apiserver and audit-policy coverage."""

from __future__ import annotations

from pathlib import Path

from execguard.audit.cli import run_audit
from execguard.audit.kube import parse_flags, policy_coverage

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
