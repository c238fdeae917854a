"""Every check in the catalogue is fired by some test; the ones no other module covers are tested here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from execguard.audit.engine import catalogue
from execguard.audit.run import run_audit

DATA = Path(__file__).parent / "data" / "audit"


def fired(root: Path) -> set[tuple[str, str]]:
    return {(f.id, f.target) for f in run_audit(from_dir=str(root)).findings}


def test_ephemeral_containers_and_create_workloads_grants() -> None:
    got = fired(DATA / "rbac")
    assert ("EG-RBAC-011", "Group ops @ cluster") in got  # patch on pods/ephemeralcontainers: kubectl debug
    assert ("EG-RBAC-013", "User henry @ cluster") in got  # create pods: a container command of one's choosing
    assert not any(i == "EG-RBAC-011" and t.startswith("User frank") for i, t in got)  # frank only execs


def test_authorization_config_missing_from_the_input(tmp_path: Path) -> None:
    root = tmp_path / "dump"
    shutil.copytree(DATA / "apiserver" / "authz-config", root)
    assert not any(i == "EG-API-005" for i, _ in fired(root))  # the file is there: its authorizers are read
    (root / "etc/kubernetes/authz.yaml").unlink()
    assert any(i == "EG-API-005" for i, _ in fired(root))


def test_every_check_is_named_by_a_test() -> None:
    """A new check in checks.yml needs a test that expects it by id."""
    text = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    named = set(re.findall(r"EG-[A-Z]+-\d{3}", text))
    assert [c.id for c in catalogue() if c.id not in named] == []
