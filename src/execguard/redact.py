"""Keep secrets out of every output: argv, URIs and bodies are redacted at the source.

Rules still see that a secret was there (``[REDACTED]`` keeps the key or flag beside it).
``text`` is idempotent: redacting redacted text changes nothing.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import quote_plus, unquote_plus

MASK = "[REDACTED]"

_SECRET_KEYS = (
    r"(?:access[_-]?|auth[_-]?|bearer[_-]?|refresh[_-]?|id[_-]?|api[_-]?|session[_-]?)?token"
    r"|pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|client[_-]?secret|api[_-]?key|apikey"
    r"|private[_-]?key|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|credentials?|authorization"
)
# an env or option name ending in a secret key: DB_PASSWORD, GITHUB_TOKEN, --db-password, x.api_key
_KEY = rf"(?:[A-Za-z0-9]+[_.-])*(?:{_SECRET_KEYS})"
# programs whose -pVALUE (no space) is a password
_P_TOOLS = r"mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb|mariadb-dump|mysqlsh|sshpass"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization headers
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{MASK}"),
    # JSON web tokens (service-account tokens) anywhere
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # well-known token formats
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\b(?:ghp|gho|ghs|ghu|ghr|github_pat|glpat|xox[abprs])[-_][A-Za-z0-9_-]{10,}"), MASK),
    # user:password@host in URLs
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"), rf"\1:{MASK}@"),
    # key=value, key: value, --key=value, "key":"value" (also URL-encoded '=' and ':')
    (
        re.compile(rf"(?i)((?:^|[\s&?;,{{(\"'=:-])-{{0,2}}{_KEY}\"?\s*(?:=|%3D|:|%3A)\s*\"?)(?!(?:bearer|basic)(?:\s|%20|\+))([^\s&;,\"']+)"),
        rf"\1{MASK}",
    ),
    # --password VALUE, -token VALUE inside a command line
    (re.compile(rf"(?i)((?:^|[\s\"'])--?{_KEY}\s+)(?!-)([^\s\"';&|]+)"), rf"\1{MASK}"),
    # mysql -pSECRET, sshpass -pSECRET, sshpass -p SECRET (only after such a program: find -perm stays)
    (re.compile(rf"(?i)(\b(?:{_P_TOOLS})\b[^;|&\n]*?\s-p)(?! )(?!\[REDACTED\])([^\s;|&]+)"), rf"\1{MASK}"),
    (re.compile(r"(?i)(\bsshpass\b[^;|&\n]*?\s-p\s+)(?!\[REDACTED\])([^\s;|&]+)"), rf"\1{MASK}"),
]
_FLAG_WITH_VALUE = re.compile(rf"(?i)^--?{_KEY}$")
_URI = re.compile(r"^(?:/|[a-z][a-z0-9+.-]*://)[^\s?#]*\?[^\s#]*$", re.IGNORECASE)
_ARGV_PARAMS = ("command",)
_MAX_PASSES = 6


def _patterns(value: str) -> str:
    for pattern, repl in _PATTERNS:
        value = pattern.sub(repl, value)
    return value


def _query(value: str) -> str:
    """A URI's query, parameter by parameter: every ``command=`` value together as one argv."""
    path, _, query = value.partition("?")
    pairs = [p.partition("=") for p in query.split("&")]
    decoded = [unquote_plus(v) for _, _, v in pairs]
    new = list(decoded)
    for name in _ARGV_PARAMS:
        idx = [i for i, (k, _, _) in enumerate(pairs) if k == name]
        for i, red in zip(idx, argv([decoded[i] for i in idx]), strict=True):
            new[i] = red
    for i, (k, _, _) in enumerate(pairs):
        if k in _ARGV_PARAMS:
            continue
        new[i] = MASK if _FLAG_WITH_VALUE.match("--" + unquote_plus(k)) else _patterns(decoded[i])
    out = []
    for (k, eq, raw), old, red in zip(pairs, decoded, new, strict=True):
        out.append(f"{k}{eq}{raw if red == old else quote_plus(red, safe='[]/:,')}")
    return f"{path}?{'&'.join(out)}"


# every pattern above needs one of these (case-folded) in the text: most values hold none, and a
# few substring tests are far cheaper than running each pattern
_TRIGGERS = (
    "bearer", "basic", "eyj", "akia", "asia", "ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat", "glpat", "xox",
    "@", "token", "pass", "pwd", "secret", "key", "credential", "authoriz", "mysql", "mariadb", "sshpass",
)


def _may_hold_secret(value: str) -> bool:
    low = value.lower()
    if "%" in low or "+" in low:
        low += " " + unquote_plus(low)
    return any(t in low for t in _TRIGGERS)


def text(value: str) -> str:
    if not _may_hold_secret(value):
        return value
    for _ in range(_MAX_PASSES):
        before = value
        if _URI.match(value):
            value = _query(value)
        value = _patterns(value)
        if value == before:
            break
    return value


def argv(args: list[str]) -> list[str]:
    """Redact each element; a secret flag's separate value (``--token X``) is masked whole."""
    out: list[str] = []
    mask_next = False
    tool = posixpath.basename(args[0]).lower() if args else ""
    p_tool = re.fullmatch(_P_TOOLS, tool) is not None
    for arg in args:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if _FLAG_WITH_VALUE.match(arg) or (arg == "-p" and tool == "sshpass"):
            mask_next = True
            out.append(arg)
            continue
        if p_tool and len(arg) > 2 and arg.startswith("-p"):
            out.append("-p" + MASK)
            continue
        out.append(text(arg))
    return out
