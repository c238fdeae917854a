"""`execguard simulate`, `score` and `emulate`: typer options over sim/ (the logic stays there, imported when run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..model import SEVERITIES
from ..sim.scenarios import SCENARIOS
from ..sim.writers import ALL_FORMATS
from .options import severity_option
from .util import check_output, error, fail, os_error_line, output_dir_problem, plural, write_output


def simulate_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the telemetry files and labels.jsonl into.")],
    scenario: Annotated[str, typer.Option("--scenario", help=f"all, {', '.join(SCENARIOS)}.")] = "all",
    fmt: Annotated[str | None, typer.Option("--format", help=f"Only this format: {', '.join(ALL_FORMATS)}.")] = None,
    events: Annotated[int, typer.Option("--events", min=0, help="Background records per format (attacks are added).")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 1,
    node_formats: Annotated[
        bool, typer.Option("--node-formats", help="Also write tetragon.jsonl's node view as falco.jsonl, kubearmor.jsonl and audit.log.")
    ] = False,
) -> None:
    """Write realistic labelled T1609 telemetry (k8s audit, EKS, GKE, AKS, docker, dockerd log, Tetragon, Falco, KubeArmor, auditd)."""
    from ..sim.simulate import write

    problem = output_dir_problem(out)
    if problem:
        fail(f"cannot write {problem}")
    try:
        counts = write(out, scenario, fmt, events, seed, node_formats)
    except ValueError as exc:
        fail(exc)
    except OSError as exc:  # a disk that fills while writing: what was written stays
        fail(os_error_line(exc) if exc.filename else f"{out}: {exc.strerror or exc}")
    for name, c in counts["files"].items():
        typer.echo(f"{out / name}: {plural(c['records'], 'record')}, {plural(c['lines'], 'line')} ({c['format']})", err=True)
    typer.echo(f"{out / 'labels.jsonl'}: {plural(counts['records'], 'label')}, {counts['malicious']} malicious", err=True)


def score_command(
    alerts: Annotated[Path, typer.Argument(help="Alerts from `execguard hunt -o jsonl`.")],
    labels: Annotated[Path, typer.Option("--labels", help="Labels written by `execguard simulate` or `execguard emulate`.")],
    min_severity: Annotated[
        str, typer.Option("--min-severity", help=f"Count alerts at or above: {', '.join(SEVERITIES)}.", callback=severity_option)
    ] = "info",
    md: Annotated[Path | None, typer.Option("--markdown", help="Also write the scorecard as Markdown here.")] = None,
    all_files: Annotated[
        bool, typer.Option("--all-files", help="Score every labelled file, also those no alert came from (a file hunted with no alert).")
    ] = False,
) -> None:
    """Precision and recall of hunt's alerts against simulate's or emulate's labels, per scenario, procedure, format and rule."""
    from ..sim.score import LabelError, markdown, read_jsonl, score

    level = min_severity
    for p in (labels, alerts):
        if not p.exists():
            fail(f"{p}: no such file")
        if p.is_dir():
            fail(f"{p}: is a directory")
    check_output(md)
    try:
        res = score(read_jsonl(labels), read_jsonl(alerts), level, all_files=all_files)
    except LabelError as exc:  # blank lines are skipped, so this is the n-th label, which is line n of a labels file we wrote
        fail(f"{labels}: label {exc.number}: {exc.message}")
    except KeyError as exc:
        fail(f"{labels}: a label without {exc}")
    except TypeError as exc:
        fail(f"{labels} or {alerts}: a record of the wrong shape ({exc})")
    except ValueError as exc:
        fail(exc)
    text = markdown(res)
    sys.stdout.write(text)
    if md is not None:
        write_output(md, text.encode())


def emulate_command(
    target: Annotated[str, typer.Argument(help="What to emulate against: docker.")],
    labels: Annotated[Path, typer.Option("--labels", help="Write what was done here (JSON lines).")],
    host: Annotated[str | None, typer.Option("--host", help="Docker daemon URL (default: $DOCKER_HOST or the local socket).")] = None,
    scenario: Annotated[str, typer.Option("--scenario", help="teamtnt, kinsing, runtime (needs --containerd) or all.")] = "all",
    containerd: Annotated[
        str | None,
        typer.Option("--containerd", help="The daemon's containerd socket: adds the runtime procedure (exec with ctr, no Docker exec)."),
    ] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Accept a daemon that is not on this host.")] = False,
    events: Annotated[
        Path | None, typer.Option("--events", help="Also write the daemon's events of the run here, for `execguard hunt` (JSON lines).")
    ] = None,
) -> None:
    """Run the Docker-side attack procedures for real against a daemon (busybox, no network) and label them."""
    import docker
    import docker.errors

    from ..sim.emulate import RUNTIME, EmulateError, emulate, is_local
    from ..sim.emulate import SCENARIOS as EMULATED

    if target != "docker":
        fail(f"unknown target {target!r}: only docker")
    if scenario != "all" and scenario not in (*EMULATED, RUNTIME):
        fail(f"--scenario {scenario!r}: choose teamtnt, kinsing, runtime or all")
    if scenario == RUNTIME and not containerd:
        fail("--scenario runtime needs --containerd unix:///PATH/containerd.sock (the daemon's containerd)")
    if containerd and not containerd.removeprefix("unix://").startswith("/"):
        fail(f"--containerd {containerd}: give unix:///PATH/containerd.sock")
    check_output(labels)
    check_output(events)
    url = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not is_local(url) and not allow_remote:
        fail(f"{url} is not a local daemon; refusing (use --allow-remote to run against it anyway)")
    try:
        client = docker.DockerClient(base_url=url, timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        fail(f"cannot reach the Docker daemon at {url}: {exc}")
    try:
        with open(labels, "w", encoding="utf-8") as out, open(events or os.devnull, "w", encoding="utf-8") as ev_out:
            try:
                n = emulate(client, scenario, out, ev_out if events else None, containerd)
            except (docker.errors.DockerException, EmulateError) as exc:
                error(exc)  # the daemon failed mid-way (not the user): exit 1, as before
                raise typer.Exit(1) from None
    except OSError as exc:  # an output file failed while being written (a full disk); the containers are removed
        fail(f"{exc.filename or labels}: {exc.strerror or exc}")
    also = f"; daemon events in {events}" if events else ""
    typer.echo(f"{plural(n, 'action')} against {url}; labels in {labels}{also}; containers removed", err=True)
