"""Kubelet (flags vs KubeletConfiguration defaults, --config), kube-apiserver (flags, --authorization-config,
--authentication-config anonymous section) and audit-policy coverage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from execguard.audit import kube
from execguard.audit.inputs import Obj, read_dir
from execguard.audit.kube import KUBELET_BOOL, anonymous_facts, go_bool, go_int32, parse_flags, policy_coverage
from execguard.audit.run import run_audit

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


# ---------------------------------------------------------------- kubelet: _ in flag names, --config-dir, refused values


def findings(sub: str) -> dict[str, str]:
    """id → evidence (one finding per id in these fixtures)."""
    return {f.id: f.evidence for f in run_audit(from_dir=str(DATA / sub)).findings}


def test_parse_flags_normalises_underscores_and_keeps_the_spelling() -> None:
    f = parse_flags(["kubelet", "--read-only-port=0", "--read_only_port", "10255", "--anonymous_auth", "--x_y=1"], KUBELET_BOOL)
    assert f == {"read-only-port": "10255", "anonymous-auth": "true", "x-y": "1"}  # last wins across spellings
    assert f.text("read-only-port") == "--read_only_port=10255"
    assert f.text("anonymous-auth") == "--anonymous_auth=true"


def test_parse_flags_bare_flags_and_terminator() -> None:
    # a bare flag before another flag is boolean (not the next flag's text); pflag stops at "--"
    f = parse_flags(["kubelet", "--some-new-bool", "--anonymous-auth=false", "--fail-swap-on", "x", "--", "--read-only-port=1"])
    assert f == {"some-new-bool": "true", "anonymous-auth": "false", "fail-swap-on": "x"}
    assert parse_flags(["kubelet", "--fail-swap-on", "x"], KUBELET_BOOL) == {"fail-swap-on": "true"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10255", 10255),
        ("0x280F", 10255),
        ("0X280f", 10255),
        ("+10_255", 10255),
        ("-1", -1),
        ("010", 8),
        ("0o17", 15),
        ("0b11", 3),
        ("0", 0),
    ],
)
def test_go_int32_accepts_what_pflag_accepts(text: str, value: int) -> None:
    assert go_int32(text) == value


@pytest.mark.parametrize("text", ["abc", "", " 10255", "10255 ", "08", "10_", "_1", "1e4", "10255.0", "2147483648", "0x"])
def test_go_int32_refuses_what_pflag_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        go_int32(text)


def test_go_bool() -> None:
    assert [go_bool(v) for v in ("true", "True", "TRUE", "t", "1", "false", "F", "0")] == [True] * 5 + [False] * 3
    for bad in ("yes", "on", "tRue", ""):
        with pytest.raises(ValueError):
            go_bool(bad)


def test_underscore_flags_count_like_dashed_ones() -> None:
    got = findings("kubelet/underscore")
    # file: AlwaysAllow, no CA; --authorization_mode / --client_ca_file fix both (no -002/-004), the others open
    assert set(got) == {"EG-KUBELET-001", "EG-KUBELET-003"}
    assert got["EG-KUBELET-001"] == "anonymous auth on (flag --anonymous_auth=true)"
    assert got["EG-KUBELET-003"] == "read-only port 10255 (flag --read_only_port=10255)"  # after --read-only-port=0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("--anonymous_auth=false --authorization_mode=Node,RBAC --audit_policy_file=/p.yaml --audit_log_path=/l", {"EG-API-004"}),
        ("--authorization_mode=AlwaysAllow --anonymous-auth=false", {"EG-API-001", "EG-API-003"}),
    ],
)
def test_apiserver_flags_are_normalised_too(tmp_path: Path, flags: str, expected: set[str]) -> None:
    # kube-apiserver runs through component-base cli.Run, which sets WordSepNormalizeFunc on every flag
    (tmp_path / "apiserver.cmdline").write_text(f"kube-apiserver {flags}\n")
    assert {f.id for f in run_audit(from_dir=str(tmp_path)).findings} == expected


def test_config_dir_drop_ins_merge_over_the_config_file() -> None:
    res = run_audit(from_dir=str(DATA / "kubelet/config-dir"))
    got = {f.id: f for f in res.findings}
    d = "drop-in /etc/kubernetes/kubelet.conf.d"
    # 10 opens the port, 30 closes it again (later file wins); 20 sets only anonymous (x509.clientCAFile of the base
    # stays: no -004); zz-late/50 is walked after the top-level files; README is not *.conf
    assert set(got) == {"EG-KUBELET-001", "EG-KUBELET-002"}
    assert all(f.target == f"kubelet ({DATA / 'kubelet/config-dir/kubelet.service'})" for f in res.findings)  # no drop-in alone
    assert f"{d}/20-anonymous.conf: authentication.anonymous.enabled: true" in got["EG-KUBELET-001"].evidence
    assert f"{d}/zz-late/50-authz.conf: authorization.mode: AlwaysAllow" in got["EG-KUBELET-002"].evidence
    facts = got["EG-KUBELET-001"].facts
    assert facts["read_only_port"] == 0 and facts["read_only_port_from"].startswith(
        "drop-in /etc/kubernetes/kubelet.conf.d/30-port-off.conf"
    )
    assert facts["client_ca_file_from"] == "config authentication.x509.clientCAFile: /etc/kubernetes/pki/ca.crt"
    assert [p.rsplit("/", 1)[-1] for p in facts["drop_ins"]] == [
        "10-metrics.conf",
        "20-anonymous.conf",
        "30-port-off.conf",
        "50-authz.conf",
    ]


def test_config_dir_without_config_merges_over_the_flag_defaults() -> None:
    # the drop-in sets Webhook and a CA; anonymous auth and port 10255 stay the flag defaults (options.applyLegacyDefaults)
    assert set(findings("kubelet/config-dir-only")) == {"EG-KUBELET-001", "EG-KUBELET-003"}


def test_config_dir_not_in_the_input_is_unknown() -> None:
    # the base says AlwaysAllow, but a drop-in we were not given may override it: not guessed
    got = findings("kubelet/config-dir-missing")
    assert set(got) == {"EG-KUBELET-007"}
    assert "/etc/kubernetes/kubelet.conf.d" in got["EG-KUBELET-007"]


def test_orphan_drop_in_is_judged_on_what_it_sets() -> None:
    res = run_audit(from_dir=str(DATA / "kubelet/dropin-orphan"))
    assert [f.id for f in res.findings] == ["EG-KUBELET-002"]  # unset fields are unknown here, not defaults: no -004
    assert res.findings[0].target.startswith("kubelet drop-in ") and res.findings[0].target.endswith("/50-debug.conf")


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


KC = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
HARD = KC + "authentication: {anonymous: {enabled: false}, x509: {clientCAFile: /ca.crt}}\nauthorization: {mode: Webhook}\n"
CMD = "/usr/bin/kubelet --config=/etc/k/kubelet.yaml --config-dir=/etc/k/conf.d"


def test_flags_override_drop_ins(tmp_path: Path) -> None:
    _write(tmp_path, {"etc/k/kubelet.yaml": HARD, "etc/k/conf.d/1.conf": KC + "readOnlyPort: 10255\nauthorization: {mode: AlwaysAllow}\n"})
    (tmp_path / "k.cmdline").write_text(CMD + " --read-only-port=0 --authorization-mode=Webhook\n")
    assert {f.id for f in run_audit(from_dir=str(tmp_path)).findings} == set()


def test_null_in_a_drop_in_restores_the_config_default(tmp_path: Path) -> None:
    # JSON merge patch: null deletes the field and v1beta1 defaulting runs after the merge (here over flag defaults)
    _write(
        tmp_path,
        {"etc/k/conf.d/1.conf": KC + "authentication: {anonymous: {enabled: null}, x509: {clientCAFile: /ca}}\n" + "authorization: null\n"},
    )
    (tmp_path / "k.cmdline").write_text("/usr/bin/kubelet --config-dir=/etc/k/conf.d\n")
    res = run_audit(from_dir=str(tmp_path))
    assert {f.id for f in res.findings} == {"EG-KUBELET-003"}  # anonymous → false, mode → Webhook; port stays 10255


@pytest.mark.parametrize(
    ("drop_in", "says"),
    [
        ("", "empty file"),
        ("readOnlyPort: 0\n", "no apiVersion/kind"),
        ("apiVersion: v1\nkind: ConfigMap\n", "not KubeletConfiguration"),
        ("apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n", "unknown apiVersion/kind"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_drop_in_the_kubelet_refuses(tmp_path: Path, drop_in: str, says: str) -> None:
    _write(tmp_path, {"etc/k/kubelet.yaml": HARD, "etc/k/conf.d/9.conf": drop_in})
    (tmp_path / "k.cmdline").write_text(CMD + "\n")
    got = {f.id: f.evidence for f in run_audit(from_dir=str(tmp_path)).findings}
    assert set(got) == {"EG-KUBELET-008"}
    assert got["EG-KUBELET-008"].startswith("drop-in /etc/k/conf.d/9.conf: ") and says in got["EG-KUBELET-008"]


def test_refused_config_value_and_valid_hex_flag() -> None:
    got = findings("kubelet/invalid")
    assert set(got) == {"EG-KUBELET-003", "EG-KUBELET-008"}  # anonymous unknown (no -001), 0x280F = 10255
    assert got["EG-KUBELET-008"].startswith("/etc/kubernetes/kubelet.yaml: authentication.anonymous.enabled: 'false'")


@pytest.mark.parametrize(
    ("argv_or_config", "refused", "fires"),
    [
        ("--read-only-port=70000", "--read-only-port=70000", set()),  # validation: 0..65535
        ("--read-only-port=-1", "--read-only-port=-1", set()),
        ("--read-only-port=010255", None, {"EG-KUBELET-003"}),  # pflag base 0: octal, 4269
        ("--anonymous-auth=yes", "--anonymous-auth=yes", set()),  # strconv.ParseBool has no yes
        ("--authorization-mode=webhook", "--authorization-mode=webhook", set()),  # case matters
        ("--authorization-mode=", "--authorization-mode=", set()),
        ("readOnlyPort: 10255.0", None, {"EG-KUBELET-003"}),  # YAML → JSON turns it into 10255
        ("readOnlyPort: 10255.5", "readOnlyPort: 10255.5", set()),
        ("readOnlyPort: true", "readOnlyPort: True", set()),
        ("readOnlyPort: 65536", "readOnlyPort: 65536", set()),
        ("authorization: {mode: AlwaysDeny}", "authorization.mode: 'AlwaysDeny'", set()),
        ("authorization: {mode: ''}", None, set()),  # empty → defaulted to Webhook
        ("authentication: Webhook", "authentication: 'Webhook' is not a mapping", set()),
        ("authentication: {x509: {clientCAFile: 7}}", "clientCAFile: 7", set()),
    ],
)
def test_values_the_kubelet_refuses(tmp_path: Path, argv_or_config: str, refused: str | None, fires: set[str]) -> None:
    config = HARD + ("readOnlyPort: 0\n" if argv_or_config.startswith("--") else "")
    if not argv_or_config.startswith("--"):
        # replace the key the case is about (a later duplicate key would be a different test)
        key = argv_or_config.split(":")[0]
        config = "\n".join(line for line in config.splitlines() if not line.startswith(key)) + "\n" + argv_or_config + "\n"
    _write(tmp_path, {"etc/k/kubelet.yaml": config})
    flag = argv_or_config if argv_or_config.startswith("--") else ""
    (tmp_path / "k.cmdline").write_text(f"/usr/bin/kubelet --config=/etc/k/kubelet.yaml {flag}\n")
    got = {f.id: f.evidence for f in run_audit(from_dir=str(tmp_path)).findings}
    if refused is None:
        assert set(got) == fires
    else:
        assert set(got) == fires | {"EG-KUBELET-008"}
        assert refused in got["EG-KUBELET-008"]


def test_decode_error_is_reported_even_when_a_flag_overrides_the_value(tmp_path: Path) -> None:
    # the file is decoded before flags are re-applied: the kubelet exits, whatever --read-only-port says
    _write(tmp_path, {"etc/k/kubelet.yaml": HARD + 'readOnlyPort: "0"\n'})
    (tmp_path / "k.cmdline").write_text("/usr/bin/kubelet --config=/etc/k/kubelet.yaml --read-only-port=0\n")
    res = run_audit(from_dir=str(tmp_path))
    assert {f.id for f in res.findings} == {"EG-KUBELET-008"}
    assert res.findings[0].facts["read_only_port"] == 0  # what it serves once the file is fixed: the flag


def test_malformed_manifests_do_not_crash_the_apiserver_collector(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [x, {command: kube-apiserver}]}\n",
            "pod2.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: [1]\n",
            "api.cmdline": "kube-apiserver --authorization-config=/authz.yaml --authentication-config=/authn.yaml\n",
            "authz.yaml": "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers: {type: Webhook}\n",
            "authn.yaml": "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n"
            + "anonymous: {enabled: true, conditions: 3}\n",
            "policy.yaml": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: 5\n",
        },
    )
    items = kube.collect(read_dir(tmp_path))  # kube.py's collector alone
    api = [i.facts for i in items if i.kind == "apiserver"]
    assert len(api) == 1 and api[0]["authorization_known"] is False  # authorizers that do not decode: unknown, not a crash
    assert api[0]["anonymous_auth"] is True and api[0]["anonymous_paths"] == []  # conditions: 3 is no condition list
    assert not [i for i in items if i.kind == "audit_coverage" and not i.facts["blind"]]  # rules: 5 is no rule


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


@pytest.mark.parametrize(
    ("image", "gate", "want", "needs"),
    [
        ("v1.31.6", True, "EG-API-010", None),  # the fixture as shipped: alpha gate turned on
        ("v1.31.6", False, "EG-API-011", "AnonymousAuthConfigurableEndpoints=true on 1.31"),
        ("v1.30.5", True, "EG-API-011", "Kubernetes 1.31 or later"),
        ("v1.32.0", False, "EG-API-010", None),  # beta, on by default
    ],
)
def test_authn_config_anonymous_section_needs_its_release(tmp_path: Path, image: str, gate: bool, want: str, needs: str | None) -> None:
    root = tmp_path / "dump"
    shutil.copytree(DATA / "apiserver" / "authn-extra-paths", root)
    manifest = root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    text = manifest.read_text().replace("kube-apiserver:v1.31.6", f"kube-apiserver:{image}")
    if not gate:
        text = text.replace("    - --feature-gates=AnonymousAuthConfigurableEndpoints=true\n", "")
    manifest.write_text(text)
    got = {f.id: f.evidence for f in run_audit(from_dir=str(root)).findings if f.id.startswith("EG-API") and f.id != "EG-API-004"}
    assert set(got) == {want}
    if needs:
        assert needs in got[want]
