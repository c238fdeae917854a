"""A Kubernetes request URI's query: parsed, its exec facts read and its secrets redacted, each kept per string.

Where exec is dense the same URIs and commands come back again and again (CI runners, probes), and one query
under many paths (the same command in each new pod): their parsing and redaction, pure functions of the
string, are kept for the most recent ones (bounded caches). Shared results are read-only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from .. import redact

TRUE = {"true", "1", "yes", "y"}
EXEC_OPTION_KEYS = ("command", "container", "stdin", "stdout", "stderr", "tty")


@lru_cache(maxsize=4096)
def split(uri: str) -> tuple[str, str]:
    """The decoded path and the raw query (ValueError from urlsplit, e.g. for an unclosed '[' host)."""
    parts = urlsplit(uri)
    return unquote(parts.path), parts.query


@lru_cache(maxsize=4096)
def parameters(query: str) -> list[tuple[str, str]]:
    """The parameters (read-only: shared between events with the same query)."""
    # parse_qsl turns '+' into a space and decodes %XX, as the API server does
    return parse_qsl(query, keep_blank_values=True)


class ExecQuery(NamedTuple):
    """What an exec, attach or port-forward query says."""

    container: str | None
    command: tuple[str, ...]  # redacted
    tty: bool | None
    stdin: bool | None
    has_options: bool  # any exec option at all: then the body's flags do not count


@lru_cache(maxsize=4096)
def exec_query(query: str) -> ExecQuery:
    params = parameters(query)
    return ExecQuery(
        first(params, "container"),
        redacted_argv(tuple(v for k, v in params if k == "command")),
        flag(params, "tty"),
        flag(params, "stdin"),
        any(k in EXEC_OPTION_KEYS for k, _ in params),
    )


@lru_cache(maxsize=4096)
def redacted_uri(uri: str) -> str:
    return redact.text(uri)


@lru_cache(maxsize=4096)
def redacted_argv(args: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(redact.argv(list(args)))


def flag(params: list[tuple[str, str]], *names: str) -> bool | None:
    """The last of the named flags, true or false; None when none is there."""
    values = [v for k, v in params if k in names]
    if not values:
        return None
    return values[-1].strip().lower() in TRUE


def first(params: list[tuple[str, str]], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None
