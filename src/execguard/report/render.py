"""The report as one self-contained HTML file: Jinja2 (autoescape on) for the page, Plotly inlined, data as JSON.

Nothing is fetched at view time: plotly.min.js (from the plotly package) and the page's own script and style are
inlined, and a Content-Security-Policy allows only those scripts (by hash) and no network at all, so even a
string that escaped its escaping could not run or call out.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from .. import __version__

_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
# in a <script> element only "</script" (and "<!--") end or change the parse; in JSON they can only occur inside
# strings, where \u003c is the same character. U+2028/2029 are escaped for older JavaScript parsers. Replaced in
# the UTF-8 bytes: bytes.replace runs at memory speed, str.translate over 50 MB takes seconds.
_JSON_ESCAPES = (
    (b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"), ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"),
)  # fmt: skip


def json_for_script(data: Any) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: no ``</``, no U+2028/2029."""
    raw = orjson.dumps(data)
    for char, escape in _JSON_ESCAPES:
        raw = raw.replace(char, escape)
    return raw.decode()


def _inline_js(text: str) -> str:
    # a JS library never needs a literal "</script" outside strings and regexes, where "<\/" means the same
    return _SCRIPT_END.sub(r"<\\/\1", text)


class AssetError(Exception):
    pass


@cache
def plotly_js() -> str:
    """plotly.js as the plotly package ships it; found without importing the Python package (slow, and not needed)."""
    spec = find_spec("plotly")
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in dirs:
        path = Path(d) / "package_data" / "plotly.min.js"
        if path.is_file():
            return _inline_js(path.read_text(encoding="utf-8"))
    raise AssetError("plotly.min.js not found: the plotly package is not installed (pip install plotly)")


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
    table = _inline_js(_asset("table.js"))
    csp = (
        f"default-src 'none'; script-src {_sha256(plotly)} {_sha256(app)} {_sha256(table)}; style-src 'unsafe-inline'; "
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
        table_js=Markup(table),
        data=Markup(json_for_script(blob)),
    )
    return page.encode("utf-8")
