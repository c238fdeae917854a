from __future__ import annotations

from typing import IO

from ..model import Alert
from .alert_json import alert_json


class JsonlSink:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    @staticmethod
    def render(alert: Alert) -> bytes:
        """The line ``write`` writes for ``alert`` (without its newline): made ahead, in the parent while workers read, when alerts
        are sorted before they go out (pipeline/stages.py), instead of after the last worker on one core."""
        return alert_json(alert)

    def write(self, alert: Alert) -> None:
        line = alert.rendered
        self.out.write((alert_json(alert) if line is None else line) + b"\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()
