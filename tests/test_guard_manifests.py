"""`execguard guard manifests` validated against Kubernetes' own schemas (kubernetes-validate, offline), and the
Deployment's arguments run for real: `execguard guard admission` as the pod would start it, over HTTPS."""

from __future__ import annotations

import base64
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from execguard.cli import app
from execguard.testing import reviews
from execguard.testing.dockerd import TLSFiles, free_port

# the oldest Kubernetes with admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy, and the newest bundled
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
POLICY = """apiVersion: execguard/v1
kind: Policy
entries:
  - name: payments-hands-off
    action: deny
    reason: nobody execs into payments
    match: {namespaces: [payments]}
"""



def manifests(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["guard", "manifests", *args])
    assert result.exit_code == 0, result.output
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant", ["webhook", "policy"])
def test_every_object_validates_strictly(certs: TLSFiles, tmp_path: Path, version: str, variant: str) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    args = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key), "--ca-cert", str(certs.ca), "--policy", str(policy)]
    docs = manifests("--variant", variant, *args)
    expected = {"webhook": {"Namespace", "Secret", "ConfigMap", "Deployment", "Service", "ValidatingWebhookConfiguration"},
                "policy": {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}}[variant]  # fmt: skip
    assert {d["kind"] for d in docs} == expected
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_webhook_configuration(certs: TLSFiles) -> None:
    docs = by_kind(manifests("--namespace", "sec", "--ca-cert", str(certs.ca), "--timeout", "3", "--exempt-namespace", "kube-system"))
    exec_hook, workloads = docs["ValidatingWebhookConfiguration"]["webhooks"]
    assert exec_hook["failurePolicy"] == "Fail" and workloads["failurePolicy"] == "Ignore"
    ops = {(op, res) for rule in exec_hook["rules"] for op in rule["operations"] for res in rule["resources"]}
    connect = {("CONNECT", f"pods/{sub}") for sub in ("exec", "attach", "portforward")}
    assert ops == {*connect, ("UPDATE", "pods/ephemeralcontainers")}
    kinds = {res for rule in workloads["rules"] for res in rule["resources"]}
    assert kinds == {"pods", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs", "replicationcontrollers"}
    for hook in (exec_hook, workloads):
        assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"] and hook["timeoutSeconds"] == 3
        assert hook["namespaceSelector"]["matchExpressions"] == [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["sec", "kube-system"]}
        ]
        assert hook["clientConfig"]["service"]["namespace"] == "sec"
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == certs.ca.read_bytes()
    assert all(d["metadata"].get("namespace", "sec") == "sec" for d in docs.values() if d["kind"] != "ValidatingWebhookConfiguration")
    failing_open = by_kind(manifests("--exec-failure-policy", "Ignore", "--workload-failure-policy", "Fail"))
    assert [h["failurePolicy"] for h in failing_open["ValidatingWebhookConfiguration"]["webhooks"]] == ["Ignore", "Fail"]


def test_deployment_is_locked_down(certs: TLSFiles) -> None:
    docs = by_kind(manifests("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and pod["automountServiceAccountToken"] is False
    assert c["resources"]["limits"] and c["resources"]["requests"]
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    secret = docs["Secret"]
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == certs.server_cert.read_bytes()
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == c["ports"][0]["containerPort"]


def test_policy_variant_modes_and_groups() -> None:
    docs = by_kind(manifests("--variant", "policy", "--mode", "warn", "--exec-group", "sre", "--exec-group", "oncall"))
    vap, binding = docs["ValidatingAdmissionPolicy"], docs["ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["validationActions"] == ["Warn"] and binding["spec"]["policyName"] == vap["metadata"]["name"]
    assert "['sre', 'oncall']" in vap["spec"]["validations"][0]["expression"]
    ops = {(op, res) for rule in vap["spec"]["matchConstraints"]["resourceRules"] for op in rule["operations"] for res in rule["resources"]}
    assert ("CONNECT", "pods/exec") in ops and ("UPDATE", "pods/ephemeralcontainers") in ops


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("apiVersion: execguard/v1\nkind: Policy\nentries:\n  - action: explode\n")
    for args, needle in ((["--policy", str(bad)], "bad.yml:4"), (["--tls-cert", str(tmp_path / "none.pem")], "none.pem: cannot read")):
        result = CliRunner().invoke(app, ["guard", "manifests", *args])
        assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def pod_process(certs: TLSFiles, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`execguard` started with the Deployment's own command and args, paths moved to this test's files."""
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    (c,) = by_kind(manifests("--policy", str(policy)))["Deployment"]["spec"]["template"]["spec"]["containers"]
    port = free_port()
    moved = {"/tls/tls.crt": str(certs.server_cert), "/tls/tls.key": str(certs.server_key), "/policy/policy.yml": str(policy),
             "/var/lib/execguard": str(tmp_path / "state"), "0.0.0.0:8443": f"127.0.0.1:{port}"}  # fmt: skip
    argv = [sys.executable, "-m", "execguard", *(moved.get(a, a) for a in c["args"])]
    assert c["command"] == ["execguard"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=reviews.client_context(str(certs.ca)), timeout=5)
                conn.request("GET", "/readyz")
                assert conn.getresponse().status == 200
                conn.close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode() if proc.stderr else ""
                time.sleep(0.1)
        yield proc, port, policy
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_the_deployment_args_run_the_webhook(certs: TLSFiles, pod_process: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    proc, port, policy = pod_process

    def ask(review: dict[str, Any]) -> dict[str, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=reviews.client_context(str(certs.ca)), timeout=10)
        status, body = reviews.post(conn, review, "/exec")
        conn.close()
        assert status == 200
        return dict(orjson.loads(body)["response"])

    assert ask(reviews.connect("exec", ["ls"], namespace="payments"))["allowed"] is False
    assert ask(reviews.connect("exec", ["ls"], namespace="shop"))["allowed"] is True
    # a broken policy on SIGHUP: refused, the last good one stays
    policy.write_text("apiVersion: execguard/v1\nkind: Policy\nentries: 7\n")
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert ask(reviews.connect("exec", ["ls"], namespace="payments"))["allowed"] is False
    policy.write_text(POLICY.replace("payments", "billing"))
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while ask(reviews.connect("exec", ["ls"], namespace="payments"))["allowed"] is False:
        assert time.monotonic() < deadline, "the good policy was not reloaded"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err.decode()
    records = [orjson.loads(line) for line in out.splitlines()]
    decisions = [r for r in records if r["kind"] == "decision"]
    assert decisions and decisions[0]["platform"] == "k8s" and decisions[0]["allowed"] is False and decisions[0]["namespace"] == "payments"
    assert any(r["kind"] == "policy" and r["loaded"] is False for r in records)
    assert b"Traceback" not in err and b"entries" in err
