from __future__ import annotations

from typing import IO

from ..model import Alert
from .alert_json import alert_json


class JsonlSink:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, alert: Alert) -> None:
        self.out.write(alert_json(alert) + b"\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()
