"""cli/coerce.py: hunt's parameters coerced without pydantic give what typer's own coercion gives, values and errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.models import CommandInfo

from execguard.cli import Command
from execguard.cli.coerce import cheapen
from execguard.cli.hunt import hunt

try:
    from typer._click.exceptions import ClickException
except ImportError:  # older typer runs on click itself
    from click.exceptions import ClickException  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]


def command(cheap: bool) -> Any:
    cmd = typer.main.get_command_from_info(
        CommandInfo(name="hunt", callback=hunt, cls=Command), pretty_exceptions_short=True, rich_markup_mode=None
    )
    if cheap:
        cheapen(cmd)
    return cmd


def parse(cmd: Any, args: list[str]) -> tuple[str, Any]:
    """The parameters as the command function would get them, or the usage error typer raises."""
    try:
        ctx = cmd.make_context("hunt", list(args))
    except ClickException as exc:
        return "error", (type(exc).__name__, exc.format_message(), exc.exit_code)
    return "ok", {k: (type(v), repr(v)) for k, v in ctx.params.items()}  # repr: nan == nan


def argument_sets(tmp_path: Path) -> list[list[str]]:
    unreadable = tmp_path / "locked"
    unreadable.write_text("")
    unreadable.chmod(0)
    return [
        [],
        ["f1", "f2", "-o", "jsonl", "--jobs", "3", "--limit", "0", "--top", "12", "--join-window", "2.5", "--join-skew", "0"],
        ["--rules", "a", "--rules", "b", "--namespace", "kube-*", "--pod", "web", "--user", "alice", "--rule", "k8s-*"],
        ["--sink", "file:/tmp/x", "--sink", "webhook:http://h", "--min-severity", "HIGH", "--fail-on", "informational"],
        ["--format", "k8s-audit", "--sort", "severity", "--since", "2h", "--until", "2026-01-01T00:00:00Z", "-q"],
        ["--out", "x.json", "--store", str(tmp_path / "alerts.db"), "--policy", str(tmp_path), "--no-join", "--samples"],
        ["--out", str(unreadable)],  # typer checks that an existing path is readable (root may read it anyway)
        ["--out", "", "--policy", "~/p.yml"],
        ["-o", "table"], ["-o", "html"], ["-o", "JSONL"], ["-o", "xml"], ["-o", ""],
        ["--jobs", "-1"], ["--jobs", "x"], ["--jobs", "007"], ["--jobs", " 5"], ["--jobs", "1_0"], ["--jobs", "+4"],
        ["--jobs", "99999999999999999999999"], ["--jobs", "2.0"], ["--jobs", ""], ["--limit", "-0"],
        ["--join-window", "1e1"], ["--join-window", "-1"], ["--join-window", "-0.5"], ["--join-window", "inf"],
        ["--join-window", "nan"], ["--join-window", ".5"], ["--join-window", "5."], ["--join-skew", "0.1000000000000000055511"],
        ["--join-skew", "12345678901234567890.5"], ["--join-skew", "x"],
        ["--format", "nope"], ["--sort", "nope"], ["--min-severity", "nope"], ["--since", "yesterday"],
        ["--no-such-option"], ["--jobs"],
    ]


def test_the_cheap_coercion_gives_what_typers_gives(tmp_path: Path) -> None:
    cheap, plain = command(cheap=True), command(cheap=False)
    for args in argument_sets(tmp_path):
        assert parse(cheap, args) == parse(plain, args), args
    assert parse(cheap, ["-o", "jsonl", "--jobs", "3"])[1]["jobs"] == (int, "3")
    assert parse(cheap, ["--jobs", "x"])[0] == "error"


def test_a_command_line_is_parsed_without_pydantic(tmp_path: Path) -> None:
    # typer >= 0.2x would import pydantic and build an adapter per parameter; older typer never imports it
    code = (
        "import sys\n"
        "from execguard.cli import app\n"
        "import typer.main\n"
        "group = typer.main.get_command(app)\n"
        "ctx = group.make_context('execguard', ['hunt'])\n"
        "cmd = group.get_command(ctx, 'hunt')\n"
        "sub = cmd.make_context('hunt', ['-q', '-o', 'jsonl', '--jobs', '1', '--out', 'x', '--rules', 'r', 'f'], parent=ctx)\n"
        "assert sub.params['jobs'] == 1 and list(sub.params['rules']) == ['r'], sub.params\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("args", [["hunt", "--help"], ["--help"]])
def test_help_is_parsed_without_pydantic(args: list[str], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from execguard.cli import app\n"
        f"try:\n    app({args!r}, prog_name='execguard')\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print('pydantic' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "--help" in out.stdout and out.stderr.strip() == "False"
