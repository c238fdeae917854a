"""`execguard guard ...`: refuse container administration commands before they run (docs/guard.md).

A sub-app so the Kubernetes half (`admission`, `manifests`) can be added with one more
``guard_app.command(...)`` line. Errors are one line on stderr with exit code 2 (cli/util.py).
"""

from __future__ import annotations

import gc
import os
import signal
import socketserver
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from ..engine.load import load_rules
from ..engine.rule import RuleError
from ..guard.approvals import ApprovalStore, add_approval, parse_duration, state_dir
from ..guard.decide import DENY_AT
from ..guard.record import GuardRecorder, JsonlRecorder, StoreFollower
from ..guard.runtime import GuardRuntime
from ..model import SEVERITIES
from ..policy import PolicyError
from ..policy.model import MODES
from .util import Group, error, fail, fail_lines, note, one_line

SWITCH_INTERVAL = 0.0005

guard_app = typer.Typer(
    cls=Group, no_args_is_help=True, rich_markup_mode=None, help="Block container administration commands before they run (docs/guard.md)."
)

PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="Policy file: deny/allow entries and modes per scope (docs/policy.md).")]
StateOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Approvals and decision record [env EXECGUARD_STATE_DIR; /var/lib/execguard]."),
]
RecordOpt = Annotated[
    str | None, typer.Option("--record", help="JSON lines record of decisions and approvals ('-': stdout) [STATE_DIR/decisions.jsonl].")
]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Also copy the record into this SQLite alert store (WAL); query it with 'guard decisions'."),
]


def _jsonl(record: str | None, states: Path, store: Path | None) -> JsonlRecorder:
    if store is not None and record == "-":
        fail("--store is filled from the decision record: give --record a file (or leave it out), not '-'")
    try:
        return JsonlRecorder(None if record == "-" else Path(record) if record else states / "decisions.jsonl")
    except OSError as exc:
        fail(f"{record or states / 'decisions.jsonl'}: cannot write the decision record: {exc.strerror or exc}")


def _recorder(record: str | None, states: Path, store: Path | None) -> GuardRecorder:
    """The record, and a thread copying it into the store: a store that is down never holds up a decision."""
    jsonl = _jsonl(record, states, store)
    if store is None or jsonl.path is None:
        return GuardRecorder(jsonl)
    return GuardRecorder(jsonl, StoreFollower(store, jsonl.path, warn=lambda m: error(m)))


