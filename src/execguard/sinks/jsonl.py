from __future__ import annotations

from typing import IO

import orjson

from ..model import Alert


class JsonlSink:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, alert: Alert) -> None:
        self.out.write(orjson.dumps(alert.to_dict()) + b"\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()
