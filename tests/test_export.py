"""rules export: every rule for every target is a query or a skip with a reason; exact queries; and the sqlite
queries run on the simulated audit log select the records execguard's own rules fire on."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("sigma.backends.splunk", reason="rules export needs the export extra (pySigma backends)")
for _backend in ("elasticsearch", "loki", "kusto", "sqlite"):
    pytest.importorskip(f"sigma.backends.{_backend}", reason="rules export needs the export extra (pySigma backends)")

from sigma.modifiers import SigmaBase64OffsetModifier  # noqa: E402
from sigma.rule import SigmaDetectionItem  # noqa: E402
from sigma.types import SigmaString  # noqa: E402

from execguard.cli import app  # noqa: E402
from execguard.engine.load import load_rules  # noqa: E402
from execguard.engine.match import Engine  # noqa: E402
from execguard.export import evaluate, prune, raw  # noqa: E402
from execguard.export.convert import Exported, export  # noqa: E402
from execguard.export.targets import TARGETS  # noqa: E402
from execguard.pipeline.prefilter import literals_for  # noqa: E402
from execguard.pipeline.rules import load  # noqa: E402
from execguard.sim.simulate import write as simulate  # noqa: E402
from execguard.sinks.alert_json import alert_dict  # noqa: E402
from execguard.sources.reader import Reader  # noqa: E402

RULES = Path(__file__).parent / "data" / "export"

# The built-in rules each target turns into a query; every other rule is a skip with a reason (pinned below).
QUERY_RULES = {
    # narrowed: alternatives the target cannot say are left out and named in notes
    "cmd-credential-access", "cmd-miner", "cmd-reverse-shell", "k8s-exec-control-plane-signal", "k8s-exec-interactive-shell",
    "k8s-ephemeral-container", "k8s-exec-anonymous", "k8s-exec-api", "k8s-exec-control-plane", "k8s-exec-control-plane-burst",
    "k8s-exec-denied", "k8s-exec-denied-burst", "k8s-exec-node-identity", "k8s-exec-service-account", "k8s-exec-unusual-client",
    "k8s-kubelet-anonymous", "k8s-kubelet-exec", "k8s-kubelet-portforward-cri", "k8s-portforward",
}
CORRELATIONS = {"k8s-exec-control-plane-burst", "k8s-exec-denied-burst"}
# The correlations a backend refuses (the others count events per user): Lucene and Kusto have no correlation
# support; Loki none over a rule it splits into several queries; the SQLite backend returns nothing for a
# correlation that another correlation names.
BACKEND_SKIPS = {"elasticsearch": CORRELATIONS, "kusto": CORRELATIONS, "kusto-azurediagnostics": CORRELATIONS,
                 "loki": {"k8s-exec-control-plane-burst"},
                 "sqlite": {"k8s-exec-denied-burst"}}
# Why the rest are skipped, by the start of the reason, with how many rules each.
SKIP_REASONS = {
    "Docker Engine events": 5,
    "command.text: a regular expression": 9,
    "execguard does not alert on it alone": 6,
    "action: discovery": 2,
    "action: rbac": 3,
    "action: create": 1,
    "action: kubelet_other": 1,
    "command.argv0": 3,
    "command.body_conflict": 1,
    "actor.credential_pod": 1,
    "target.image": 1,
    "a correlation of the correlation": 1,
    "group-by field rbac.principals": 1,
    "logsource containerd/events/- is not the Kubernetes audit log": 1,  # runtime-exec (watch --containerd)
    "logsource linux/-/process_creation is not the Kubernetes audit log": 1,  # node-exec-shell (process telemetry)
}
# Where a target has no list fields, a chain grouped by source IP is refused for that before its steps are read.
NO_LISTS = {"action: discovery": 1, "group-by field actor.source_ip": 1}


def _results(target: str, **kw: object) -> dict[str, Exported]:
    results, _ = export(target, **kw)  # type: ignore[arg-type]
    return {r.rule_id: r for r in results}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_rule_is_a_query_or_a_skip_with_its_reason(target: str) -> None:
    got = _results(target)
    assert sorted(got) == sorted(r.rule_id for r in load([]))
    for r in got.values():
        assert bool(r.skipped) != bool(r.query), r.rule_id  # exactly one of them
        queries = r.query if isinstance(r.query, list) else [r.query]  # Loki splits a long query
        assert r.skipped or all(isinstance(q, str) and q.strip() for q in queries), r.rule_id
    want = QUERY_RULES - BACKEND_SKIPS.get(target, set())
    assert {i for i, r in got.items() if not r.skipped} == want
    expected = SKIP_REASONS | NO_LISTS if TARGETS[target].missing else SKIP_REASONS
    reasons: Counter[str] = Counter()
    for r in got.values():
        if r.skipped and r.rule_id not in BACKEND_SKIPS.get(target, set()):
            reasons[next((k for k in expected if r.skipped.startswith(k)), r.skipped)] += 1
    assert reasons == expected
    assert all(got[i].skipped.startswith(f"the {target} backend") for i in BACKEND_SKIPS.get(target, set()))


# Exact queries: a field map with a derived field (actor.kind) and the outcome as response codes.
ANONYMOUS = {
    "splunk": 'sourcetype="kube:apiserver:audit" (objectRef.resource="pods" objectRef.subresource="exec") OR (objectRef.resource="pods" '
              'objectRef.subresource="attach") OR (objectRef.resource="pods" objectRef.subresource="ephemeralcontainers") OR '
              '(objectRef.resource="pods" objectRef.subresource="portforward") user.username="system:anonymous" '
              'NOT (responseStatus.code IN (401, 403))',
    "elasticsearch": "event.dataset:kubernetes.audit_logs AND ((((kubernetes.audit.objectRef.resource:pods AND "
                     "kubernetes.audit.objectRef.subresource:exec) OR (kubernetes.audit.objectRef.resource:pods AND "
                     "kubernetes.audit.objectRef.subresource:attach) OR (kubernetes.audit.objectRef.resource:pods AND "
                     "kubernetes.audit.objectRef.subresource:ephemeralcontainers) OR (kubernetes.audit.objectRef.resource:pods AND "
                     "kubernetes.audit.objectRef.subresource:portforward)) AND kubernetes.audit.user.username:system\\:anonymous) AND "
                     "(NOT (kubernetes.audit.responseStatus.code:(401 OR 403))))",
    "loki": '{job="kubernetes-audit"} | json | (objectRef_resource=~`(?i)^pods$` and objectRef_subresource=~`(?i)^exec$` or '
            "objectRef_resource=~`(?i)^pods$` and objectRef_subresource=~`(?i)^attach$` or objectRef_resource=~`(?i)^pods$` and "
            "objectRef_subresource=~`(?i)^ephemeralcontainers$` or objectRef_resource=~`(?i)^pods$` and "
            "objectRef_subresource=~`(?i)^portforward$`) and user_username=~`(?i)^system:anonymous$` and "
            "responseStatus_code!=401 and responseStatus_code!=403",
    "kusto": 'AKSAudit\n| where (((tostring(ObjectRef.resource) =~ "pods" and tostring(ObjectRef.subresource) =~ "exec") or '
             '(tostring(ObjectRef.resource) =~ "pods" and tostring(ObjectRef.subresource) =~ "attach") or '
             '(tostring(ObjectRef.resource) =~ "pods" and tostring(ObjectRef.subresource) =~ "ephemeralcontainers") or '
             '(tostring(ObjectRef.resource) =~ "pods" and tostring(ObjectRef.subresource) =~ "portforward")) and '
             'tostring(User.username) =~ "system:anonymous") and (not((toint(ResponseStatus.code) == 401 or '
             "toint(ResponseStatus.code) == 403)))",
}

# A contains on command.text: the URL-encoded forms and the three base64 offsets of each value.
MINER = {
    "splunk": 'sourcetype="kube:apiserver:audit" (objectRef.resource="pods" objectRef.subresource="exec") OR (objectRef.resource="pods" '
              'objectRef.subresource="attach") OR (objectRef.resource="nodes" objectRef.subresource="proxy" requestURI="*/proxy/exec/*") '
              'requestURI IN ("*xmrig*", "*eG1yaW*", "*htcmln*", "*4bXJpZ*", '
              '"*stratum%2Btcp%3A%2F%2F*", "*c3RyYXR1bSt0Y3A6Ly*", "*N0cmF0dW0rdGNwOi8v*", "*zdHJhdHVtK3RjcDovL*")',
    "elasticsearch": "event.dataset:kubernetes.audit_logs AND (((kubernetes.audit.objectRef.resource:pods AND "
                     "kubernetes.audit.objectRef.subresource:exec) OR (kubernetes.audit.objectRef.resource:pods AND "
                     "kubernetes.audit.objectRef.subresource:attach) OR (kubernetes.audit.objectRef.resource:nodes AND "
                     "kubernetes.audit.objectRef.subresource:proxy AND kubernetes.audit.requestURI:*\\/proxy\\/exec\\/*)) AND "
                     "(kubernetes.audit.requestURI:(*xmrig* OR *eG1yaW* OR *htcmln* OR "
                     "*4bXJpZ* OR *stratum%2Btcp%3A%2F%2F* OR *c3RyYXR1bSt0Y3A6Ly* OR *N0cmF0dW0rdGNwOi8v* OR *zdHJhdHVtK3RjcDovL*)))",
    "kusto": 'AKSAudit\n| where ((tostring(ObjectRef.resource) =~ "pods" and tostring(ObjectRef.subresource) =~ "exec") or '
             '(tostring(ObjectRef.resource) =~ "pods" and tostring(ObjectRef.subresource) =~ "attach") or '
             '(tostring(ObjectRef.resource) =~ "nodes" and tostring(ObjectRef.subresource) =~ "proxy" and '
             'RequestUri contains "/proxy/exec/")) and (RequestUri contains "xmrig" or RequestUri contains "eG1yaW" or '
             'RequestUri contains "htcmln" or '
             'RequestUri contains "4bXJpZ" or RequestUri contains "stratum%2Btcp%3A%2F%2F" or RequestUri contains "c3RyYXR1bSt0Y3A6Ly" or '
             'RequestUri contains "N0cmF0dW0rdGNwOi8v" or RequestUri contains "zdHJhdHVtK3RjcDovL")',
}

# A startswith on command.line: the first argv elements as kubectl writes them (and a service account as a user prefix).
SHELL = {
    "splunk": 'sourcetype="kube:apiserver:audit" objectRef.resource="pods" objectRef.subresource="exec" requestURI IN '
              '("*command=sh+-c*", "*command=sh%20-c*", "*command=sh&command=-c*") user.username="system:serviceaccount:*"',
    "loki": '{job="kubernetes-audit"} | json | objectRef_resource=~`(?i)^pods$` and objectRef_subresource=~`(?i)^exec$` and '
            "(requestURI=~`(?i).*command=sh\\+\\-c.*` or requestURI=~`(?i).*command=sh%20\\-c.*` or "
            "requestURI=~`(?i).*command=sh\\&command=\\-c.*`) and user_username=~`(?i)^system:serviceaccount:.*`",
}


@pytest.mark.parametrize("target", sorted(ANONYMOUS))
def test_exact_query_field_map_and_derived_fields(target: str) -> None:
    assert _results(target)["k8s-exec-anonymous"].query == ANONYMOUS[target]


@pytest.mark.parametrize("target", sorted(MINER))
def test_exact_query_command_contains_with_uri_and_base64_forms(target: str) -> None:
    got = _results(target, extra=[str(RULES)], builtin=False)["test-export-miner"]
    assert got.query == MINER[target]
    assert any(n.startswith("not searched: create") for n in got.notes)


@pytest.mark.parametrize("target", sorted(SHELL))
def test_exact_query_command_startswith(target: str) -> None:
    assert _results(target, extra=[str(RULES)], builtin=False)["test-export-shell-c"].query == SHELL[target]


def test_exact_query_azure_diagnostics_reads_the_event_from_log_s() -> None:
    assert _results("kusto-azurediagnostics")["k8s-exec-api"].query == (
        'AzureDiagnostics\n| where Category == "kube-audit"\n| extend audit = parse_json(log_s)\n'
        '| where ((tostring(audit.objectRef.resource) =~ "pods" and tostring(audit.objectRef.subresource) =~ "exec") or '
        '(tostring(audit.objectRef.resource) =~ "pods" and tostring(audit.objectRef.subresource) =~ "attach")) and '
        '(tostring(audit.verb) =~ "create" or tostring(audit.verb) =~ "get") and '
        "(toint(audit.responseStatus.code) < 400 or isnull(toint(audit.responseStatus.code)))")


def test_correlation_becomes_a_count_per_user() -> None:
    q = _results("splunk")["k8s-exec-denied-burst"].query
    assert q.endswith("| bin _time span=10m\n| stats count as event_count by _time user.username\n\n| search event_count >= 5")
    assert "responseStatus.code IN (401, 403)" in q


def test_narrowing_leaves_out_only_or_alternatives() -> None:
    names = ["selection", "names", "protocol", "pools", "denied"]
    tree = prune.parse("selection and (names or protocol or pools) and not denied", names)
    assert prune.text(prune.prune(tree, {"names"})) == "selection and (protocol or pools) and not denied"  # type: ignore[arg-type]
    assert prune.prune(tree, {"names", "protocol", "pools"}) is None  # nothing left of a required part
    assert prune.prune(tree, {"selection"}) is None
    assert prune.prune(tree, {"denied"}) is None  # under NOT: leaving it out would widen the query
    tree = prune.parse("1 of p* or all of them", ["pa", "pb", "x"])
    assert prune.text(tree) == "(pa or pb) or (pa and pb and x)"
    assert prune.text(prune.prune(tree, {"pb"})) == "pa"  # type: ignore[arg-type]
    with pytest.raises(prune.ConditionError):
        prune.parse("selection and (names", names)
    # the built-in miner: its regex of miner names is left out, its pools and protocols kept, and the note says so
    miner = _results("splunk")["cmd-miner"]
    assert "supportxmr.com" in miner.query and "xmrig" not in miner.query
    assert miner.notes[0].startswith("not searched: detection names: command.text: a regular expression")


def test_base64_forms_are_sigmas_own_base64offset() -> None:
    for text in ("xmrig", "stratum+tcp://", "ab", "/tmp/.x/xmrig -o"):
        ours = raw.base64_offsets(text) if len(text) >= 3 else []
        if ours:
            theirs = [str(v) for v in SigmaBase64OffsetModifier(SigmaDetectionItem("f", [], [SigmaString(text)]), []).modify(
                SigmaString(text)).values]
            assert ours == theirs
    assert raw.uri_forms("sh -c", base64_too=False) == ["sh+-c", "sh%20-c", "sh&command=-c"]
    assert raw.uri_forms("a/b:c", base64_too=False) == ["a%2Fb%3Ac"]


def _fired(paths: list[str], extra: list[str], builtin: bool) -> dict[str, set[str]]:
    engine = Engine(load_rules(extra, builtin=builtin))
    reader = Reader(literals=literals_for(engine.actions()))
    fired: dict[str, set[str]] = defaultdict(set)
    for alert in engine.run(reader.read(paths)):
        d = alert_dict(alert)
        for r in d["rules"]:
            fired[r["rule_id"]].add(d["event_id"])
    return fired


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sqlite3.Connection]:
    root = tmp_path_factory.mktemp("export-sim")
    simulate(root / "sim", fmt="k8s-audit", events=1500, seed=5)
    log = root / "sim" / "k8s-audit.jsonl"
    with log.open(encoding="utf-8") as f:
        conn = evaluate.table(json.loads(line) for line in f)
    return log, conn


def test_sqlite_queries_select_the_records_the_rules_fire_on(corpus: tuple[Path, sqlite3.Connection]) -> None:
    """Run for real: each exported plain rule selects exactly the audit events execguard alerts on with that rule,
    except what its notes say the query does not search."""
    log, conn = corpus
    fired = _fired([str(log)], [], builtin=True)
    checked = 0
    for r in _results("sqlite").values():
        if r.skipped or r.rule_id in CORRELATIONS:
            continue
        got, want = evaluate.audit_ids(conn, r.query), fired.get(r.rule_id, set())
        assert got <= want, (r.rule_id, sorted(got - want)[:3])  # never more than the rule
        if not r.notes:
            assert got == want, (r.rule_id, sorted(want - got)[:3])
        checked += bool(want)
    assert checked >= 7  # the corpus exercises most exported rules
    # the one loss in this corpus is the noted one: kubelet calls to other paths (here /pods by anonymous)
    anon = _results("sqlite")["k8s-kubelet-anonymous"]
    assert anon.notes and len(fired["k8s-kubelet-anonymous"] - evaluate.audit_ids(conn, anon.query)) == 2


PLANTED = [  # argv written the way kubectl writes it: command= parameters, url.QueryEscape'd
    ("planted-miner", "?command=%2Ftmp%2F.x%2Fxmrig&command=-o&command=stratum%2Btcp%3A%2F%2Fpool.example.net%3A3333"
                      "&container=c&stdout=true"),
    ("planted-shell", "?command=sh&command=-c&command=id&container=c&stdout=true"),
]


def test_sqlite_command_queries_find_plain_and_base64_payloads(corpus: tuple[Path, sqlite3.Connection], tmp_path: Path) -> None:
    log, _ = corpus
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    exec_record = next(r for r in records if r.get("objectRef", {}).get("subresource") == "exec"
                       and r["user"]["username"].startswith("system:serviceaccount:") and r["stage"] == "ResponseComplete")
    for audit_id, query in PLANTED:
        planted = json.loads(json.dumps(exec_record))
        planted["auditID"] = audit_id
        planted["requestURI"] = planted["requestURI"].split("?")[0] + query
        records.append(planted)
    both = tmp_path / "audit.jsonl"
    both.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    conn = evaluate.table(records)
    fired = _fired([str(both)], [str(RULES)], builtin=False)
    results = _results("sqlite", extra=[str(RULES)], builtin=False)
    assert "planted-miner" in fired["test-export-miner"] and "planted-shell" in fired["test-export-shell-c"]
    for rule_id in ("test-export-miner", "test-export-shell-c"):
        assert evaluate.audit_ids(conn, results[rule_id].query) == fired[rule_id], rule_id
    # the simulated miner runs only inside base64 (kubelet exec): without the base64 forms those are lost
    encoded = fired["test-export-miner"] - {"planted-miner"}
    assert encoded
    without = results["test-export-miner"].query
    for form in raw.base64_offsets("xmrig") + raw.base64_offsets("stratum+tcp://"):
        without = without.replace(f" OR requestURI LIKE '%{form}%' ESCAPE '\\'", "")
    assert "eG1yaW" not in without and evaluate.audit_ids(conn, without) == {"planted-miner"}


def test_cli_export_text_json_and_backend_formats(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["rules", "export", "--target", "splunk"])
    assert res.exit_code == 0, res.stderr
    assert "# k8s-exec-anonymous (critical):" in res.stdout and "# skipped: Docker Engine events" in res.stdout
    assert "splunk: 56 rules, 19 exported, 37 skipped" in " ".join(res.stderr.split())
    res = runner.invoke(app, ["rules", "export", "-t", "loki", "-f", "json", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.stderr
    doc = json.loads((tmp_path / "execguard-loki.json").read_text())
    assert doc["target"] == "loki" and len(doc["rules"]) == 56
    assert all(("query" in r) != ("skipped" in r) for r in doc["rules"])
    res = runner.invoke(app, ["rules", "export", "-t", "splunk", "-f", "savedsearches", "--out", str(tmp_path)])
    conf = (tmp_path / "execguard-splunk-savedsearches.conf").read_text()
    assert res.exit_code == 0 and conf.count("\nsearch = ") == 19 and "[Container command by an unauthenticated user" in conf
    # the backends' own file formats parse as what they claim to be, one entry per exported rule
    formats = (("loki", "ruler", "execguard-loki-ruler.yml"), ("esql", "kibana_ndjson", "execguard-esql-kibana_ndjson.ndjson"),
               ("sqlite", "zircolite", "execguard-sqlite-zircolite.json"))
    for target, fmt, name in formats:
        res = runner.invoke(app, ["rules", "export", "-t", target, "-f", fmt, "--out", str(tmp_path)])
        assert res.exit_code == 0, res.stderr
        body = (tmp_path / name).read_text()
        # one entry per exported rule (which may differ from the default format: Loki's ruler keeps a long query whole)
        exported = sum(1 for r in _results(target, fmt=fmt).values() if not r.skipped)
        assert f"{exported} exported" in res.stderr
        if fmt == "ruler":
            assert sum(len(g["rules"]) for g in yaml.safe_load(body)["groups"]) == exported
        elif fmt == "kibana_ndjson":
            assert len([json.loads(line) for line in body.splitlines()]) == exported
        else:
            assert len(json.loads(body)) == exported
    res = runner.invoke(app, ["rules", "export", "-t", "nosuch"])
    assert res.exit_code == 2 and res.stderr.strip() == (
        "error: unknown target 'nosuch'; targets: elasticsearch, eql, esql, kusto, kusto-azurediagnostics, loki, splunk, sqlite")
    res = runner.invoke(app, ["rules", "export", "-t", "splunk", "-f", "nosuch"])
    assert res.exit_code == 2 and "formats: default, savedsearches" in res.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("title: x\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  s: {nofield: 1}\n  condition: s\n")
    res = runner.invoke(app, ["rules", "export", "-t", "splunk", "--rules", str(bad)])
    assert res.exit_code == 2 and str(bad) in res.stderr and "Traceback" not in res.stderr
