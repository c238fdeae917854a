"""rules export without the export extra: one clear line naming what to install, exit 2 (pass 1 of scripts/test)."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from execguard.cli import app


@pytest.mark.skipif(importlib.util.find_spec("sigma.backends.splunk") is not None, reason="the export extra is installed")
def test_export_without_the_backends_says_what_to_install() -> None:
    res = CliRunner().invoke(app, ["rules", "export", "--target", "splunk"])
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith("error: target splunk needs the pySigma backends: pip install 'execguard[export]'")
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_export_target_is_checked_before_the_backends() -> None:
    res = CliRunner().invoke(app, ["rules", "export", "-t", "graylog"])
    assert res.exit_code == 2 and "unknown target 'graylog'; targets: elasticsearch, eql, esql, kusto" in res.stderr


def test_rules_listing_is_unchanged_by_the_export_subcommand() -> None:
    res = CliRunner().invoke(app, ["rules", "-o", "json"])
    assert res.exit_code == 0 and '"rule_id": "k8s-exec-api"' in res.stdout
