"""`execguard hunt -o ocsf` against the OCSF 1.1.0 Detection Finding schema, as the SARIF output is against SARIF's.

tests/data/ocsf/detection_finding-1.1.0.schema.json is derived from ocsf/ocsf-schema v1.1.0 by
tests/data/ocsf/derive_schema.py (see tests/data/README.md): class and object attributes, required ones,
enums of the *_id attributes, no unknown attribute, no null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from execguard.cli import app
from execguard.sim import simulate

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((DATA / "ocsf" / "detection_finding-1.1.0.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
runner = CliRunner()


def _findings(*args: str) -> list[dict[str, Any]]:
    res = runner.invoke(app, ["hunt", "-q", "-o", "ocsf", "-j", "1", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def _errors(finding: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(finding)]


def test_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["class_uid"] == {"const": 2004}
    assert {"finding_info", "metadata", "severity_id", "time", "type_uid"} <= set(SCHEMA["required"])


def test_simulated_attacks_validate(tmp_path: Path) -> None:
    simulate.write(tmp_path, "all", None, 100, 5)
    findings = _findings(str(tmp_path))
    assert len({f["metadata"]["log_name"] for f in findings}) == 7  # every format, tetragon included
    for f in findings:
        assert not _errors(f), (f["finding_info"]["uid"], _errors(f))


@pytest.mark.parametrize("folder", ["docker", "eks", "gke", "aks", "falco"])
def test_fixture_alerts_validate(folder: str) -> None:
    findings = _findings(str(DATA / folder))
    assert findings
    for f in findings:
        assert not _errors(f), (f["finding_info"]["uid"], _errors(f))


def test_suppressed_alert_validates(tmp_path: Path) -> None:
    simulate.write(tmp_path, "insider", "k8s-audit", 20, 1)
    policy = "apiVersion: execguard/v1\nkind: Policy\nentries:\n"
    policy += "  - name: all\n    action: suppress\n    reason: every alert, for the test\n    match: {rules: ['*']}\n"
    (tmp_path / "policy.yml").write_text(policy)
    findings = _findings("--policy", str(tmp_path / "policy.yml"), "--show-suppressed", str(tmp_path / "k8s-audit.jsonl"))
    assert findings and all(f["status_id"] == 3 for f in findings)
    for f in findings:
        assert not _errors(f)


def test_schema_refuses_what_ocsf_does_not_allow(tmp_path: Path) -> None:
    simulate.write(tmp_path, "insider", "k8s-audit", 20, 1)
    finding = _findings(str(tmp_path / "k8s-audit.jsonl"))[0]
    assert not _errors(finding)
    assert _errors({**finding, "http_request": {"url": {"path": "/x"}}})  # not an attribute of class 2004
    assert _errors({**finding, "status_detail": None})  # OCSF has no null values
    assert _errors({**finding, "severity_id": 9})  # not in the enum
    del finding["time"]
    assert _errors(finding)
