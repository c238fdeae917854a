"""`execguard watch manifests`: the Kubernetes objects that run the audit webhook receiver, as YAML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from ..live import manifests
from .util import fail, note, policy_text, read_input


def manifests_command(
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of the receiver.")] = "execguard",
    image: Annotated[str, typer.Option("--image", help="execguard container image.")] = manifests.Options().image,
    apiserver_cidr: Annotated[
        list[str] | None,
        typer.Option("--apiserver-cidr", help="Where kube-apiserver connects from (control-plane node addresses); repeatable."),
    ] = None,
    spool_volume: Annotated[
        str, typer.Option("--spool-volume", help="pvc (survives the pod; default) or emptyDir (survives container restarts only).")
    ] = "pvc",
    spool_size: Annotated[str, typer.Option("--spool-size", help="Size of the spool volume (Mi, Gi or Ti).")] = "4Gi",
    storage_class: Annotated[str | None, typer.Option("--storage-class", help="StorageClass of the spool claim.")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM serving certificate for the Secret.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM key for the Secret.")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="The bearer token kube-apiserver sends, for the Secret.")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file to ship in a ConfigMap.")] = None,
) -> None:
    """Print the Deployment, Service, Secret, NetworkPolicy, ServiceAccount and spool claim of the receiver as YAML."""
    opts = manifests.Options(
        namespace=namespace, image=image, apiserver_cidrs=list(apiserver_cidr or []), spool_volume=spool_volume,
        spool_size=spool_size, storage_class=storage_class,
    )  # fmt: skip
    opts.cert_pem, opts.key_pem = read_input(tls_cert, "certificate"), read_input(tls_key, "key")
    opts.token = read_input(token_file, "token").decode("utf-8", "replace").strip()
    if policy is not None:
        opts.policy_text = policy_text(policy)
    try:
        docs = manifests.receiver_manifests(opts)
    except ValueError as exc:
        fail(exc)
    if not (opts.cert_pem and opts.key_pem and opts.token):
        note("no --tls-cert/--tls-key/--token-file: the Secret is empty; fill it before applying")
    if not opts.apiserver_cidrs:
        note("no --apiserver-cidr: the NetworkPolicy lets nothing in until you add the API servers' addresses")
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
