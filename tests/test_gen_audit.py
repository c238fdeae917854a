"""benchmarks/gen_audit.py draws its records from the simulator at the exec rate asked for, as valid k8s-audit lines."""

from __future__ import annotations

import importlib.util
import io
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from execguard.sources.reader import Reader

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gen_audit.py"
START = datetime(2024, 5, 14, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_audit", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_audit"] = mod
    spec.loader.exec_module(mod)
    mod.POOL = 1500  # a small simulator run is enough here
    return mod


def _generate(gen: ModuleType, tmp_path: Path, rate: float, seed: int = 1) -> tuple[bytes, Path]:
    buf = io.BytesIO()
    written, lines = gen.generate(buf, 2_000_000, seed, START, rate)
    data = buf.getvalue()
    assert written == len(data) <= 2_000_000 and lines == data.count(b"\n") and data.endswith(b"\n")
    path = tmp_path / f"gen-{rate}-{seed}.log"
    path.write_bytes(data)
    return data, path


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.4, 1.0])
def test_exec_rate_and_valid_records(gen: ModuleType, tmp_path: Path, rate: float) -> None:
    data, path = _generate(gen, tmp_path, rate)
    lines = data.splitlines()
    execs = sum(1 for line in lines if b'"subresource":"exec"' in line or b'"subresource":"attach"' in line)
    assert abs(execs / len(lines) - rate) <= 0.05, (execs, len(lines))
    reader = Reader()
    events = list(reader.read([str(path)]))
    assert reader.stats.bad == 0 and reader.stats.unknown == 0 and reader.stats.by_format.keys() == {"k8s-audit"}
    assert len(events) == len(lines)
    ids = [line.split(b'"auditID":"', 1)[1][:36] for line in lines]
    # every request gets its own auditID (the lines of one request share it), and time only rises
    assert len(set(ids)) > len(lines) // 3
    stamps = [line.split(b'"requestReceivedTimestamp":"', 1)[1][:27] for line in lines]
    assert stamps[0].startswith(b"2024-05-14T09:00:00.") and stamps[-1] >= stamps[0]


def test_same_seed_same_bytes(gen: ModuleType, tmp_path: Path) -> None:
    first, _ = _generate(gen, tmp_path, 0.4)
    again, _ = _generate(gen, tmp_path, 0.4)
    other, _ = _generate(gen, tmp_path, 0.4, seed=2)
    assert first == again != other
