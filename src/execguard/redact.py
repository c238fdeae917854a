"""Keep secrets out of every output: argv, URIs and bodies are redacted at the source.

Rules still see that a secret was there (``[REDACTED]`` keeps the key or flag beside it).
``text`` and ``argv`` are idempotent: redacting redacted text changes nothing. The list of what is
masked is in docs/fields.md ("Redaction").
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote_plus, unquote_plus

from . import blobs

MASK = "[REDACTED]"

_SECRET_KEYS = (
    r"(?:access[_-]?|auth[_-]?|bearer[_-]?|refresh[_-]?|id[_-]?|api[_-]?|session[_-]?)?token"
    r"|pass(?:word|wd|phrase)?|secret(?:[_-]?key)?|client[_-]?secret|api[_-]?key|apikey"
    r"|private[_-]?key|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|credentials?|authorization"
)
# an env or option name ending in a secret key: DB_PASSWORD, GITHUB_TOKEN, --db-password, x.api_key;
# 'pwd' only with a prefix (MYSQL_PWD), since a bare PWD=/srv is the working directory
_KEY = rf"(?:(?:[A-Za-z0-9]+[_.-])*(?:{_SECRET_KEYS})|(?:[A-Za-z0-9]+[_.-])+pwd)"
# programs whose -pVALUE (no space) is a password
_P_TOOLS = r"mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb|mariadb-dump|mysqlsh|sshpass"
# the rest of one shell command after a program name (a pattern about its flags stops at ; | & and newlines)
_REST = r"\b[^;|&\n]*?\s"
# a value not already masked, optionally quoted
_FRESH = r"['\"]*(?![^\s'\"]*\[REDACTED\])"
_WORD = r"[^\s'\";|&]+"
# curl's short options that take no value, so may come before -u or -b in one bundle (-fsSLu)
_CURL_BOOL = r"[0-9aBfgGiIjJklLnNOqRsSvZ]*?"
_COOKIES = r"[^\s'\";]+(?:;\s*[^\s'\";]+)*"

# key=value, key: value, --key=value, "key":"value" (also URL-encoded '=' and ':')
_KEY_VALUE_SOURCE = (
    rf"(?i)(?:^|[\s&?;,{{(\"'=:-])-{{0,2}}{_KEY}\"?\s*(?:=|%3D|:|%3A)\s*['\"]*(?!(?:bearer|basic)(?:\s|%20|\+))(?P<s>[^\s&;,\"']+)"
)
_KEY_WORDS = ("token", "pass", "pwd", "secret", "key", "credential", "authoriz")
# the look-behind after the literal keeps the regex engine's fast search for 's.'
_VAULT_LEGACY_SOURCE = r"s\.(?<![\w.-]s\.)(?P<s>[A-Za-z0-9]{24})(?![\w.-])"
_VAULT_LEGACY = re.compile(_VAULT_LEGACY_SOURCE)
# (pattern, literals one of which the case-folded text must hold for it to run); group 's' is masked. Each is
# compiled when a literal of it is first seen (``_pattern``): most never run, and compiling them all cost every
# start-up ~10 ms
_PATTERNS: list[tuple[str, tuple[str, ...]]] = [
    # Authorization headers
    (r"(?i)\b(?:bearer|basic)(?:\s+|%20|\+)(?!\[REDACTED\])(?P<s>[A-Za-z0-9._~+/=-]{6,})", ("bearer", "basic")),
    # JSON web tokens (service-account tokens) anywhere
    (r"(?P<s>eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)", ("eyj",)),
    # well-known token formats
    (r"\b(?P<s>(?:AKIA|ASIA)[0-9A-Z]{16})\b", ("akia", "asia")),
    (r"\b(?P<s>(?:ghp|gho|ghs|ghu|ghr|github_pat|glpat|xox[abprs])[-_][A-Za-z0-9_-]{10,})", ("gh", "glpat", "xox")),
    # HashiCorp Vault tokens: hvs./hvb./hvr. and the legacy s. service token (24 characters)
    (r"hv[sbr]\.(?<![\w.-]hv[sbr]\.)(?P<s>[A-Za-z0-9_-]{20,})", ("hvs.", "hvb.", "hvr.")),
    (_VAULT_LEGACY_SOURCE, ("s.",)),
    # PEM private keys: the body up to END (or the closing quote, or the end when cut off)
    (r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?!\[REDACTED\])(?P<s>[^'\"]+?)(?=-----END|['\"]|\Z)", ("private key",)),
    # user:password@host in URLs
    (r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<s>[^@\s/]+)@", ("@",)),
    (_KEY_VALUE_SOURCE, _KEY_WORDS),
    # environment variables whose name runs the key into a prefix: PGPASSWORD=, SSHPASS=, REDISCLI_AUTH=
    (
        rf"(?<![\w-])(?:[A-Z0-9_]*(?:PASSWORD|PASSWD|TOKEN|SECRET)|PGPASS|SSHPASS|REDISCLI_AUTH)={_FRESH}(?P<s>{_WORD})",
        ("password", "passwd", "token", "secret", "pgpass", "sshpass", "rediscli_auth"),
    ),
    # --password VALUE, -token VALUE inside a command line
    (rf"(?i)(?:^|[\s\"'])--?{_KEY}\s+['\"]*(?!-)(?P<s>[^\s\"';&|]+)", _KEY_WORDS),
    # mysql -pSECRET, sshpass -pSECRET, sshpass -p SECRET (only after such a program: find -perm stays)
    (rf"(?i)\b(?:{_P_TOOLS}){_REST}-p(?! )(?!\[REDACTED\])(?P<s>{_WORD})", ("mysql", "mariadb", "sshpass")),
    (rf"(?i)\bsshpass{_REST}-p\s+(?!\[REDACTED\])(?P<s>{_WORD})", ("sshpass",)),
    # curl -u/--user user:pass and -U/--proxy-user (bundled -su too): the password, or all of it without ':'
    (
        rf"\b(?i:curl){_REST}(?:-{_CURL_BOOL}[uU]\s*|--(?:proxy-)?user(?:\s+|=)){_FRESH}(?:[^\s:'\"]*:)?(?P<s>{_WORD})",
        ("curl",),
    ),
    # curl -b/--cookie NAME=VALUE; ... (a file name there is masked too: harmless)
    (rf"\b(?i:curl){_REST}(?:-{_CURL_BOOL}b\s*|--cookie(?:\s+|=)){_FRESH}(?P<s>{_COOKIES})", ("curl",)),
    # Cookie: and Set-Cookie: headers, every NAME=VALUE pair
    (rf"(?i)\b(?:set-)?cookie\"?\s*:\s*{_FRESH}(?P<s>{_COOKIES})", ("cookie",)),
    # redis-cli -a PASSWORD, and AUTH [user] password typed as its command
    (rf"\b(?i:redis-cli){_REST}-a\s*{_FRESH}(?P<s>{_WORD})", ("redis-cli",)),
    (rf"\b(?i:redis-cli){_REST}(?i:auth)\s+(?!\[REDACTED\])(?P<s>[^;|&\n'\"]*[^;|&\n'\"\s])", ("redis-cli",)),
    # kubectl create secret ... --from-literal=NAME=VALUE: every value of a secret is one
    (rf"\b(?i:kubectl){_REST}--from-literal(?:=|\s+)['\"]*[^=\s'\"]+={_FRESH}(?P<s>{_WORD})", ("from-literal",)),
    # docker login -p PASSWORD (and the registry clients that copy its flags); --password is above
    (rf"\b(?i:docker|podman|nerdctl|buildah|skopeo|helm|oras){_REST}(?i:login){_REST}-p\s*{_FRESH}(?P<s>{_WORD})", ("login",)),
]
_KEY_VALUE = next(i for i, (p, _) in enumerate(_PATTERNS) if p == _KEY_VALUE_SOURCE)
_COMPILED: list[re.Pattern[str] | None] = [None] * len(_PATTERNS)
# every literal any pattern needs: a substring test each is far cheaper than running the patterns
_LITERALS = tuple(sorted({t for _, triggers in _PATTERNS for t in triggers}))
# the literals holding no shorter one ('pass' stands for 'password', 'sshpass' ...): a quick first look
_GATE = tuple(t for t in _LITERALS if not any(o != t and o in t for o in _LITERALS))
_NEEDING = {lit: tuple(i for i, (_, triggers) in enumerate(_PATTERNS) if lit in triggers) for lit in _LITERALS}
_FLAG_WITH_VALUE = re.compile(rf"(?i)^--?{_KEY}$")
_URI = re.compile(r"^(?:/|[a-z][a-z0-9+.-]*://)[^\s?#]*\?[^\s#]*$", re.IGNORECASE)
_URI_LIKE = re.compile(r"(?:/|[a-z][a-z0-9+.-]*://)\S*\Z", re.IGNORECASE)
_ARGV_PARAMS = ("command",)
_MAX_PASSES = 6
_MAX_BLOB_DEPTH = 2


def _folded(value: str) -> str:
    low = value.lower()
    if "%" in low or "+" in low:
        # a %XX escape never spans a '?' and UTF-8 decoding starts afresh at it, so a URI's query, which
        # comes back under many paths, is decoded once
        path, q, query = low.partition("?")
        low += " " + (unquote_plus(path) + q + _unquoted(query) if q else unquote_plus(low))
    return low


@lru_cache(maxsize=2048)
def _unquoted(query: str) -> str:
    return unquote_plus(query)


def _present(value: str) -> frozenset[str]:
    """The pattern literals in ``value``, case-folded (URL-encoded text is looked at decoded too)."""
    if value[:1] == "/":
        path, q, query = value.partition("?")
        if q:
            # A request URI: no literal (nor a Vault token) holds a '?', and the one with a space, 'private key',
            # cannot run from the query into the decoded path (it starts with '/'): so the path and the query are
            # looked at apart, and the query, which comes back under many paths (the same command in each new
            # pod), once.
            found, vault = _present_query(query)
            found = found | _literals(path)
            if "s." in found and not (vault or _VAULT_LEGACY.search(path)):
                found = found - {"s."}
            return found
    low = _folded(value)
    for t in _GATE:
        if t in low:
            break
    else:
        return frozenset()
    found = frozenset([t for t in _LITERALS if t in low])
    # 's.' is in every k8s.io path: it counts only when a legacy Vault token is really there
    if "s." in found and not _VAULT_LEGACY.search(value):
        found = found - {"s."}
    return found


def _literals(part: str) -> frozenset[str]:
    """The pattern literals in one side of a URI's '?', case-folded, and in its URL decoding."""
    low = part.lower()
    found = _found(low)
    if "%" in low or "+" in low:
        found |= _found(unquote_plus(low))  # apart: one literal, 'private key', holds a space
    return found


