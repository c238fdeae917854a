"""`execguard audit`: typer options over audit/run.py; the report is written by audit/report.py."""

from __future__ import annotations

import io
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..model import severity_rank
from .options import severity_option
from .util import check_output, error, fail, note, warning, write_output


class AuditOutput(str, Enum):
    table = "table"
    json = "json"
    sarif = "sarif"


def audit_command(
    from_dir: Annotated[
        str | None, typer.Option("--from", help="Directory of kubectl dumps, manifests, kubelet/apiserver/docker configs.")
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", help="Read RBAC, pods, nodes, pod controllers and ServiceAccounts live (read-only).")
    ] = None,
    docker_host: Annotated[str | None, typer.Option("--docker-host", help="Docker Engine API URL to test (unix:// or tcp://).")] = None,
    probe: Annotated[
        list[str] | None,
        typer.Option("--probe", metavar="ADDR[:PORT[/SERVICE]]", help=(
                "Address to probe on 2375/2376/10250/10255, or ADDR:PORT[/SERVICE] (SERVICE: docker, docker-tls, kubelet,"
                " kubelet-readonly); 'loopback' = 127.0.0.1. Repeatable."
            ),),
    ] = None,
    output: Annotated[AuditOutput, typer.Option("--output", "-o", help="table, json or sarif.")] = AuditOutput.table,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report here instead of stdout.")] = None,
    fail_on: Annotated[
        str | None, typer.Option("--fail-on", help="Exit 1 when a finding at or above this level exists.", callback=severity_option)
    ] = None,
    hide_info: Annotated[bool, typer.Option("--hide-info", help="Table: leave out info findings.")] = False,
    sarif_root: Annotated[
        Path | None,
        typer.Option(
            "--sarif-root",
            help="SARIF: repository root that file URIs are relative to (default $GITHUB_WORKSPACE when it holds --from, else --from).",
        ),
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="--docker-host: use TLS (implied by --tlsverify; env DOCKER_TLS).")] = False,
    tlsverify: Annotated[
        bool | None,
        typer.Option(
            "--tlsverify/--no-tlsverify", help="--docker-host: use TLS and verify the daemon's certificate (env DOCKER_TLS_VERIFY)."
        ),
    ] = None,
    tlscacert: Annotated[
        str | None, typer.Option("--tlscacert", help="CA that signed the daemon's certificate (default DOCKER_CERT_PATH/ca.pem).")
    ] = None,
    tlscert: Annotated[str | None, typer.Option("--tlscert", help="Client certificate (default DOCKER_CERT_PATH/cert.pem).")] = None,
    tlskey: Annotated[str | None, typer.Option("--tlskey", help="Client key (default DOCKER_CERT_PATH/key.pem).")] = None,
) -> None:
    """Audit RBAC, kubelet, API server, audit policy, Docker and workloads for T1609 exposure (M1018/M1026/M1035/M1038/M1042)."""
    from rich.console import Console

    from ..audit.gather import docker_live, live
    from ..audit.gather import probe as probe_mod  # the command's --probe parameter is called probe
    from ..audit.report import print_table, to_json, to_sarif
    from ..audit.run import run_audit

    if not (from_dir or kubeconfig or docker_host or probe):
        fail("give --from DIR, --kubeconfig FILE, --docker-host URL or --probe ADDR")
    check_output(out)
    docker_tls = None
    if docker_host:
        try:
            docker_tls = docker_live.client_tls(tls, tlsverify, tlscacert, tlscert, tlskey)
        except live.LiveError as exc:
            fail(exc)
    elif tls or tlsverify is not None or tlscacert or tlscert or tlskey:
        fail("--tls, --tlsverify, --tlscacert, --tlscert and --tlskey apply to --docker-host")
    targets = []
    for spec in probe or []:
        try:
            targets.append(probe_mod.describe(spec))
        except live.LiveError as exc:
            fail(f"--probe {exc}")
    if targets:
        note(f"probing {', '.join(targets)} and the local Docker sockets (stat only)")
    res = run_audit(from_dir, kubeconfig, docker_host, probe, docker_tls)
    for w in res.warnings:
        warning(w)
    for e in res.errors:
        error(e)
    base = Path(from_dir) if from_dir and Path(from_dir).is_dir() else None
    if output is AuditOutput.table:
        buf = io.StringIO()  # the whole table, then one write: a failed write is then one error naming --out
        console = Console(file=buf, width=200) if out else Console()
        print_table(res.findings, res.grants, console, show_info=not hide_info)
        if out:
            write_output(out, buf.getvalue().encode())
    else:
        data = to_json(res.findings) if output is AuditOutput.json else to_sarif(res.findings, base, root=sarif_root)
        if out:
            write_output(out, data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    if res.errors:
        raise typer.Exit(2)
    if fail_on is not None and any(severity_rank(f.severity) >= severity_rank(fail_on) for f in res.findings):
        raise typer.Exit(1)
