"""Keep secrets out of every output: argv, URIs and bodies are redacted at the source.

Rules still see that a secret was there (``[REDACTED]`` keeps the key or flag beside it).
"""

from __future__ import annotations

import re

MASK = "[REDACTED]"

_SECRET_KEYS = (
    r"(?:access[_-]?|auth[_-]?|bearer[_-]?|refresh[_-]?|id[_-]?|api[_-]?)?token"
    r"|pass(?:word|wd)?|pwd|secret(?:[_-]?key)?|client[_-]?secret|api[_-]?key|apikey"
    r"|private[_-]?key|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|credentials?"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization headers
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{MASK}"),
    # JSON web tokens (service-account tokens) anywhere
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # well-known token formats
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\b(?:ghp|gho|ghs|ghu|github_pat|glpat|xox[abprs])[-_][A-Za-z0-9_-]{10,}"), MASK),
    # user:password@host in URLs
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"), rf"\1:{MASK}@"),
    # key=value, key: value, --key=value, "key":"value" (also URL-encoded '=')
    (
        re.compile(rf"(?i)((?:^|[\s&?;,{{\"'-])(?:{_SECRET_KEYS})\"?\s*(?:=|%3D|:)\s*\"?)([^\s&;,\"']+)"),
        rf"\1{MASK}",
    ),
    # mysql -pSECRET, sshpass -p SECRET
    (re.compile(r"(?:(?<=\s)|^)-p(?=[^\s]{3,})(?!ort)[^\s]+"), f"-p{MASK}"),
]
_FLAG_WITH_VALUE = re.compile(rf"(?i)^--?(?:{_SECRET_KEYS})$")


def text(value: str) -> str:
    for pattern, repl in _PATTERNS:
        value = pattern.sub(repl, value)
    return value


def argv(args: list[str]) -> list[str]:
    """Redact each element; a secret flag's separate value (``--token X``) is masked whole."""
    out: list[str] = []
    mask_next = False
    for arg in args:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if _FLAG_WITH_VALUE.match(arg) or arg == "-p" and out and out[0].endswith("sshpass"):
            mask_next = True
            out.append(arg)
            continue
        out.append(text(arg))
    return out
