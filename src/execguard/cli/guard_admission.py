"""`execguard guard admission` (the webhook) and `execguard guard manifests` (what installs it)."""

from __future__ import annotations

import gc
import ssl
import sys
import threading
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from ..guard import admission, manifests
from ..guard.approvals import state_dir
from ..guard.decide import DENY_AT, Decision
from ..guard.review import Judge
from ..guard.runtime import GuardRuntime
from ..model import Event, display
from ..policy.model import MODES
from .util import fail, note, one_line, policy_text, read_input

LOG_LOCK = threading.Lock()


class FailurePolicy(str, Enum):
    Fail = "Fail"
    Ignore = "Ignore"


class Variant(str, Enum):
    webhook = "webhook"
    policy = "policy"


def _mode(value: str) -> str:
    if value not in MODES:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(MODES)}")
    return value


def _log(line: str) -> None:
    with LOG_LOCK:
        sys.stderr.write(one_line(line) + "\n")
        sys.stderr.flush()


def describe(ev: Event, uid: str | None) -> dict[str, Any]:
    """What a decision record says about a Kubernetes request (guard/runtime.py's describe, from an Event)."""
    return {
        "platform": "k8s",
        "operation": ev.action,
        "uid": uid,
        "user": ev.actor.user,
        "groups": ev.actor.groups,
        "namespace": ev.target.namespace,
        "pod": ev.target.pod,
        "target_kind": ev.target.kind,
        "container": ev.target.container,
        "image": ev.target.image,
        "command": ev.command,
        "command_display": display(" ".join(ev.command)),
        "command_origin": ev.command_origin,
        "privileged": ev.privileged,
        "uri": ev.request_uri,
    }


def judge_with(runtime: GuardRuntime) -> Judge:
    """The policy in force (SIGHUP swaps it), approvals honoured, every decision recorded."""

    def judge(ev: Event, labels: dict[str, str]) -> Decision:
        decision = runtime.current().decide_event(ev, labels, datetime.now(UTC))
        runtime.recorder.record("decision", {**describe(ev, ev.event_id), **decision.to_dict()})
        return decision

    return judge


def admission_command(
    tls_cert: Annotated[Path, typer.Option("--tls-cert", help="PEM serving certificate (chain).")],
    tls_key: Annotated[Path, typer.Option("--tls-key", help="PEM private key of the certificate.")],
    listen: Annotated[str, typer.Option("--listen", metavar="ADDR:PORT", help="Where to listen (HTTPS).")] = "0.0.0.0:8443",
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (deny/allow/mode entries); SIGHUP reloads it.")] = None,
    mode: Annotated[str, typer.Option("--mode", callback=_mode, help="Where no policy entry says: enforce, warn or audit.")] = "enforce",
    deny_at: Annotated[str, typer.Option("--deny-at", help="Lowest rule severity that denies.")] = DENY_AT,
    rules: Annotated[list[str] | None, typer.Option("--rules", "-r", help="Extra rule directory or file (repeatable).")] = None,
    state: Annotated[Path | None, typer.Option("--state-dir", help="Approvals and decision record [env EXECGUARD_STATE_DIR].")] = None,
    record: Annotated[
        str | None, typer.Option("--record", help="JSON lines decision record ('-': stdout) [STATE_DIR/decisions.jsonl].")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Also copy the record into this SQLite alert store; query with 'guard decisions'.")
    ] = None,
    max_connections: Annotated[int, typer.Option("--max-connections", min=1, max=4096, help="Connections served at once.")] = (
        admission.MAX_CONNECTIONS
    ),
    max_body: Annotated[int, typer.Option("--max-body", min=1024, help="Largest AdmissionReview body in bytes.")] = admission.MAX_BODY,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds a connection may stay silent.")] = admission.TIMEOUT,
) -> None:
    """Validating admission webhook: judge exec/attach/port-forward, kubectl debug and pod commands before they run."""
    # cli/guard.py registers this command; its helpers are imported here, not at the top, so neither module imports the other first
    from .guard import runtime_from_options, serve_until_signalled

    try:
        address = admission.parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from None
    try:
        context = admission.tls_context(str(tls_cert), str(tls_key))
    except (ssl.SSLError, OSError) as exc:
        fail(f"{tls_cert}, {tls_key}: cannot load the TLS certificate and key: {getattr(exc, 'strerror', None) or exc}")
    runtime = runtime_from_options(policy, mode, deny_at, rules, state_dir(state), record, store)
    limits = admission.Limits(max_body=max_body, timeout=timeout, max_connections=max_connections)
    try:
        server = admission.serve(address, context, judge_with(runtime), _log, limits)
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")
    gc.freeze()  # rules, policy and imports live as long as the process: the collector never walks them mid-review
    note(f"execguard admission webhook on {server.url} ({len(runtime.rules)} rules, mode {mode}{f', policy {policy}' if policy else ''})")
    serve_until_signalled(server, runtime, "admission")


def manifests_command(
    variant: Annotated[Variant, typer.Option("--variant", help="webhook, or policy (ValidatingAdmissionPolicy).")] = (Variant.webhook),
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of the webhook (always exempt).")] = "execguard",
    image: Annotated[str, typer.Option("--image", help="execguard container image.")] = manifests.Options().image,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM serving certificate for the Secret.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM key for the Secret.")] = None,
    ca_cert: Annotated[Path | None, typer.Option("--ca-cert", help="PEM CA that signed the certificate (caBundle).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file to ship in a ConfigMap.")] = None,
    exec_failure_policy: Annotated[FailurePolicy, typer.Option("--exec-failure-policy", help="exec webhook when execguard is down.")] = (
        FailurePolicy.Fail
    ),
    workload_failure_policy: Annotated[FailurePolicy, typer.Option("--workload-failure-policy", help="Pod/workload webhook when down.")] = (
        FailurePolicy.Ignore
    ),
    timeout: Annotated[int, typer.Option("--timeout", min=1, max=30, help="timeoutSeconds the API server waits.")] = 5,
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="Webhook replicas.")] = 2,
    exempt: Annotated[list[str] | None, typer.Option("--exempt-namespace", help="Another namespace left alone (repeatable).")] = None,
    exec_group: Annotated[list[str] | None, typer.Option("--exec-group", help="policy variant: group that may exec.")] = None,
    mode: Annotated[str, typer.Option("--mode", callback=_mode, help="policy variant: enforce, warn or audit.")] = "enforce",
) -> None:
    """Print the Kubernetes objects that install the admission webhook (or its CEL policy variant) as YAML."""
    opts = manifests.Options(
        namespace=namespace, image=image, exec_failure_policy=exec_failure_policy.value,
        workload_failure_policy=workload_failure_policy.value, timeout=timeout, replicas=replicas,
        exempt_namespaces=list(exempt or []), exec_groups=list(exec_group or ["execguard:exec"]), vap_mode=mode,
    )  # fmt: skip
    if variant is Variant.policy:
        docs = manifests.admission_policy(opts)
    else:
        opts.cert_pem, opts.key_pem = read_input(tls_cert, "certificate"), read_input(tls_key, "key")
        opts.ca_pem = read_input(ca_cert, "CA certificate")
        if policy is not None:
            opts.policy_text = policy_text(policy)
        if not (opts.cert_pem and opts.key_pem and opts.ca_pem):
            note("no --tls-cert/--tls-key/--ca-cert: the Secret and caBundle are empty; fill them (or let cert-manager) before applying")
        docs = manifests.webhook_manifests(opts)
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