def _found(low: str) -> frozenset[str]:
    for t in _GATE:
        if t in low:
            return frozenset([t for t in _LITERALS if t in low])
    return frozenset()


@lru_cache(maxsize=2048)
def _present_query(query: str) -> tuple[frozenset[str], bool]:
    return _literals(query), _VAULT_LEGACY.search(query) is not None


def _spans(value: str, present: frozenset[str] | None = None) -> list[tuple[int, int]]:
    """Where the secrets are: start and end of every pattern's 's' group, merged."""
    present = _present(value) if present is None else present
    found: list[tuple[int, int]] = []
    for i in sorted({i for lit in present for i in _NEEDING[lit]}):
        if i == _KEY_VALUE and "=" not in value and ":" not in value and "%" not in value:
            continue  # an API path naming secrets or tokens, no value in sight
        found.extend(m.span("s") for m in _pattern(i).finditer(value))
    found.sort()
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _pattern(i: int) -> re.Pattern[str]:
    got = _COMPILED[i]
    if got is None:
        got = _COMPILED[i] = re.compile(_PATTERNS[i][0])
    return got


def _masked(value: str, spans: list[tuple[int, int]], offset: int = 0) -> str:
    """``value`` (found at ``offset`` of the text the spans index) with every span over it masked."""
    out, pos = [], 0
    for start, end in spans:
        start, end = max(start - offset, 0), min(end - offset, len(value))
        if start >= end:
            continue
        out.append(value[pos:start] + MASK)
        pos = end
    return "".join(out) + value[pos:] if out else value


