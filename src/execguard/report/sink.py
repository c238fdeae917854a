"""``hunt --output html``: the report as a sink. Alerts are folded as they come; the page is written at close."""

from __future__ import annotations

from typing import IO

from ..model import Alert
from ..sinks.alert_json import alert_dict
from . import Collector, build
from .render import plotly_js


class HtmlSink:
    def __init__(self, out: IO[bytes], inputs: list[str], title: str = "execguard hunt report") -> None:
        self.out = out
        self.inputs = inputs
        self.title = title
        self.collector = Collector()
        plotly_js()  # a missing plotly fails now (AssetError), not after the hunt

    def write(self, alert: Alert) -> None:
        self.collector.add(alert_dict(alert))

    def close(self) -> None:
        self.out.write(build(self.collector, self.title, self.inputs))
        self.out.flush()
