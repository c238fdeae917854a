"""docs/deploy.md: the audit policy it gives passes audit's own coverage check; the webhook kubeconfig is well formed."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import yaml
from typer.testing import CliRunner

from execguard.audit.collect.audit_policy import policy_coverage
from execguard.cli import app

DEPLOY = Path(__file__).parent.parent / "docs" / "deploy.md"


def _yaml_block(kind: str) -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DEPLOY.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if f"kind: {kind}\n" in b]
    assert len(found) == 1, f"one {kind} block in {DEPLOY}"
    return found[0]


def test_deploy_audit_policy_records_every_t1609_request_at_request_level(tmp_path: Path) -> None:
    policy = _yaml_block("Policy")
    (tmp_path / "audit-policy.yaml").write_text(policy)
    result = CliRunner().invoke(app, ["audit", "--from", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    findings = orjson.loads(result.stdout)
    ids = {f["id"] for f in findings}
    assert ids == {"EG-AUDIT-003"}, ids  # recorded; nothing blind (001), nobody exempt (002), debug command kept (004)
    assert len(findings) == 8  # get/create exec, attach, nodes/proxy; patch/update ephemeralcontainers
    coverage = policy_coverage(yaml.safe_load(policy))
    assert {c["level"] for c in coverage} == {"Request"}
    assert all(c["command_visible"] and not c["blind"] for c in coverage)


def test_deploy_webhook_kubeconfig_points_at_an_https_receiver() -> None:
    config = yaml.safe_load(_yaml_block("Config"))
    server = config["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://")
    assert config["contexts"][0]["context"] == {"cluster": "execguard", "user": "kube-apiserver"}
    assert "token" in config["users"][0]["user"]
