"""`execguard audit -o sarif` against the OASIS SARIF 2.1.0 schema and GitHub code scanning's rules.

The schema is vendored in tests/data/sarif/ (see tests/data/README.md). jsonschema checks `format` only with a
format checker; the URI formats it ships need an optional package, so strict RFC 3986 `uri` / `uri-reference`
checks are defined here. GitHub's requirements are those of its "SARIF support for code scanning" reference
(github/docs content/code-security/reference/code-scanning/sarif-files/sarif-support-for-code-scanning.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from jsonschema import Draft7Validator, FormatChecker
from typer.testing import CliRunner

from execguard.audit.engine import Check, Finding, catalogue
from execguard.audit.report import SECURITY_SEVERITY, to_sarif
from execguard.cli import app

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "audit"
SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
runner = CliRunner()

# Fixture dirs (relative to tests/data/audit) and whether they produce results; two produce none.
FIXTURES = {
    "kubelet/flags": True,
    "kubelet/custom-path": True,
    "kubelet/config": False,
    "kubelet/kubeadm-partial": True,
    "docker/secure": False,
    "docker/spellings": True,
    "rbac": True,
    "rbac-broad": True,
    "workloads": True,
    "apiserver/secure": True,
    "policy": True,
}

# RFC 3986: characters a URI may hold (unreserved, reserved, and % for pct-encoding).
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _is_uri_reference(value: object) -> bool:
    if not isinstance(value, str) or not _URI_CHARS.match(value):
        return False
    first = re.split(r"[/?#]", value, maxsplit=1)[0]
    return ":" not in first or bool(_SCHEME.match(value))  # "a:b/c" is a URI with scheme a, never a relative path


def _is_uri(value: object) -> bool:
    return _is_uri_reference(value) and bool(_SCHEME.match(str(value)))


FORMATS = FormatChecker(formats=())
FORMATS.checks("uri")(_is_uri)
FORMATS.checks("uri-reference")(_is_uri_reference)
VALIDATOR = Draft7Validator(SCHEMA, format_checker=FORMATS)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def github_problems(doc: dict[str, Any]) -> list[str]:
    """What GitHub code scanning requires or reads, beyond the schema."""
    out: list[str] = []
    if not doc.get("$schema") or doc.get("version") != "2.1.0" or not doc.get("runs"):
        out.append("sarifLog needs $schema, version 2.1.0 and runs")
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        rules = driver.get("rules") or []
        if not driver.get("name") or not rules:
            out.append("toolComponent needs name and rules")
        for r in rules:
            rid = r.get("id", "?")
            if not (r.get("shortDescription", {}).get("text") and len(r["shortDescription"]["text"]) <= 1024):
                out.append(f"{rid}: shortDescription.text missing or over 1024")
            if not (r.get("fullDescription", {}).get("text") and len(r["fullDescription"]["text"]) <= 1024):
                out.append(f"{rid}: fullDescription.text missing or over 1024")
            if len(r.get("name", "")) > 255:
                out.append(f"{rid}: name over 255")
            if not (r.get("help", {}).get("text") and r["help"].get("markdown")):
                out.append(f"{rid}: help.text and help.markdown")
            if r.get("defaultConfiguration", {}).get("level") not in ("note", "warning", "error"):
                out.append(f"{rid}: defaultConfiguration.level")
            props = r.get("properties", {})
            sev = props.get("security-severity")
            if sev is not None:
                if not isinstance(sev, str) or not 0.0 < float(sev) <= 10.0:
                    out.append(f"{rid}: security-severity must be a string score in (0, 10]")
                if "security" not in props.get("tags", []):
                    out.append(f"{rid}: security-severity without the security tag")
            if props.get("precision") not in (None, "very-high", "high", "medium", "low"):
                out.append(f"{rid}: precision")
            if props.get("problem.severity") not in (None, "error", "warning", "recommendation"):
                out.append(f"{rid}: problem.severity")
        ids = [r["id"] for r in rules]
        if len(set(ids)) != len(ids):
            out.append("rule ids not unique")
        fingerprints: set[str] = set()
        for res in run.get("results", []):
            rule_index = res.get("ruleIndex")
            if res.get("ruleId") not in ids or (rule_index is not None and ids[rule_index] != res["ruleId"]):
                out.append(f"{res.get('ruleId')}: ruleId/ruleIndex do not name a rule")
            if not res.get("message", {}).get("text"):
                out.append("result message.text missing")
            if not 1 <= len(res.get("locations", [])) <= 10:
                out.append(f"{res['ruleId']}: 1 to 10 locations")
            fp = res.get("partialFingerprints", {}).get("primaryLocationLineHash")
            if not fp or fp in fingerprints:
                out.append(f"{res['ruleId']}: primaryLocationLineHash missing or repeated")
            fingerprints.add(fp)
            phys = res["locations"][0].get("physicalLocation") if res.get("locations") else None
            if phys:
                uri = phys["artifactLocation"]["uri"]
                if not uri.startswith("file:///") and (uri.startswith("/") or uri.startswith("../") or _SCHEME.match(uri)):
                    out.append(f"{uri}: neither relative to the source root nor an absolute file URI")
                if phys.get("region", {}).get("startLine", 0) < 1:
                    out.append(f"{uri}: region.startLine")
    return out


def sarif(from_dir: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    r = runner.invoke(app, ["audit", "--from", str(from_dir), "-o", "sarif"], env=env)
    assert r.exit_code == 0, r.output
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_vendored_schema_is_the_sarif_2_1_0_schema() -> None:
    Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert SCHEMA["properties"]["version"]["enum"] == ["2.1.0"]
    assert {"result", "run", "reportingDescriptor", "artifactLocation", "region"} <= set(SCHEMA["definitions"])


def test_schema_rejects_what_it_should() -> None:
    """The validator is not vacuous: the mistakes a hand-written SARIF writer makes are caught."""
    cmdline = str(DATA / "kubelet/flags/kubelet.cmdline")
    good = to_sarif([Finding("EG-KUBELET-001", "t", "high", "M1035", "kubelet (x)", "e", "r", cmdline, 1)])
    doc = json.loads(good)
    assert schema_errors(doc) == []
    res = doc["runs"][0]["results"][0]
    for path, value in [
        (("level",), "critical"),  # SARIF levels are none/note/warning/error
        (("locations", 0, "physicalLocation", "region", "startLine"), 0),
        (("locations", 0, "physicalLocation", "artifactLocation", "uri"), "dir with space/x.yaml"),
        (("locations", 0, "physicalLocation", "artifactLocation", "uri"), "bad%zzescape.yaml"),
        (("partialFingerprints", "primaryLocationLineHash"), 7),
        (("properties", "tags"), ["x", "x"]),
    ]:
        bad = json.loads(good)
        node = bad["runs"][0]["results"][0]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert schema_errors(bad), (path, value)
    bad = json.loads(good)
    del bad["runs"][0]["results"][0]["message"]
    assert schema_errors(bad)
    assert res["level"] == "error"


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_cli_sarif_is_schema_valid_and_fits_github(fixture: str) -> None:
    doc = sarif(DATA / fixture)
    assert schema_errors(doc) == []
    assert github_problems(doc) == []
    results = doc["runs"][0]["results"]
    assert bool(results) is FIXTURES[fixture]
    # the same with the repository root as source root (GitHub Actions sets GITHUB_WORKSPACE)
    doc = sarif(DATA / fixture, env={"GITHUB_WORKSPACE": str(REPO)})
    assert schema_errors(doc) == [] and github_problems(doc) == []


def test_empty_result_is_a_full_run() -> None:
    doc = sarif(DATA / "docker/secure")
    run = doc["runs"][0]
    assert run["results"] == []  # present and empty: an actual scan found nothing
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [c.id for c in catalogue()]


def test_rules_do_not_depend_on_results() -> None:
    """GitHub: rules change with the tool, results with the code. The whole catalogue, in order, every run."""
    a = sarif(DATA / "rbac")["runs"][0]["tool"]["driver"]["rules"]
    b = sarif(DATA / "kubelet/config")["runs"][0]["tool"]["driver"]["rules"]
    assert a == b
    assert all(re.fullmatch(r"EG-[A-Z]+-\d{3}", r["id"]) for r in a)


def test_levels_and_security_severity() -> None:
    rules = {r["id"]: r for r in sarif(DATA / "kubelet/flags")["runs"][0]["tool"]["driver"]["rules"]}
    band = {"critical": (9.1, 10.0), "high": (7.0, 8.9), "medium": (4.0, 6.9), "low": (0.1, 3.9)}
    level = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
    for c in catalogue():
        props = rules[c.id]["properties"]
        assert rules[c.id]["defaultConfiguration"]["level"] == level[c.severity]
        assert "security" in props["tags"] and "T1609" in props["tags"] and c.mitigation in props["tags"]
        if c.severity == "info":
            assert "security-severity" not in props  # inventories are not vulnerabilities
            assert props["problem.severity"] == "recommendation"
        else:
            lo, hi = band[c.severity]
            assert lo <= float(props["security-severity"]) <= hi, c.id
    assert set(SECURITY_SEVERITY) == set(band)


def test_uris_are_relative_to_the_source_root() -> None:
    # default: the --from directory, declared as %SRCROOT%
    run = sarif(DATA / "workloads")["runs"][0]
    loc = next(r for r in run["results"] if r["ruleId"] == "EG-WL-002")["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "workloads.yaml", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (DATA / "workloads").resolve().as_uri() + "/"
    assert loc["region"]["startLine"] == 50 and loc["region"]["startColumn"] == 1
    line = (DATA / "workloads/workloads.yaml").read_text().splitlines()[49]
    assert loc["region"]["endColumn"] == len(line) + 1
    # GitHub Actions: relative to the repository checkout, as code scanning reads relative URIs
    run = sarif(DATA / "workloads", env={"GITHUB_WORKSPACE": str(REPO)})["runs"][0]
    loc = next(r for r in run["results"] if r["ruleId"] == "EG-WL-002")["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "tests/data/audit/workloads/workloads.yaml"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == REPO.as_uri() + "/"
    # a workspace that does not hold --from is ignored
    run = sarif(DATA / "workloads", env={"GITHUB_WORKSPACE": str(DATA / "rbac")})["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (DATA / "workloads").resolve().as_uri() + "/"


def test_awkward_file_names_are_percent_encoded(tmp_path: Path) -> None:
    d = tmp_path / "node dumps" / "wörker:1"
    d.mkdir(parents=True)
    (d / "kubelet 50%.cmdline").write_text((DATA / "kubelet/flags/kubelet.cmdline").read_text())
    doc = sarif(tmp_path)
    assert schema_errors(doc) == [] and github_problems(doc) == []
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}
    assert uris == {"node%20dumps/w%C3%B6rker%3A1/kubelet%2050%25.cmdline"}
    assert unquote(uris.pop()) == "node dumps/wörker:1/kubelet 50%.cmdline"


def test_files_outside_the_root_and_live_findings(tmp_path: Path) -> None:
    outside = tmp_path / "kubelet.cmdline"
    outside.write_text("kubelet\n")
    findings = [
        Finding("EG-KUBELET-001", "t", "high", "M1035", "kubelet (a)", "e", "r", str(outside), 1),
        Finding("EG-RBAC-012", "t", "high", "M1018", "User erin @ cluster", "e", "r", "kube-api:https://127.0.0.1:6443", None),
        Finding("EG-NET-001", "t", "critical", "M1035", "127.0.0.1:2375", "e", "r", None, None),
    ]
    doc = json.loads(to_sarif(findings, base=DATA / "rbac"))
    assert schema_errors(doc) == [] and github_problems(doc) == []
    first, api, probe = doc["runs"][0]["results"]
    assert first["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": outside.resolve().as_uri()}
    # no file in the repository: a logical location only, still fingerprinted for alert tracking
    for res in (api, probe):
        assert "physicalLocation" not in res["locations"][0]
        assert res["locations"][0]["logicalLocations"][0]["name"] == res["properties"]["target"]
        assert re.fullmatch(r"[0-9a-f]{16}:1", res["partialFingerprints"]["primaryLocationLineHash"])


def test_file_level_finding_gets_line_one() -> None:
    f = Finding("EG-DOCKER-001", "t", "critical", "M1035", "dockerd", "e", "r", str(DATA / "docker/open-json/daemon.json"), None)
    res = json.loads(to_sarif([f], base=DATA / "docker/open-json"))["runs"][0]["results"][0]
    region = res["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 1 and region["endLine"] == 1


def test_fingerprints_are_stable_and_distinct() -> None:
    def fps(from_dir: str) -> list[str]:
        return [r["partialFingerprints"]["primaryLocationLineHash"] for r in sarif(Path(from_dir))["runs"][0]["results"]]

    rel = str((DATA / "rbac").relative_to(Path.cwd())) if (DATA / "rbac").is_relative_to(Path.cwd()) else str(DATA / "rbac")
    first, again, absolute = fps(rel), fps(rel), fps(str((DATA / "rbac").resolve()))
    assert first == again == absolute  # --from spelled relative or absolute: the same alerts
    assert len(set(first)) == len(first)
    # two findings of one rule on one target (system:masters may exec and attach) are told apart by occurrence
    run = sarif(DATA / "rbac")["runs"][0]
    masters = [r for r in run["results"] if r["ruleId"] == "EG-RBAC-010" and r["properties"]["target"] == "Group system:masters @ cluster"]
    assert [m["partialFingerprints"]["primaryLocationLineHash"][-2:] for m in masters] == [":1", ":2"]


def test_help_markdown_escapes_and_shows_placeholders() -> None:
    check = Check(
        "EG-TEST-001",
        "Rule on pods/* with <b>",
        "rbac_grant",
        "M1018",
        "medium",
        "{subject}",
        "Remove pods/* from {subject} via `kubectl`",
        {},
        "A description with [brackets] and under_scores.",
    )
    rule = json.loads(to_sarif([], checks=(check,)))["runs"][0]["tool"]["driver"]["rules"][0]
    md, text = rule["help"]["markdown"], rule["help"]["text"]
    assert "pods/\\* from ‹subject› via \\`kubectl\\`" in md and "\\<b\\>" in md and "\\[brackets\\]" in md
    assert "Remove pods/* from ‹subject› via `kubectl`" in text
    assert "(https://attack.mitre.org/mitigations/M1018/)" in md
    assert rule["fullDescription"]["text"] == check.description
