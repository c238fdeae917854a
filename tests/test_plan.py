"""Workers are planned by estimated work: a dense (exec-heavy) file is cut into smaller ranges than a sparse one."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.pipeline import parallel, units
from execguard.pipeline.prefilter import literals_for
from execguard.sim.simulate import write as simulate
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader


def _reader() -> tuple[Reader, Engine]:
    engine = Engine(load_rules([], builtin=True))
    return Reader(literals=literals_for(engine.actions())), engine


def _lines(tmp: Path) -> list[bytes]:
    simulate(tmp / "sim", fmt="k8s-audit", events=1500, seed=5)
    return (tmp / "sim" / "k8s-audit.jsonl").read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("plan")
    reader, _ = _reader()
    lines = _lines(tmp)
    lits = reader.literals or []
    hits = [ln for ln in lines if any(lit in ln for lit in lits)]
    quiet = [ln for ln in lines if not any(lit in ln for lit in lits)]
    assert hits and quiet
    dense, sparse = tmp / "dense.log", tmp / "sparse.log"
    size = 3 << 20
    dense.write_bytes(b"".join(lines * (size // sum(map(len, lines)) + 1)))  # the simulator's own mix: ~40 % hits
    sparse.write_bytes(b"".join(quiet * (size // sum(map(len, quiet)) + 1)))
    return dense, sparse


def test_dense_weighs_more(files: tuple[Path, Path]) -> None:
    reader, _ = _reader()
    dense, sparse = files
    assert units.weight(str(sparse), sparse.stat().st_size, reader.literals) == 1.0
    assert units.weight(str(dense), dense.stat().st_size, reader.literals) > 10
    assert units.weight(str(dense), dense.stat().st_size, None) == 1 + units.HIT_COST  # no prefilter: every line parsed


def test_weight_is_the_share_of_bytes_on_lines_holding_a_literal(tmp_path: Path) -> None:
    """weight counts the lines the reader's scan finds: the bytes of whole lines holding any literal, per window."""
    lines = [b"x" * 40 + b"/exec" + b"y" * 10 + b"\n", b"z" * 90 + b"\n", b"plain /exec and /attach both\n", b"q" * 7 + b"\n"]
    blob = b"".join(lines[i % 4] for i in range(40_000))  # ~2.4 MB: eight windows, each cut mid-line at both ends
    path = tmp_path / "mix.log"
    path.write_bytes(blob)
    size = len(blob)
    for lits in ([b"/exec"], [b"/attach", b"/exec"], [b"zzz"], [b""], [b"nothere"], [b"a\nb", b"/exec"]):
        hit = seen = 0
        step = max(size // units.SAMPLES, units.SAMPLE)
        for at in range(0, max(size - units.SAMPLE, 0) + 1, step):
            whole = blob[at : at + units.SAMPLE].split(b"\n")[1:-1]
            seen += sum(len(ln) + 1 for ln in whole)
            hit += sum(len(ln) + 1 for ln in whole if any(lit in ln for lit in lits))
        assert units.weight(str(path), size, lits) == 1.0 + units.HIT_COST * hit / seen, lits


def test_dense_file_is_cut_and_gets_workers(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """At a unit as large as the file, bytes alone give one piece; the dense file is cut by its work, the sparse not."""
    dense, sparse = files
    monkeypatch.setattr(units, "MIN_UNIT", 256 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 8 << 20)
    reader, engine = _reader()
    unit = 2 << 20  # the files are ~3 MB: less than two units, never cut by size
    sparse_units = units.plan(reader, [str(sparse)], unit=unit)
    assert sparse_units is not None and len(sparse_units) == 1 and not units.worth_it(sparse_units, 2)
    planned = units.plan(reader, [str(dense)], unit=unit)
    assert planned is not None and len(planned) >= 4 and all(u.start is not None for u in planned)
    assert units.worth_it(planned, 2)
    assert not engine._deciders
    hunt = parallel.ParallelHunt(reader, engine, planned, jobs=2)
    assert engine._deciders  # the parent matched the head of the file before the fork (its memos are shared)
    try:
        got = [json.dumps(alert_dict(a)) for a in hunt.alerts()]
    finally:
        hunt.close()
    serial_reader, serial_engine = _reader()
    want = [json.dumps(alert_dict(a)) for a in serial_engine.run(serial_reader.read([str(dense)]))]
    assert got == want and len(want) > 100
    assert reader.stats.lines == serial_reader.stats.lines


def test_python_m_execguard(files: tuple[Path, Path]) -> None:
    dense, _ = files
    proc = subprocess.run([sys.executable, "-m", "execguard", "--version"], capture_output=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() and proc.stdout.strip()[0:1].isdigit()
    script = Path(sys.executable).parent / "execguard"
    args = ["hunt", "-q", "-o", "jsonl", "-j", "1", str(dense)]
    via_m = subprocess.run([sys.executable, "-m", "execguard", *args], capture_output=True, check=False)
    via_script = subprocess.run([str(script), *args], capture_output=True, check=False)
    assert via_m.returncode == via_script.returncode == 0
    assert via_m.stdout == via_script.stdout and via_m.stdout.count(b"\n") > 100


def test_the_program_leaves_the_collector_nothing_at_exit(files: tuple[Path, Path], tmp_path: Path) -> None:
    """`execguard hunt` closes its outputs and then leaves at once, without Python's teardown (its atexit handlers,
    such as the probe's, never run), with the app's output, summary and exit status: 0, 1 for --fail-on, 2 for an
    unreadable input, and --out written whole. Any other way out (a usage error) freezes what is alive first, so the
    exit's collections skip it."""
    from typer.testing import CliRunner

    from execguard.cli import app

    dense, _ = files
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, file=sys.stderr))\n"
        "from execguard.__main__ import main\n"
        "sys.argv = ['execguard', *sys.argv[1:]]\n"
        "main()\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, check=False)

    args = ["hunt", "-q", "-o", "jsonl", "-j", "1", str(dense)]
    expected = CliRunner().invoke(app, args).stdout_bytes
    assert expected.count(b"\n") > 100
    proc = run(*args)
    assert proc.returncode == 0 and proc.stdout == expected and b"frozen" not in proc.stderr
    loud = run("hunt", "-o", "jsonl", "-j", "1", str(dense))
    assert loud.returncode == 0 and loud.stdout == expected and b"alerts:" in loud.stderr and b"by rule:" in loud.stderr
    assert run(*args[:-1], "--fail-on", "info", str(dense)).returncode == 1
    missing = run(*args, str(tmp_path / "missing.log"))
    assert missing.returncode == 2 and missing.stdout == expected and b"unreadable" in missing.stderr
    out = tmp_path / "alerts.jsonl"
    assert run(*args[:-1], "--out", str(out), str(dense)).returncode == 0 and out.read_bytes() == expected
    bad = run("hunt", "--no-such-option")
    assert bad.returncode == 2 and b"frozen True" in bad.stderr and b"No such option" in bad.stderr


def test_default_jobs_are_the_idle_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from execguard.pipeline import run

    usable = parallel.available_jobs()
    assert 1 <= run.usable_jobs(0)[0] <= usable  # whatever the machine's load is now
    assert run.usable_jobs(1) == (1, None)  # an explicit -j is kept
    assert run.usable_jobs(0, probe=run.IdleProbe(1, 0.0)) == (usable, None)  # the probe's reads decide later
    # the load average is the other work's: each busy CPU is one worker fewer, never none
    monkeypatch.setattr(run, "_running_others", lambda *a: 99)  # other work runnable now too
    monkeypatch.setattr(run.os, "getloadavg", lambda: (0.4, 0.0, 0.0))
    assert run.idle_jobs(4) == 4
    monkeypatch.setattr(run.os, "getloadavg", lambda: (2.7, 0.0, 0.0))
    assert run.idle_jobs(4) == 2
    monkeypatch.setattr(run.os, "getloadavg", lambda: (11.0, 0.0, 0.0))
    assert run.idle_jobs(4) == 1
    # the average lags: a hunt run just after another sees its predecessor's load; nothing else runs now
    monkeypatch.setattr(run, "_running_others", lambda *a: 0)
    monkeypatch.setattr(run.os, "getloadavg", lambda: (1.06, 0.0, 0.0))
    assert run.idle_jobs(4) == 4
    monkeypatch.setattr(run, "_running_others", lambda *a: 1)
    assert run.idle_jobs(4) == 3
    # no /proc/loadavg: the average alone
    monkeypatch.setattr(run, "_running_others", lambda *a: None)
    assert run.idle_jobs(4) == 3
    # an average below one CPU: nothing to count now, and no reads (they cost 20 ms before the workers start)
    reads: list[int] = []
    monkeypatch.setattr(run, "_running_others", lambda samples=1, *a: reads.append(samples) or 1)
    monkeypatch.setattr(run.os, "getloadavg", lambda: (0.97, 0.0, 0.0))
    assert run.idle_jobs(4, run.SAMPLES) == 4 and reads == []
    monkeypatch.setattr(run.os, "getloadavg", lambda: (1.02, 0.0, 0.0))
    assert run.idle_jobs(4, run.SAMPLES) == 3 and reads == [run.SAMPLES]
    monkeypatch.undo()
    others = run._running_others()
    assert others is None or others >= 0


def test_running_count_is_what_two_of_a_few_reads_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other sessions' work runs in bursts: one read between two bursts must not count their CPU as idle; and a
    task caught by one read alone (a monitor waking for a millisecond) must not count as busy."""
    import io

    from execguard.pipeline import run

    def loadavg(*running: int) -> None:
        reads = iter([f"1.50 1.20 0.90 {n}/300 42\n" for n in running])
        monkeypatch.setattr(run, "open", lambda *a, **k: io.StringIO(next(reads)), raising=False)

    loadavg(1, 3, 1, 3, 1)  # bursts between the reads
    assert run._running_others(5, 0.0) == 2  # ourselves left out
    loadavg(1, 3, 1, 2, 1)
    assert run._running_others(5, 0.0) == 1  # the second most
    loadavg(1, 1, 2, 1, 1)  # one read caught something
    assert run._running_others(5, 0.0) == 0
    loadavg(3)
    assert run._running_others(1, 0.0) == 2  # a single read is what it saw
    # read from the probe's thread: the hunt's own thread, runnable beside it, is no other work either
    monkeypatch.setattr(run, "_runnable", lambda thread: thread == 7)
    loadavg(3, 3, 3)
    assert run._running_others(3, 0.0, also=7) == 1
    loadavg(3, 3, 3)
    assert run._running_others(3, 0.0, also=8) == 2  # that thread was waiting: the count is the others'


def test_runnable_reads_a_threads_state() -> None:
    import threading

    from execguard.pipeline import run

    assert run._runnable(threading.get_native_id())  # this thread, reading its own state, runs
    parked = threading.Event()
    ready = threading.Event()
    ids: list[int] = []

    def wait() -> None:
        ids.append(threading.get_native_id())
        ready.set()
        parked.wait()

    t = threading.Thread(target=wait)
    t.start()
    ready.wait()
    try:
        deadline = 50
        while run._runnable(ids[0]) and deadline:  # it may still be on its way to the wait
            deadline -= 1
            threading.Event().wait(0.01)
        assert not run._runnable(ids[0])
    finally:
        parked.set()
        t.join()
    assert not run._runnable(ids[0])  # gone


def test_default_jobs_recounted_once_the_work_is_worth_it(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from execguard.pipeline import run

    dense, _ = files
    monkeypatch.setattr(units, "MIN_UNIT", 256 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 8 << 20)
    monkeypatch.setattr(units, "UNIT", 2 << 20)
    seen: list[int] = []
    monkeypatch.setattr(run, "idle_jobs", lambda usable, samples=1, probe=None: seen.append(samples) or 1)  # busy now
    reader, engine = _reader()
    workers, paths = run.start_workers(reader, engine, [str(dense)], 2, idle=True)
    assert workers is None and paths == [str(dense)] and seen == [run.SAMPLES]
    workers, _ = run.start_workers(reader, engine, [str(dense)], 2)  # -j 2 asked: kept
    assert workers is not None
    workers.close()


def test_idle_probe_reads_while_the_hunt_starts(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """-j 0's reads of the running count are taken on a thread started before the rules load, not in a sleep before
    the fork; the workers' count is what they saw, and the thread is gone before the fork. No thread when the load
    average says no CPU is busy, or when the inputs are too small to be worth workers."""
    import threading

    from execguard.pipeline import run

    dense, _ = files
    monkeypatch.setattr(units, "MIN_UNIT", 256 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 8 << 20)
    monkeypatch.setattr(units, "UNIT", 2 << 20)
    reads: list[str] = []
    monkeypatch.setattr(run, "_running_others", lambda *a: reads.append(threading.current_thread().name) or 1)
    monkeypatch.setattr(run.os, "getloadavg", lambda: (0.5, 0.0, 0.0))
    assert run.idle_probe([str(dense)]) is None  # no CPU busy: the reads could only lower the count
    monkeypatch.setattr(run.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    tiny = dense.parent / "tiny.log"
    tiny.write_bytes(dense.read_bytes()[:1000])
    assert run.idle_probe([str(tiny), str(dense.parent / "missing.log")]) is None  # not worth workers, whatever it holds
    assert run.idle_probe([str(dense), "-"]) is None  # stdin among the inputs: no units, no workers
    probe = run.idle_probe([str(dense)])
    assert probe is not None
    reader, engine = _reader()
    workers, _ = run.start_workers(reader, engine, [str(dense)], 2, idle=True, probe=probe)
    try:
        # one busy CPU of two by the average, and one task running now by the probe: one worker, so none
        assert workers is None and reads == ["execguard-idle-probe"]
        assert not probe._thread.is_alive()
        monkeypatch.setattr(run, "_running_others", lambda *a: reads.append(threading.current_thread().name) or 0)
        probe = run.idle_probe([str(dense)])
        assert probe is not None
        workers, _ = run.start_workers(reader, engine, [str(dense)], 2, idle=True, probe=probe)
        # nothing runs now: the average was its predecessor's; both CPUs get a worker, forked after the probe ended
        assert workers is not None and len(workers._workers) == 2 and not probe._thread.is_alive()
        assert reads == ["execguard-idle-probe"] * 2
    finally:
        if workers is not None:
            workers.close()


def test_idle_probe_is_joined_whatever_is_decided(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's thread is gone when start_workers returns, also where its reads are not needed: the average fell
    below one CPU since it started (workers forked on every CPU), or the work is not worth workers (the sink's helper
    would see a live thread and stay off)."""
    import time

    from execguard.pipeline import run

    dense, _ = files
    monkeypatch.setattr(units, "MIN_UNIT", 256 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 8 << 20)
    monkeypatch.setattr(units, "UNIT", 2 << 20)
    monkeypatch.setattr(run, "_running_others", lambda *a: time.sleep(0.3) or 0)  # slow reads: still under way
    reader, engine = _reader()
    for size, worth in ((None, True), (4 << 10, False)):
        monkeypatch.setattr(run.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
        path = dense
        if size is not None:
            path = dense.parent / "small.log"
            path.write_bytes(dense.read_bytes()[:size])
            monkeypatch.setattr(units, "MIN_TOTAL", 0)  # a probe all the same, to see it joined
        probe = run.idle_probe([str(path)])
        assert probe is not None
        monkeypatch.setattr(run.os, "getloadavg", lambda: (0.2, 0.0, 0.0))  # fell since: the reads are not read
        if size is not None:
            monkeypatch.setattr(units, "MIN_TOTAL", 8 << 20)
        workers, _ = run.start_workers(reader, engine, [str(path)], 2, idle=True, probe=probe)
        try:
            assert (workers is not None) == worth
            assert not probe._thread.is_alive()
        finally:
            if workers is not None:
                workers.close()


def test_first_cut_file_ramps_up_from_small_ranges(files: tuple[Path, Path]) -> None:
    """The first range (read by the parent before the fork) is about WARM bytes, the next ones WARM, 2 WARM, 4 WARM
    ...; every cut is at a newline and together they cover the file's first planned range."""
    dense, _ = files
    blob = dense.read_bytes()
    ranges = units._ramp(str(dense), [(0, 1 << 20), (1 << 20, len(blob))], 64 << 10)
    assert ranges[-1] == (1 << 20, len(blob))
    ramp = ranges[:-1]
    assert ramp[0][0] == 0 and ramp[-1][1] == 1 << 20 and all(a[1] == b[0] for a, b in itertools.pairwise(ramp))
    assert all(blob[b - 1 : b] == b"\n" for _, b in ramp[:-1])
    sizes = [b - a for a, b in ramp]
    assert units.WARM <= sizes[0] <= 2 * units.WARM and len(sizes) >= 4
    assert all(sizes[i + 1] >= sizes[i] for i in range(1, len(sizes) - 2))  # doubling after the first two


def test_last_range_is_cut_small(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's last range, of a file cut in several, comes in TAIL parts cut at newlines: the workers end
    together and the parent's last replay is short. Together the units still cover the file once, in order."""
    dense, _ = files
    blob = dense.read_bytes()
    monkeypatch.setattr(units, "MIN_UNIT", 512 << 10)
    reader, _ = _reader()
    planned = units.plan(reader, [str(dense)], unit=1 << 20)
    assert planned is not None and all(u.start is not None for u in planned)
    assert planned[0].start == 0 and planned[-1].end == len(blob)
    assert all(a.end == b.start for a, b in itertools.pairwise(planned))
    assert all(blob[(u.end or 0) - 1 : u.end] == b"\n" for u in planned)
    monkeypatch.setattr(units, "_ramp_down", lambda unit, max_line: [unit])
    whole = units.plan(reader, [str(dense)], unit=1 << 20)
    assert whole is not None and planned[: len(whole) - 1] == whole[:-1]
    last, tail = whole[-1], planned[len(whole) - 1 :]
    assert len(tail) == units.TAIL and tail[0].start == last.start and tail[-1].end == last.end
    assert all(u.size < last.size / 2 for u in tail)
    assert all(u.work >= u.size for u in planned)  # the file's weight kept
    # a range too small to cut again, and a plan of one range, are left as they are
    small = units.Unit(str(dense), 0, 3 * units.WARM, 3 * units.WARM, 3 * units.WARM)
    assert units._ramp_down(small, reader.max_line) == [small]


def test_a_hunt_that_ends_the_process_leaves_its_sorted_alerts_to_the_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the process ending with the hunt (``collector.ending``, set by `execguard hunt`), the sort's last run is
    kept for the exit instead of freed alert by alert; otherwise (watch, the app inside another process) it is let go."""
    from execguard.model import Alert, Event
    from execguard.pipeline import collector, order

    alerts = [Alert(Event(time=f"2026-01-01T00:00:0{i}Z"), []) for i in (3, 1, 2)]

    def drained() -> list[Alert]:
        sorter = order.SpillSorter(order.KEYS["time"])
        for seq, alert in enumerate(alerts):
            sorter.add(alert, seq)
        return [alert for alert, _ in sorter.drain()]

    left: list[object] = []
    monkeypatch.setattr(collector, "_LEFT", left)
    assert drained() == [alerts[1], alerts[2], alerts[0]] and left == []
    monkeypatch.setattr(collector, "_ending", True)
    assert drained() == [alerts[1], alerts[2], alerts[0]]
    assert len(left) == 1 and {id(a) for _, a, _ in left[0]} == {id(a) for a in alerts}  # type: ignore[attr-defined]


def test_the_program_starts_without_collections_and_leaves_commands_the_usual_collector() -> None:
    """The program imports the command line with the cyclic collector off (~38 young collections of nothing before),
    then freezes what the imports made and turns the collector on at its usual thresholds for the command."""
    probe = (
        "import atexit, gc, sys\n"
        "seen = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and seen.append(info['generation']))\n"
        "atexit.register(lambda: print('collections', len(seen), gc.isenabled(), gc.get_freeze_count() > 1000,"
        " gc.get_threshold() == (700, 10, 10), file=sys.stderr))\n"
        "from execguard.__main__ import main\n"
        "sys.argv = ['execguard', *sys.argv[1:]]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, "audit", "--help"], capture_output=True, check=False)
    assert proc.returncode == 0 and b"Usage" in proc.stdout
    words = proc.stderr.split(b"collections ")[1].split()
    assert int(words[0]) <= 2 and words[1:] == [b"True", b"True", b"True"], proc.stderr


def test_a_hunt_that_ends_the_process_keeps_its_collector_pace_to_the_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside another process a hunt gives the collector back its thresholds; `execguard hunt` (``ending``) does not:
    the first allocation under the old threshold collected the ~150 000 young objects a dense hunt leaves (100 ms)."""
    import gc

    from execguard.pipeline import collector

    before = gc.get_threshold()
    try:
        with collector.fewer_collections():
            assert gc.get_threshold()[0] == collector.YOUNG
        assert gc.get_threshold() == before
        monkeypatch.setattr(collector, "_ending", False)  # given back after the test
        collector.ending()
        with collector.fewer_collections():
            pass
        assert gc.get_threshold()[0] == collector.YOUNG
    finally:
        gc.set_threshold(*before)
