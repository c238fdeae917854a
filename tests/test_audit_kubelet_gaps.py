"""Kubelet settings execguard used to read wrong (found while comparing with Kubescape and kube-bench).

These were strict-xfail tests until kube.py was fixed; they now pin the fixes. Facts, from kubernetes/kubernetes:
- cmd/kubelet/app/server.go (NewKubeletCommand) parses flags with cliflag.WordSepNormalizeFunc, which turns
  ``_`` into ``-`` in flag names: ``--anonymous_auth=true`` is ``--anonymous-auth=true``.
- ``--config-dir`` (KEP-3983: alpha 1.28, beta 1.30, GA 1.35) merges every ``*.conf`` KubeletConfiguration in
  the directory, in name order, over the ``--config`` file; flags still win over both.
- a flag pflag cannot parse, or a file the config decoder cannot decode (a string for an int32), stops the
  kubelet: reported as EG-KUBELET-008, never a crash of the audit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.audit.run import run_audit
from execguard.cli import app

HARDENED = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: Webhook}
readOnlyPort: 0
"""


def _ids(d: Path) -> set[str]:
    return {f.id for f in run_audit(from_dir=str(d)).findings}


def test_underscore_flags_override_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc/kubernetes").mkdir(parents=True)
    (tmp_path / "etc/kubernetes/kubelet.yaml").write_text(HARDENED)
    (tmp_path / "kubelet.cmdline").write_text(
        "/usr/bin/kubelet --config=/etc/kubernetes/kubelet.yaml --anonymous_auth=true --read_only_port=10255\n"
    )
    assert {"EG-KUBELET-001", "EG-KUBELET-003"} <= _ids(tmp_path)


def test_config_dir_drop_in_overrides_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc/kubernetes/kubelet.conf.d").mkdir(parents=True)
    (tmp_path / "etc/kubernetes/kubelet.yaml").write_text(HARDENED)
    (tmp_path / "etc/kubernetes/kubelet.conf.d/50-debug.conf").write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthorization: {mode: AlwaysAllow}\n"
    )
    (tmp_path / "kubelet.cmdline").write_text(
        "/usr/bin/kubelet --config=/etc/kubernetes/kubelet.yaml --config-dir=/etc/kubernetes/kubelet.conf.d\n"
    )
    findings = run_audit(from_dir=str(tmp_path)).findings
    # before the fix the drop-in was judged alone, as if it were a whole config: AlwaysAllow landed on the file, not the
    # kubelet, and the merged config's client CA was missed (a false EG-KUBELET-004)
    assert any(f.id == "EG-KUBELET-002" and f.target.startswith("kubelet (") for f in findings)
    assert not any(f.id == "EG-KUBELET-004" for f in findings)


def test_hardened_baseline_has_no_findings(tmp_path: Path) -> None:
    """The same node without the underscore flags or the drop-in: nothing to report (the tests above are not
    failing for an unrelated reason)."""
    (tmp_path / "etc/kubernetes").mkdir(parents=True)
    (tmp_path / "etc/kubernetes/kubelet.yaml").write_text(HARDENED)
    (tmp_path / "kubelet.cmdline").write_text("/usr/bin/kubelet --config=/etc/kubernetes/kubelet.yaml\n")
    assert _ids(tmp_path) == set()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("kubelet.cmdline", "/usr/bin/kubelet --read-only-port=abc\n"),
        ("kubelet.yaml", 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: "10255"\n'),
    ],
)
def test_malformed_read_only_port_does_not_crash_the_audit(tmp_path: Path, name: str, text: str) -> None:
    """A value the kubelet itself would refuse must not abort the whole audit with a traceback and exit 1 (which
    --fail-on callers read as "a finding at or above the threshold")."""
    (tmp_path / name).write_text(text)
    r = CliRunner().invoke(app, ["audit", "--from", str(tmp_path), "-o", "json"])
    assert not isinstance(r.exception, ValueError | TypeError), r.exception
    assert r.exit_code in (0, 2)
    # reported instead: the file and the value the kubelet refuses; the port itself is not guessed
    findings = json.loads(r.output)
    evidence = [f["evidence"] for f in findings if f["id"] == "EG-KUBELET-008"]
    assert len(evidence) == 1 and name in evidence[0] and ("=abc" in evidence[0] or "'10255'" in evidence[0])
    assert not any(f["id"] == "EG-KUBELET-003" for f in findings)
