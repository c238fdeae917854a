"""``execguard watch``'s listening options checked: addresses, TLS files, the bearer token (docs/watch.md)."""

from __future__ import annotations

import ssl
from pathlib import Path

from .util import fail


def read_token(token_file: Path | None) -> str | None:
    if token_file is None:
        return None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{token_file}: {getattr(exc, 'strerror', None) or exc}")
    if not token:
        fail(f"{token_file}: empty token file")
    return token


def check_listen(
    option: str, address: str, tls_cert: Path | None, tls_key: Path | None, client_ca: Path | None, no_tls: bool, insecure: bool
) -> tuple[str, int]:
    from ..live.webhook import is_loopback, listen_address

    try:
        host, port = listen_address(address)
    except ValueError as exc:
        fail(f"{option} {exc}")
    if no_tls:
        if tls_cert or tls_key or client_ca:
            fail("--no-tls with --tls-cert/--tls-key/--client-ca: choose one")
        if not is_loopback(host) and not insecure:
            fail(f"--no-tls on {host}, not a loopback address: {option} would cross the network in clear (add --insecure-listen)")
    elif tls_cert is None or tls_key is None:
        fail(f"{option} needs --tls-cert and --tls-key (or --no-tls on loopback)")
    return host, port


def tls_for_server(tls_cert: Path | None, tls_key: Path | None, client_ca: Path | None) -> ssl.SSLContext:
    from ..live.webhook import tls_context

    assert tls_cert is not None and tls_key is not None
    try:
        return tls_context(tls_cert, tls_key, client_ca)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        fail(f"TLS files ({tls_cert}, {tls_key}{', ' + str(client_ca) if client_ca else ''}): {getattr(exc, 'strerror', None) or exc}")
