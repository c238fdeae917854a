"""Syslog RFC 5424 over UDP (RFC 5426, one message per datagram) or TCP (RFC 6587 octet counting).

``<PRI>1 TIMESTAMP HOST execguard PID RULE_ID [execguard@32473 k="v" ...] BOM text``: the severity of
the alert sets the syslog severity (critical 2 ... info 6), the facility is local0 unless asked;
the structured data carries the fields a responder filters on. 32473 is the example enterprise
number of RFC 5612 (execguard has none of its own), so the SD-ID is valid but not registered.
Sent from a BackgroundSink thread: a collector that is down never blocks detection.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .background import BackgroundSink, DeliveryError, Warn
from .webhook import chat_text

FACILITIES = {
    "kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10, "local0": 16, "local1": 17, "local2": 18,
    "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
SD_ID = "execguard@32473"
UDP_MAX = 2048  # RFC 5426: receivers should take 2048 octets; longer text is cut
BOM = b"\xef\xbb\xbf"


def _name(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` characters, '-' when empty."""
    clean = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return clean or "-"


def _param(value: object) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(d: dict[str, Any]) -> str:
    actor = d.get("actor") or {}
    target = d.get("target") or {}
    source = d.get("source") or {}
    params = {
        "rule": d.get("rule_id"), "severity": d.get("severity"), "technique": d.get("technique"), "time": d.get("time"),
        "user": actor.get("user"), "impersonated": actor.get("impersonated_user"), "namespace": target.get("namespace"),
        "pod": target.get("pod"), "container": target.get("container"), "image": target.get("image"), "node": target.get("node"),
        "action": d.get("action"), "outcome": d.get("outcome"), "event_id": d.get("event_id"),
        "source": f"{source.get('file')}:{source.get('line')}" if source.get("line") else source.get("file"),
        "count": (d.get("throttled") or {}).get("count"),
    }
    return f"[{SD_ID} " + " ".join(f'{k}="{_param(v)}"' for k, v in params.items() if v not in (None, "")) + "]"


def message(d: dict[str, Any], facility: int, host: str, now: float | None = None, limit: int | None = None) -> bytes:
    """One RFC 5424 message; with ``limit`` the text is cut (at a character) so the whole fits, header and data intact."""
    pri = facility * 8 + SEVERITY.get(str(d.get("severity")), 6)
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    header = f"<{pri}>1 {stamp} {_name(host, 255)} execguard {os.getpid()} {_name(str(d.get('rule_id') or '-'), 32)} "
    head = header.encode() + structured_data(d).encode() + b" " + BOM
    text = chat_text(d).encode()
    if limit is not None and len(head) + len(text) > limit:
        text = text[: max(0, limit - len(head))].decode("utf-8", "ignore").encode()
    return head + text


class SyslogSink(BackgroundSink):
    def __init__(
        self, host: str, port: int = 514, *, transport: str = "udp", facility: str = "local0", timeout: float = 5.0,
        queue_size: int = 1000, spill: Path | None = None, drain: float = 5.0, backoff: float = 0.5, warn: Warn | None = None,
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError(f"syslog: transport {transport!r}: choose udp or tcp")
        if facility not in FACILITIES:
            raise ValueError(f"syslog: facility {facility!r}: choose one of {', '.join(FACILITIES)}")
        self.address = (host, port)
        self.transport = transport
        self.facility = FACILITIES[facility]
        self.timeout = timeout
        self.hostname = socket.gethostname()
        self._sock: socket.socket | None = None
        super().__init__(
            f"syslog+{transport}://{host}:{port}", self._send_one, queue_size=queue_size, spill=spill, drain=drain, backoff=backoff,
            warn=warn,
        )

    def _send_one(self, d: dict[str, Any]) -> None:
        data = message(d, self.facility, self.hostname, limit=UDP_MAX if self.transport == "udp" else None)
        try:
            if self.transport == "udp":
                if self._sock is None:
                    self._sock = socket.socket(_family(self.address[0]), socket.SOCK_DGRAM)
                self._sock.sendto(data, self.address)
                return
            if self._sock is None:
                self._sock = socket.create_connection(self.address, timeout=self.timeout)
            self._sock.sendall(str(len(data)).encode() + b" " + data)
        except OSError as exc:
            self._reset()
            raise DeliveryError(f"cannot send ({exc.strerror or exc})") from None

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        super().close()
        self._reset()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
