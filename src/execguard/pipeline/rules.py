"""The rules a run uses, built-in and --rules files, compiled once and kept in a cache between runs.

Compiling the built-in pack (YAML, pySigma's parse, our matchers, regexes) is most of a short hunt's
start-up. The compiled rules are pickled under ``$XDG_CACHE_HOME/execguard`` (``~/.cache``), keyed by
execguard's version, Python's version, and the path, mtime and size of every rule file and of every
module whose code the compiled matchers run: any change there is a different key, so a stale entry is
never read. The matchers are closures, which pickle cannot store, so their code is stored with
``marshal`` (which is why the Python version is in the key) and their globals are the module they were
defined in, imported on load. A compiled regex's method in a matcher is stored as its pattern and flags and
compiled on the first call (``_LazyMethod``): a short hunt runs few of the rules' regexes, and compiling all
of them was most of the load. A cache that cannot be read, written or trusted (not ours, writable by
others) is ignored: the rules are compiled as without one.
"""

from __future__ import annotations

import contextlib
import io
import marshal
import os
import pickle
import re
import sys
import tempfile
import time
import types
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from typing import Any

from .. import __version__
from ..engine.rule import Rule, RuleError

try:  # hashlib's own blake2b without hashlib, which loads OpenSSL first (~4 ms of every start-up)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - another Python implementation
    from hashlib import blake2b

# the installed package's directory (resolved: the same rule set from another path is the same key), for its rules
# and, in the cache's key, its code; importlib.resources.files would say the same after importing zipfile (~3 ms)
PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
FORMAT = 2  # bump when what is stored changes shape
STALE = 30 * 86400  # seconds after which other rule sets' entries are removed


def load(extra: Iterable[str] = (), builtin: bool = True, cache: bool = True) -> list[Rule]:
    extra = list(extra)
    key = _key(extra, builtin) if cache else None
    path = _cache_dir() / f"rules-{key}.pickle" if key else None
    if path is not None:
        rules = _read(path)
        if rules is not None:
            return rules
    from ..engine.load import load_rules  # pySigma: only when the cache cannot answer

    rules = load_rules(extra, builtin=builtin)  # raises RuleError: never cached
    if path is not None:
        _write(path, rules)
    return rules


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "execguard"


def _rule_files(extra: list[str], builtin: bool) -> list[str] | None:
    """Every rule file, resolved (the same rule set from another directory is the same key)."""
    files: list[str] = []
    if builtin:
        root = os.path.join(PACKAGE, "rules")
        if not os.path.isdir(root):  # pragma: no cover - a zipped install: no mtimes to key on
            return None
        files += _under(root, (".yml", ".yaml"))
    for d in extra:
        p = Path(d)
        if p.is_file():
            files.append(str(p.resolve()))
        elif p.is_dir():
            files += [str(f.resolve()) for f in _yaml_under(p)]
        else:
            return None  # load_rules names the problem
    return files


def _yaml_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _under(root: str, suffixes: tuple[str, ...]) -> list[str]:
    """The files under a directory of the installed package: os.walk below one resolved root, where rglob and a
    resolve() per file took ~25 ms of a short hunt for execguard's ~240 files."""
    found: list[str] = []
    for d, _, names in os.walk(root):
        found += [os.path.join(d, n) for n in names if n.endswith(suffixes)]
    return sorted(found)


def _key(extra: list[str], builtin: bool) -> str | None:
    files = _rule_files(extra, builtin)
    if files is None:
        return None
    # execguard's own code: the stored matchers' code comes from it
    code = _under(PACKAGE, (".py",))
    h = blake2b(f"{FORMAT}\0{__version__}\0{sys.version}\0{builtin}\0{extra!r}".encode())
    try:
        for p in [*files, *code]:
            st = os.stat(p)
            h.update(f"\0{p}\0{st.st_mtime_ns}\0{st.st_size}".encode())
    except OSError:
        return None
    return h.hexdigest()[:32]


def _read(path: Path) -> list[Rule] | None:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:  # only a file we wrote and no one else can change
                return None
            data = f.read()
        rules = pickle.loads(data)
    except Exception:  # missing, cut short, from another build: compile instead
        return None
    if not isinstance(rules, list) or not all(isinstance(r, Rule) for r in rules):
        return None
    return rules


def _write(path: Path, rules: list[Rule]) -> None:
    buf = io.BytesIO()
    try:
        _Pickler(buf).dump(rules)
    except (pickle.PicklingError, TypeError, ValueError, AttributeError, RecursionError):
        return  # something in a compiled rule cannot be stored: compile every time
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in path.parent.glob("rules-*.pickle"):  # one entry per rule set is enough; old keys are dead
            if old != path and old.stat().st_mtime < time.time() - STALE:
                old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rules-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except OSError:
            os.unlink(tmp)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        # nested functions and lambdas (the matchers); module-level functions pickle by name as usual
        if isinstance(obj, types.FunctionType) and ("<locals>" in obj.__qualname__ or obj.__name__ == "<lambda>"):
            cells = tuple(c.cell_contents for c in obj.__closure__ or ())  # an empty cell raises ValueError
            return _function, (marshal.dumps(obj.__code__), obj.__module__, obj.__defaults__, obj.__kwdefaults__, cells)
        # a compiled regex's bound method (``rx.search``, what the matchers keep): its source, compiled when first called
        if isinstance(obj, types.BuiltinMethodType) and isinstance(obj.__self__, re.Pattern):
            return _LazyMethod, (obj.__self__.pattern, obj.__self__.flags, obj.__name__)
        if isinstance(obj, _LazyMethod):  # loaded from the cache and not called yet
            return _LazyMethod, (obj.pattern, obj.flags, obj.name)
        return NotImplemented


def _function(code: bytes, module: str, defaults: Any, kwdefaults: Any, cells: tuple[Any, ...]) -> types.FunctionType:
    made = tuple(types.CellType(c) for c in cells)
    for cell in made:
        if isinstance(cell.cell_contents, _LazyMethod):
            cell.cell_contents.cells.append(cell)
    fn = types.FunctionType(marshal.loads(code), vars(import_module(module)), None, defaults, made or None)
    fn.__kwdefaults__ = kwdefaults
    return fn


class _LazyMethod:
    """``re.compile(pattern, flags).<name>``, compiled on the first call.

    The closure cells that hold it (registered by ``_function``) are then pointed at the compiled method
    itself, so a matcher's later calls cost what they cost before: no wrapper on the hot path. The same
    pattern and flags are compiled as unpickling a re.Pattern does (``re._compile``), so matching is the same.
    """

    __slots__ = ("cells", "flags", "method", "name", "pattern")

    def __init__(self, pattern: str | bytes, flags: int, name: str) -> None:
        self.pattern, self.flags, self.name = pattern, flags, name
        self.cells: list[types.CellType] = []
        self.method: Any = None

    def __call__(self, *args: Any) -> Any:
        if self.method is None:
            self.method = getattr(re.compile(self.pattern, self.flags), self.name)
            for cell in self.cells:
                cell.cell_contents = self.method
            self.cells.clear()
        return self.method(*args)


__all__ = ["RuleError", "load"]