def _query(value: str, depth: int) -> str:
    """A URI's query, parameter by parameter: every ``command=`` value together as one argv."""
    path, _, query = value.partition("?")
    return f"{path}?{_params(query, depth)}"


# Where exec is dense one query comes back under many paths (a CI runner's script, each job a new pod):
# its redaction, a pure function of the query, is kept for the most recent ones.
@lru_cache(maxsize=2048)
def _params(query: str, depth: int) -> str:
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
        new[i] = MASK if _FLAG_WITH_VALUE.match("--" + unquote_plus(k)) else _text(decoded[i], depth)
    out = []
    for (k, eq, raw), old, red in zip(pairs, decoded, new, strict=True):
        out.append(f"{k}{eq}{raw if red == old else quote_plus(red, safe='[]/:,')}")
    return "&".join(out)


def _blobs(value: str, depth: int) -> str:
    """A base64 blob whose text holds a secret is re-encoded from the redacted text and marked.

    The blob stays decodable, so rules still match its payload (decode.py); the mark after it tells
    the reader something inside was masked.
    """
    out, pos = [], 0
    for m in blobs.BLOB.finditer(value):
        blob = m.group(0)
        if blobs.is_word(blob):
            continue
        plain = blobs.decode(blob)
        if plain is None:
            continue
        red = _text(plain, depth + 1)
        if red != plain:
            out.append(value[pos : m.start()] + blobs.encode(red, like=blob) + MASK)
            pos = m.end()
    return "".join(out) + value[pos:] if out else value


