"""The report as one self-contained HTML file: Jinja2 (autoescape on) for the page, Plotly inlined, data as JSON.

Nothing is fetched at view time: plotly.min.js (from the plotly package) and the page's own script and style are
inlined, and a Content-Security-Policy allows only those two scripts (by hash) and no network at all, so even a
string that escaped its escaping could not run or call out.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from .. import __version__

_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
# in a <script> element only "</script" (and "<!--") end or change the parse; in JSON they can only occur inside
# strings, where \u003c is the same character. U+2028/2029 are escaped for older JavaScript parsers.
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def json_for_script(data: Any) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: no ``</``, no U+2028/2029."""
    return orjson.dumps(data).decode().translate(_JSON_ESCAPES)


def _inline_js(text: str) -> str:
    # a JS library never needs a literal "</script" outside strings and regexes, where "<\/" means the same
    return _SCRIPT_END.sub(r"<\\/\1", text)


@cache
def plotly_js() -> str:
    from importlib.resources import files

    return _inline_js((files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8"))


@cache
def _asset(name: str) -> str:
    return (resources.files("execguard.report") / "assets" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("execguard.report", "assets"), autoescape=select_autoescape(["html", "j2"], default=True)
    )


def render(blob: dict[str, Any], title: str) -> bytes:
    """The whole HTML page for a data blob built by ``data.Collector.blob``."""
    plotly = plotly_js()
    app = _inline_js(_asset("report.js"))
    csp = (
        f"default-src 'none'; script-src {_sha256(plotly)} {_sha256(app)}; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'"
    )
    page = _env().get_template("report.html.j2").render(
        title=title,
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        csp=csp,
        css=Markup(_asset("report.css")),  # our own file, not log content
        plotly_js=Markup(plotly),
        app_js=Markup(app),
        data=Markup(json_for_script(blob)),
    )
    return page.encode("utf-8")
