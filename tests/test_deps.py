"""pyproject.toml's floors and ci/constraints-min.txt (what scripts/test's second pass installs) agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(>=|==)\s*([0-9][^\s;,]*)$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    out: dict[str, tuple[str, str]] = {}
    for req in reqs:
        m = REQ.match(req.strip())
        assert m, f"pyproject.toml: {req!r} is neither NAME>=FLOOR nor NAME==PIN"
        out[norm(m[1])] = (m[2], m[3])
    return out


def constraints() -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in enumerate((ROOT / "ci" / "constraints-min.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = REQ.match(line)
        assert m and m[2] == "==", f"ci/constraints-min.txt:{n}: {line!r} is not NAME==VERSION"
        assert norm(m[1]) not in out, f"ci/constraints-min.txt:{n}: {m[1]} pinned twice"
        out[norm(m[1])] = m[3]
    return out


def test_every_floor_is_pinned_in_the_constraints_file() -> None:
    floors = {name: ver for name, (op, ver) in pyproject_requirements().items() if op == ">="}
    pins = constraints()
    assert floors, "no floors found in pyproject.toml"
    assert pins == floors


def test_pinned_tools_are_not_in_the_constraints_file() -> None:
    # ruff and mypy are pinned in pyproject itself: the minimum pass gets the same versions
    pinned = {name for name, (op, _) in pyproject_requirements().items() if op == "=="}
    assert pinned == {"ruff", "mypy"}
    assert not pinned & constraints().keys()


def test_build_backend_accepts_an_spdx_license() -> None:
    # a license given as an SPDX string needs setuptools >= 77 (older ones reject or warn)
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(data["project"]["license"], str)
    m = re.match(r"setuptools>=(\d+)", data["build-system"]["requires"][0])
    assert m and int(m[1]) >= 77
