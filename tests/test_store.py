"""The SQLite alert store: hunt --store then execguard alerts end to end, idempotent replay, schema, batches, errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.sinks import store as store_mod
from execguard.sinks.alert_json import alert_dict
from execguard.sinks.restore import restore
from execguard.sinks.store import SCHEMA_VERSION, StoreError, StoreSink, connect
from sinks_helpers import sample_alerts, wait_for

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def hunted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    db = tmp_path_factory.mktemp("store") / "alerts.db"
    code, out, _ = run("hunt", "--samples", "-q", "-o", "jsonl", "--store", str(db))
    assert code == 0
    return db, jsonl(out)


def test_alerts_shows_what_hunt_found(hunted: tuple[Path, list[dict]]) -> None:
    db, expected = hunted
    code, out, _ = run("alerts", "--store", str(db), "-o", "jsonl")
    assert code == 0
    assert jsonl(out) == expected  # the same alerts, whole, in the same (time) order
    code, out, _ = run("alerts", "--store", str(db))
    assert code == 0 and "CRITICAL" in out and "Download piped into a shell" in out


def test_restore_round_trips_every_alert() -> None:
    for alert in sample_alerts():
        d = alert_dict(alert)
        assert alert_dict(restore(d)) == d


def test_replay_does_not_double(hunted: tuple[Path, list[dict]], tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    for _ in range(2):
        assert run("hunt", "--samples", "-q", "-o", "jsonl", "--store", str(db))[0] == 0
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM alerts").fetchone()[0] == len(hunted[1])
    sink = StoreSink(db)  # a watch restarted over the same events
    for d in hunted[1]:
        sink.write(restore(d))
    sink.close()
    assert sink.written == 0 and sink.duplicates == len(hunted[1])


def test_filters_match_hunts_filters(hunted: tuple[Path, list[dict]]) -> None:
    db, everything = hunted
    day = "2026-11-05T00:00:00+00:00"
    cases = [
        (["--severity", "high"], ["--min-severity", "high"]),
        (["--rule", "docker-*"], ["--rule", "docker-*"]),
        (["--actor", "system:serviceaccount:*"], ["--user", "system:serviceaccount:*"]),
        (["--namespace", "default", "--pod", "nginx-*"], ["--namespace", "default", "--pod", "nginx-*"]),
        (["--namespace", "payments"], ["--namespace", "payments"]),  # a literal: pushed down into SQL
        (["--since", "2026-11-04T20:32:00Z", "--until", "2026-11-05T00:00:00Z"], ["--since", "2026-11-04T20:32:00Z", "--until", day]),
    ]  # fmt: skip
    for ours, hunts in cases:
        code, out, _ = run("alerts", "--store", str(db), "-o", "jsonl", *ours)
        assert code == 0
        _, want, _ = run("hunt", "--samples", "-q", "-o", "jsonl", *hunts)
        got = jsonl(out)
        assert got == jsonl(want), ours
        assert 0 < len(got) < len(everything), ours


def test_count_by(hunted: tuple[Path, list[dict]]) -> None:
    db, everything = hunted
    code, out, _ = run("alerts", "--store", str(db), "--count-by", "rule", "-o", "jsonl")
    assert code == 0
    counts = {r["rule"]: r["count"] for r in jsonl(out)}
    want: dict[str, int] = {}
    for a in everything:
        want[a["rule_id"]] = want.get(a["rule_id"], 0) + 1
    assert counts == want
    code, out, _ = run("alerts", "--store", str(db), "--count-by", "actor", "--severity", "critical")
    assert code == 0 and "system:anonymous" in out and "alerts by actor" in out
    code, out, _ = run("alerts", "--store", str(db), "--count-by", "namespace", "-o", "jsonl")
    assert sum(r["count"] for r in jsonl(out)) == len(everything)


def test_schema_wal_and_indexes(hunted: tuple[Path, list[dict]]) -> None:
    db, _ = hunted
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    columns = {r[1] for r in c.execute("PRAGMA table_info(alerts)")}
    assert set(store_mod.COLUMNS) <= columns
    indexes = {r[1] for r in c.execute("PRAGMA index_list(alerts)")}
    assert {"alerts_event_rule", "alerts_time", "alerts_rule_time", "alerts_actor_time", "alerts_namespace_time"} <= indexes
    plan = " ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN SELECT id FROM alerts WHERE namespace = 'x' AND time_ns >= 1"))
    assert "alerts_namespace_time" in plan
    c.close()


def test_migration_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "m.db"
    sink = StoreSink(db)
    sink.write(sample_alerts()[0])
    sink.close()
    # a later execguard adds a column: the store is moved on once, and its rows stay
    later = [*store_mod.MIGRATIONS, ("ALTER TABLE alerts ADD COLUMN note TEXT",)]
    monkeypatch.setattr(store_mod, "MIGRATIONS", later)
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 2)
    connect(db).close()
    connect(db).close()
    c = sqlite3.connect(db)
    assert [r[0] for r in c.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]
    assert c.execute("SELECT count(*) FROM alerts WHERE note IS NULL").fetchone()[0] == 1
    c.close()
    # and this execguard refuses the newer store rather than misreading it
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 1)
    with pytest.raises(StoreError, match="newer than this execguard reads"):
        connect(db)


def test_commits_in_batches(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    sink = StoreSink(db, batch=3, interval=3600)
    alerts = sample_alerts()
    reader = sqlite3.connect(db)

    def count() -> int:
        return int(reader.execute("SELECT count(*) FROM alerts").fetchone()[0])

    sink.write(alerts[0])
    sink.write(alerts[1])
    assert count() == 0  # still in the batch
    sink.write(alerts[2])
    assert count() == 3
    sink.write(alerts[3])
    sink.flush()
    assert count() == 4
    sink.write(alerts[4])
    sink.close()
    assert count() == 5
    reader.close()


def test_a_quiet_stream_is_committed_on_time(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    sink = StoreSink(db, batch=1000, interval=0.1)
    sink.write(sample_alerts()[0])  # one alert, then nothing: a watch at night
    reader = sqlite3.connect(db)
    assert wait_for(lambda: reader.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1, timeout=10)
    reader.close()
    sink.close()


def test_bad_stores_get_one_line(tmp_path: Path) -> None:
    code, _, err = run("alerts", "--store", str(tmp_path / "none.db"))
    assert code == 2 and "none.db: no such alert store" in err and "Traceback" not in err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite\n" * 100)
    code, _, err = run("alerts", "--store", str(junk))
    assert code == 2 and "junk.db: not a usable alert store" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("hunt", "--samples", "-q", "--store", str(tmp_path / "no" / "dir" / "a.db"))
    assert code == 2 and "does not exist" in err
    code, _, err = run("alerts", "--store", str(junk), "--since", "yesterday")
    assert code == 2 and "--since" in err


def test_no_secret_reaches_the_store_or_sinks(tmp_path: Path) -> None:
    from test_cli import LEAKS, SECRETS, exec_event

    log = tmp_path / "audit.log"
    log.write_text("\n".join(json.dumps(exec_event(i, argv)) for i, argv in enumerate(SECRETS.values())) + "\n")
    db, out = tmp_path / "s.db", tmp_path / "s.jsonl"
    code, _, _ = run("hunt", "-q", "-o", "jsonl", "--store", str(db), "--sink", f"file:{out}", str(log))
    assert code == 0
    code, shown, _ = run("alerts", "--store", str(db))
    assert code == 0 and "[REDACTED]" in shown
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s."))
    for secret in LEAKS:
        assert secret.encode() not in stored and secret not in shown, secret
