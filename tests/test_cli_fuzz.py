"""Hypothesis drives every command with hostile paths and arguments: never a traceback, a documented exit code,
and a failure says so in one line."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from execguard.cli import app


def runner() -> CliRunner:
    try:  # click 8.1 (typer < 0.2x) mixes stderr into the output unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


EXIT_CODES = {0, 1, 2, 130}  # README "Exit codes"
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# argv can hold anything but NUL
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)
nasty = st.sampled_from(["", " ", "-", "--", "[", "a[", "]", "[/x]", "[bold red]x", "[link=file:///]x[/link]", "x\ny", "\x1b[31mred",
                         "\u202eevil", "ünï", "..", "/", "/dev/null", "/dev/full", "/proc/self/mem", "~", "$HOME", "%s%n"])
number = st.one_of(st.integers(-3, 3), st.sampled_from([-(2**63), 2**63, 10**30, 999999]).map(str), st.sampled_from(["1e3", "x", "", "-0"]))


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("fuzz")
    ev = {"kind": "Event", "auditID": "a", "verb": "create", "requestURI": "/api/v1/namespaces/n/pods/p/exec?command=sh",
          "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "n", "name": "p"}, "user": {"username": "u"},
          "responseStatus": {"code": 101}, "stageTimestamp": "2024-01-01T00:00:00Z"}  # fmt: skip
    (d / "[bold]log.jsonl").write_text(json.dumps(ev) + "\n")
    (d / "a[").mkdir()
    (d / "a[" / "x.yaml").write_text("kind: ClusterRole\nmetadata: 7\nrules: 5\n")
    (d / "empty").write_text("")
    os.mkfifo(d / "fifo")  # nobody reads it: an output there is refused, not waited on
    return {"log": str(d / "[bold]log.jsonl"), "dir": str(d / "a["), "missing": str(d / "missing" / "x"), "empty": str(d / "empty"),
            "fifo": str(d / "fifo"), "root": str(d)}  # fmt: skip


def paths(place: dict[str, str], inputs: bool) -> st.SearchStrategy[str]:
    named = ["log", "dir", "missing", "empty", "root"] + ([] if inputs else ["fifo"])  # reading a FIFO waits for its writer
    # an input "/" would read the whole machine; "/proc" (skipped, a kernel file system) stands for it
    named_nasty = nasty.map(lambda s: "/proc" if inputs and s == "/" else s)
    return st.one_of(st.sampled_from([place[k] for k in named]), nasty.map(lambda s: place["root"] + "/" + s), text, named_nasty)


def commands(place: dict[str, str]) -> st.SearchStrategy[list[str]]:
    inp, out = paths(place, True), paths(place, False)
    opt = lambda name, values: st.one_of(st.just([]), values.map(lambda v: [name, str(v)]))  # noqa: E731
    severity = nasty | st.sampled_from(["high", "HIGH", "informational"])
    hunt = st.tuples(st.just(["hunt"]), st.lists(inp, max_size=2), opt("--out", out), opt("-j", number), opt("--format", nasty | text),
                     opt("--min-severity", severity), opt("-o", st.sampled_from(["jsonl", "x"])), opt("--rules", inp),
                     st.just(["-q"]) | st.just([]))  # fmt: skip
    audit = st.tuples(st.just(["audit"]), opt("--from", inp), opt("--out", out), opt("--probe", nasty | text), opt("-o", nasty),
                      opt("--fail-on", nasty), opt("--tlscacert", inp))  # fmt: skip
    rules = st.tuples(st.just(["rules"]), opt("--rules", inp), opt("-o", st.sampled_from(["json", "yaml", "table", "xml", ""])))
    simulate = st.tuples(st.just(["simulate"]), st.just(["--out"]), st.lists(out, min_size=1, max_size=1),
                         opt("--events", st.integers(-2, 30)), opt("--seed", number),
                         opt("--scenario", nasty | st.sampled_from(["hildegard", "all"])), opt("--format", nasty))  # fmt: skip
    score = st.tuples(st.just(["score"]), st.lists(inp, max_size=1), opt("--labels", inp), opt("--markdown", out),
                      opt("--min-severity", nasty))
    emulate = st.tuples(st.just(["emulate"]), st.lists(nasty | st.just("docker"), max_size=1), opt("--labels", out),
                        st.just(["--host", "unix:///nonexistent/docker.sock"]), opt("--scenario", nasty))  # fmt: skip
    other = st.lists(nasty | text, max_size=3)
    # an input "--" ends the options: an output named after it (the FIFO) would be read as an input, and wait
    fifo_read = lambda args: "--" in args and place["fifo"] in args[args.index("--") :]  # noqa: E731
    commands = st.one_of(hunt, audit, rules, simulate, score, emulate).map(lambda parts: [a for p in parts for a in p])
    return commands.filter(lambda args: not fifo_read(args)) | other


def check(res: Any, args: list[str]) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
    assert "Traceback" not in res.output, args
    assert res.exit_code in EXIT_CODES, (args, res.exit_code, res.output)
    if res.exit_code == 2:
        errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
        assert errors, (args, res.stderr)
        assert "Usage:" not in res.stderr, (args, res.stderr)


def test_cli_fuzz(place: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))  # relative paths the fuzzer makes land here
    try:

        @FUZZ
        @given(st.data())
        def run(data: st.DataObject) -> None:
            args = data.draw(commands(place))
            check(runner().invoke(app, args), args)

        run()
    finally:
        os.chdir(cwd)