def _may_hold_blob(value: str) -> bool:
    if len(value) < 16:
        return False
    # a URI's path is never a payload (and every request has one): only its query is looked at
    if _URI_LIKE.match(value):
        return _query_holds_blob(value.partition("?")[2])
    return _holds_blob(value)


@lru_cache(maxsize=2048)
def _query_holds_blob(query: str) -> bool:
    return _holds_blob(unquote_plus(query))


def _holds_blob(value: str) -> bool:
    return any(not blobs.is_word(m.group()) and blobs.decode(m.group()) for m in blobs.BLOB.finditer(value))


def _text(value: str, depth: int) -> str:
    present = _present(value)
    blob = depth < _MAX_BLOB_DEPTH and _may_hold_blob(value)
    if not (present or blob):
        return value
    for _ in range(_MAX_PASSES):
        before = value
        uri = _URI.match(value) is not None
        if uri:
            # parameters one by one, then what is before the query (user:password@ in a URL)
            path, _, query = _query(value, depth).partition("?")
            value = f"{_masked(path, _spans(path))}?{query}"
        elif present:
            value = _masked(value, _spans(value, present))
        if blob and not uri:
            value = _blobs(value, depth)
        if value == before:
            break
    return value


def text(value: str) -> str:
    return _text(value, 0)


def argv(args: list[str]) -> list[str]:
    """Redact each element, then the argv as one line, so a secret split over elements is masked too.

    A secret flag's separate value (``--token X``) is masked whole; ``curl -u bob:pw`` keeps the user.
    """
    out: list[str] = []
    mask_next = False
    tool = args[0].rsplit("/", 1)[-1].lower() if args else ""
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
    # tool-anchored patterns find one flag per pass (the next pass skips what is masked)
    for _ in range(_MAX_PASSES):
        line = " ".join(out)
        present = _present(line) if len(out) > 1 else frozenset()
        if not present:
            break
        spans = _spans(line, present)
        new, offset = [], 0
        for arg in out:
            new.append(_masked(arg, spans, offset))
            offset += len(arg) + 1
        if new == out:
            break
        out = new
    return out
