"""What `rules export` writes: every rule as a query or a skip with its reason, or the backend's own file format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .convert import Exported

# Our own formats; any other is the backend's (savedsearches, siem_rule_ndjson, ruler, ...).
OWN = ("text", "json")
EXTENSIONS = {"text": "txt", "json": "json", "savedsearches": "conf", "kibana_ndjson": "ndjson", "dsl_lucene": "json", "eqlapi": "json",
              "ruler": "yml", "grafana_alerting": "yml", "zircolite": "json"}


def text(target: str, results: list[Exported]) -> str:
    """One block per rule: a comment naming it, then its query, or `# skipped: reason`."""
    lines = [f"# execguard rules for {target}: {exported_count(results)} exported, {len(results) - exported_count(results)} skipped"]
    for r in results:
        lines.append("")
        lines.append(f"# {r.rule_id} ({r.level}): {_one_line(r.title)}")
        if r.skipped:
            lines.append(f"# skipped: {_one_line(r.skipped)}")
            continue
        lines += [f"# note: {_one_line(n)}" for n in r.notes]
        queries = r.query if isinstance(r.query, list) else [r.query]
        lines += [q if isinstance(q, str) else json.dumps(q, sort_keys=True) for q in queries]
    return "\n".join(lines) + "\n"


def as_json(target: str, results: list[Exported]) -> str:
    return json.dumps({"target": target, "rules": [r.as_dict() for r in results]}, indent=2, ensure_ascii=False) + "\n"


def backend_output(output: Any) -> str:
    """A backend format's output as file text: its string, its lines, or JSON (NDJSON for a list of objects)."""
    if isinstance(output, str):
        return output if output.endswith("\n") else output + "\n"
    if isinstance(output, list) and all(isinstance(o, str) for o in output):
        return "\n".join(output) + "\n"
    if isinstance(output, list):
        flat = [o for item in output for o in (item if isinstance(item, list) else [item])]
        return "".join(json.dumps(o, sort_keys=True) + "\n" for o in flat)
    return json.dumps(output, indent=2, sort_keys=True) + "\n"


def out_path(out: Path, target: str, fmt: str) -> Path:
    """--out as given, or inside an existing directory a file named for the target and format."""
    if out.is_dir():
        return out / f"execguard-{target}{'' if fmt in OWN else '-' + fmt}.{EXTENSIONS.get(fmt, 'txt')}"
    return out


def exported_count(results: list[Exported]) -> int:
    return sum(1 for r in results if not r.skipped)


def skip_lines(results: list[Exported]) -> list[str]:
    return [f"{r.rule_id}: skipped: {_one_line(r.skipped)}" for r in results if r.skipped]


def _one_line(s: str) -> str:
    return " ".join(s.split())
