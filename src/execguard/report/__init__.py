"""``execguard report``: alerts (and audit findings) as one self-contained HTML investigation report.

``data.py`` folds alert dicts into a compact blob, ``inputs.py`` reads JSON lines, the alert store and audit
findings, ``render.py`` writes the page (Jinja2, Plotly inlined, assets/report.js and table.js draw it), ``sink.py`` is
``hunt --output html``. It reads only alert JSON (sinks/alert_json.py), never the engine: docs/report.md.
"""

from __future__ import annotations

from typing import Any

from ..model import display
from .data import Collector
from .render import render

__all__ = ["Collector", "build"]


def build(collector: Collector, title: str, inputs: list[str], findings: list[dict[str, Any]] | None = None) -> bytes:
    """The HTML page of everything ``collector`` took, with ``findings`` (execguard audit -o json) beside it."""
    title = display(title)
    meta = {"title": title, "inputs": inputs, "alerts": len(collector)}
    return render(collector.blob(meta, findings), title)
