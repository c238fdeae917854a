"""A generic HTTP webhook sink: one JSON POST per alert, with a Slack-compatible ``text`` field.

The body is ``{"text": "<one line for chat>", "alert": {<the alert as -o jsonl writes it>}}``;
Slack and Mattermost incoming webhooks show ``text``, other receivers read ``alert``. TLS
certificates are verified (``ca`` adds a CA bundle); each request has a timeout. A 2xx is a delivery;
408, 429, 5xx and network errors are retried (BackgroundSink); any other status is a refusal.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from .. import __version__
from ..model import display
from .background import BackgroundSink, DeliveryError, Warn

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def public_url(url: str) -> str:
    """scheme://host:port only: the path and query of a webhook URL are often its secret (Slack, Teams)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def chat_text(d: dict[str, Any]) -> str:
    """One line a person reads in a chat channel."""
    actor = (d.get("actor") or {}).get("user") or "(no identity)"
    t = d.get("target") or {}
    parts = (t.get("namespace"), t.get("pod") or t.get("node"), t.get("container"))
    where = "/".join(p for p in parts if p) or t.get("container_id") or "?"
    command = d.get("command_display") or "(no command recorded)"
    if len(command) > 300:
        command = command[:300] + "…"
    throttled = d.get("throttled")
    more = f" (+{throttled['count']} more in {throttled['window_s']:g}s)" if throttled else ""
    head = f"[{str(d.get('severity', '')).upper()}] {d.get('title')}: {actor} -> {where}"
    return display(f"{head}: {command}{more} ({d.get('rule_id')}, {d.get('time')})")  # log text: no control characters


class WebhookSink(BackgroundSink):
    def __init__(
        self, url: str, *, timeout: float = 5.0, ca: Path | None = None, headers: dict[str, str] | None = None,
        queue_size: int = 1000, spill: Path | None = None, drain: float = 5.0, backoff: float = 0.5, warn: Warn | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook {public_url(url)}: give an http:// or https:// URL with a host")
        self.url = url
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "User-Agent": f"execguard/{__version__}", **(headers or {})}
        self.context = ssl.create_default_context(cafile=str(ca) if ca else None) if parts.scheme == "https" else None
        super().__init__(
            f"webhook {public_url(url)}", self._post, queue_size=queue_size, spill=spill, drain=drain, backoff=backoff, warn=warn
        )

    def _post(self, d: dict[str, Any]) -> None:
        body = orjson.dumps({"text": chat_text(d), "alert": d})
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
                response.read(65536)
        except urllib.error.HTTPError as exc:
            after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            raise DeliveryError(f"HTTP {exc.code}", retry=exc.code in RETRY_STATUS, after=after) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DeliveryError(f"cannot reach it ({reason})") from None


def _retry_after(value: str | None, cap: float = 60.0) -> float | None:
    try:
        return min(cap, max(0.0, float(value))) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