def runtime_from_options(
    policy: Path | None, mode: str, deny_at: str, rules: list[str] | None, states: Path, record: str | None, store: Path | None = None
) -> GuardRuntime:
    """What every guard server shares (the Docker plugin here, the admission webhook later)."""
    if mode not in MODES:
        fail(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
    if deny_at not in SEVERITIES:
        fail(f"--deny-at {deny_at!r}: choose one of {', '.join(SEVERITIES)}")
    try:
        loaded = load_rules(rules or [])
    except RuleError as exc:
        fail(str(exc))
    recorder = _recorder(record, states, store)
    try:
        return GuardRuntime(loaded, recorder, policy, mode, deny_at, ApprovalStore(states), warn=lambda m: error(m))
    except PolicyError as exc:
        fail_lines(exc.lines())


def serve_until_signalled(server: socketserver.BaseServer, runtime: GuardRuntime, name: str) -> None:
    """Serve on a thread until SIGTERM/SIGINT; SIGHUP reloads the policy (the last good one stays on a bad file).
    Then the server is shut down and closed and the decision record closed, whatever ended it."""
    stop = threading.Event()
    # a request thread that wakes while another thread (the store copy) holds the GIL waits up to this long for it:
    # 5 ms by default, the whole latency budget
    sys.setswitchinterval(SWITCH_INTERVAL)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
    signal.signal(signal.SIGHUP, lambda *_: note("policy reloaded") if runtime.reload() else None)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        thread.start()
        while not stop.wait(0.5):
            if not thread.is_alive():
                break
    finally:
        server.shutdown()  # no new connections
        drain = getattr(server, "drain", None)
        if drain is not None and not drain():  # answer what is being read, close idle kept-alive connections
            error(f"{name}: connections still busy after the drain timeout; closing")
        server.server_close()
        runtime.recorder.close()  # then the store gets the last answered decisions
        follower = getattr(runtime.recorder, "follower", None)
        if follower is not None:
            behind = f", {follower.behind} bytes of the record not yet in it (copied at the next start)" if follower.behind else ""
            failed = f", {follower.failures} failed tries" if follower.failures else ""
            note(f"store {follower.store}: {follower.copied} records copied this run{failed}{behind}")


@guard_app.command("docker-authz")
def docker_authz(
    policy: PolicyOpt = None,
    socket_path: Annotated[
        Path | None,
        typer.Option("--socket", help="Unix socket [/run/docker/plugins/execguard.sock]; dockerd finds NAME.sock there."),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="Where no policy entry says: enforce (refuse), warn or audit (allow, record).")
    ] = "enforce",
    deny_at: Annotated[str, typer.Option("--deny-at", help="Lowest rule severity that denies.")] = DENY_AT,
    fail_mode: Annotated[
        str, typer.Option("--fail", help="Unreadable body of a guarded call: closed (deny) or open (allow, record).")
    ] = "closed",
    rules: Annotated[list[str] | None, typer.Option("--rules", "-r", help="Extra rule directory or file (repeatable).")] = None,
    state: StateOpt = None,
    record: RecordOpt = None,
    store: StoreOpt = None,
) -> None:
    """Docker authorization plugin: judge exec, exec start, attach and container create; pass everything else."""
    from ..guard.docker_authz import FAIL_MODES, AuthzPlugin, UnixHTTPServer, socket_for

    if fail_mode not in FAIL_MODES:
        fail(f"--fail {fail_mode!r}: choose closed or open")
    states = state_dir(state)
    runtime = runtime_from_options(policy, mode, deny_at, rules, states, record, store)
    path = socket_path or socket_for("execguard")
    gc.freeze()  # compiled rules live as long as the process: keep the collector from walking them mid-request
    try:
        server = UnixHTTPServer(path, AuthzPlugin(runtime, fail_mode))
    except OSError as exc:
        fail(f"{path}: cannot listen: {exc.strerror or exc}")
    note(f"execguard docker-authz listening on {path} (plugin name {path.stem}; dockerd --authorization-plugin={path.stem})")
    serve_until_signalled(server, runtime, "docker-authz")


@guard_app.command("approve")
def approve(
    user: Annotated[str, typer.Option("--user", help="The user the approval is for (Docker: the TLS client certificate's CN).")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1h30m (at most 24h).")],
    reason: Annotated[str, typer.Option("--reason", help="Why: the incident or ticket. Recorded with every decision it allows.")],
    namespace: Annotated[str | None, typer.Option("--namespace", help="Only in this namespace (Kubernetes); all when left out.")] = None,
    state: StateOpt = None,
    record: RecordOpt = None,
    store: StoreOpt = None,
) -> None:
    """Break glass: let USER through guard's denials for a while. Every use is recorded."""
    try:
        length = parse_duration(duration)
    except ValueError as exc:
        fail(f"--for: {exc}")
    states = state_dir(state)
    by = os.environ.get("SUDO_USER") or os.environ.get("USER") or None
    try:
        approval = add_approval(states, user, namespace, length, reason, by)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{states}: cannot write the approval: {exc.strerror or exc}")
    recorder = _jsonl(record, states, store)
    recorder.record("approval", {"id": approval.id, "user": approval.user, "namespace": approval.namespace,
                                 "until": approval.until.isoformat(), "reason": approval.reason, "by": approval.by})  # fmt: skip
    recorder.close()
    if store is not None and recorder.path is not None:
        StoreFollower(store, recorder.path, warn=lambda m: error(m), follow=False).close()  # copied now
    where = f" in namespace {approval.namespace}" if approval.namespace else ""
    sys.stdout.write(f"approval {approval.id}: {one_line(user)}{one_line(where)} until {approval.until.isoformat(timespec='seconds')}\n")


# the Kubernetes half (G2): the admission webhook and the manifests that install it
from .guard_admission import admission_command, manifests_command  # noqa: E402

guard_app.command("admission")(admission_command)
guard_app.command("manifests")(manifests_command)

from .guard_decisions import decisions_command  # noqa: E402

guard_app.command("decisions")(decisions_command)
