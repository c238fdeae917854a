"""The export targets: a pySigma backend and the processing pipeline that maps audit fields to its own.

Each pipeline runs, in order: `ExpandFields` (our derived fields to raw audit fields, raw.py), a failure
for the audit fields this target does not index, the field mapping to the target's names, and the
condition or stream that selects Kubernetes audit events there. Field names were taken from each
product's documentation of its Kubernetes audit data (docs/export.md lists them and their sources).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import raw


@dataclass(frozen=True)
class Target:
    name: str
    backend: str  # module:class under sigma.backends
    describes: str
    fields: dict[str, str]  # raw audit field -> the target's name
    missing: dict[str, str] = field(default_factory=dict)  # raw audit field -> why the target lacks it
    condition: dict[str, str] = field(default_factory=dict)  # added to every query: selects audit events
    attributes: dict[str, str] = field(default_factory=dict)  # rule custom attributes the backend reads
    template: str = ""  # wraps every query ({query})
    options: tuple[tuple[str, Any], ...] = ()  # backend attributes set on each instance
    formats: tuple[str, ...] = ("default",)


def _prefixed(prefix: str, names: list[str]) -> dict[str, str]:
    return {n: prefix + n for n in names}


AUDIT_FIELDS = raw.RAW

TARGETS: dict[str, Target] = {}


def _add(t: Target) -> None:
    TARGETS[t.name] = t


# Elastic's Kubernetes audit_logs integration keeps the audit event under kubernetes.audit.* with its own
# JSON names (data stream kubernetes.audit_logs); pySigma's ECS Kubernetes pipeline uses the same prefix.
# The backends' siem_rule formats are not offered: they download MITRE ATT&CK data from GitHub as they run.
_ELASTIC = _prefixed("kubernetes.audit.", AUDIT_FIELDS)
_ELASTIC_CONDITION = {"event.dataset": "kubernetes.audit_logs"}
_add(Target("elasticsearch", "elasticsearch:LuceneBackend", "Elasticsearch Lucene (Kibana query bar, detection rules)",
            _ELASTIC, condition=_ELASTIC_CONDITION, formats=("default", "kibana_ndjson", "dsl_lucene")))
_add(Target("esql", "elasticsearch:ESQLBackend", "Elasticsearch ES|QL", _ELASTIC, condition=_ELASTIC_CONDITION,
            formats=("default", "kibana_ndjson")))
_add(Target("eql", "elasticsearch:EqlBackend", "Elasticsearch EQL", _ELASTIC, condition=_ELASTIC_CONDITION,
            formats=("default", "eqlapi")))

# Splunk Add-on for Kubernetes audit data (sourcetype kube:apiserver:audit) is JSON with automatic
# key extraction: nested keys are dotted paths, array elements end in {}.
_SPLUNK = {n: n for n in AUDIT_FIELDS} | {"sourceIPs": "sourceIPs{}", "user.groups": "user.groups{}"}
_add(Target("splunk", "splunk:SplunkBackend", "Splunk SPL over sourcetype kube:apiserver:audit", _SPLUNK,
            condition={"sourcetype": "kube:apiserver:audit"}, formats=("default", "savedsearches")))

# Loki: the raw audit JSON lines, parsed with `| json`, which names a nested key with '_' between its parts
# and skips arrays.
_ARRAYS = {"sourceIPs": "an array (sourceIPs)", "user.groups": "an array (user.groups)"}
_add(Target("loki", "loki:LogQLBackend", "Grafana Loki LogQL over the raw audit JSON lines",
            {n: n.replace(".", "_") for n in AUDIT_FIELDS if n not in _ARRAYS},
            missing={n: "LogQL's json parser skips arrays: " + why for n, why in _ARRAYS.items()},
            attributes={"loki_parser": "json", "logsource_loki_selection": '{job="kubernetes-audit"}'},
            formats=("default", "ruler")))

# Azure Monitor's AKSAudit table (resource-specific diagnostic setting kube-audit): PascalCase columns,
# User, ObjectRef, ResponseStatus and ImpersonatedUser are dynamic (dotted access), SourceIps an array.
# A property of a dynamic column is itself dynamic: tostring()/toint() make =~, startswith and < apply.
_KUSTO = {
    "verb": "Verb", "requestURI": "RequestUri", "stage": "Stage", "auditID": "AuditId", "userAgent": "UserAgent",
    "user.username": "tostring(User.username)", "impersonatedUser.username": "tostring(ImpersonatedUser.username)",
    "objectRef.resource": "tostring(ObjectRef.resource)", "objectRef.subresource": "tostring(ObjectRef.subresource)",
    "objectRef.namespace": "tostring(ObjectRef.namespace)", "objectRef.name": "tostring(ObjectRef.name)",
    "responseStatus.code": "toint(ResponseStatus.code)",
}
_KUSTO_OPTIONS = (("field_quote_pattern", re.compile(r"^[\w.()]+$")), ("convert_or_as_in", False))
_add(Target("kusto", "kusto:KustoBackend", "Azure Monitor / Sentinel KQL over the AKSAudit table", _KUSTO,
            missing={n: "a dynamic array column in AKSAudit; an equality test on it needs set_has_element" for n in _ARRAYS},
            template="AKSAudit\n| where {query}",
            # the backend quotes any field name that is not a bare word, which would make these string literals;
            # and it folds ORs into `in~`, a string operator, also for the numeric response code
            options=_KUSTO_OPTIONS))
# The older AKS path: diagnostic setting kube-audit into AzureDiagnostics, the audit event as JSON text in log_s.
_add(Target("kusto-azurediagnostics", "kusto:KustoBackend", "KQL over AzureDiagnostics (Category kube-audit, the event in log_s)",
            {n: f"toint(audit.{n})" if n == "responseStatus.code" else f"tostring(audit.{n})" for n in AUDIT_FIELDS if n not in _ARRAYS},
            missing={n: "a list inside log_s; an equality test on it needs set_has_element" for n in _ARRAYS},
            template='AzureDiagnostics\n| where Category == "kube-audit"\n| extend audit = parse_json(log_s)\n| where {query}',
            options=_KUSTO_OPTIONS))


# SQLite over a table `logs` with one column per audit field (named by its JSON path, COLLATE NOCASE), the
# way Zircolite flattens JSON logs: a query here runs for real (tests check them against the records the
# rules fire on, export/evaluate.py builds such a table from audit JSON lines).
_add(Target("sqlite", "sqlite:sqliteBackend", "SQLite over a table of flattened audit events (Zircolite style)",
            {n: n for n in AUDIT_FIELDS if n not in _ARRAYS},
            missing={n: "a list; the flattened table holds one value per column" for n in _ARRAYS},
            formats=("default", "zircolite")))


def names() -> list[str]:
    return sorted(TARGETS)


def backend_class(target: Target) -> Callable[..., Any]:
    import importlib

    module, cls = target.backend.split(":")
    found: Callable[..., Any] = getattr(importlib.import_module(f"sigma.backends.{module}"), cls)
    return found


def backend(target: Target) -> Any:
    """A backend instance with the target's pipeline and options."""
    instance = backend_class(target)(processing_pipeline=pipeline(target))
    for key, value in target.options:
        setattr(instance, key, value)
    return instance


def pipeline(target: Target) -> Any:
    """The target's pySigma ProcessingPipeline."""
    from sigma.processing.conditions import IncludeFieldCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline, QueryPostprocessingItem
    from sigma.processing.postprocessing import QuerySimpleTemplateTransformation
    from sigma.processing.transformations import (
        AddConditionTransformation,
        DetectionItemFailureTransformation,
        FieldMappingTransformation,
        SetCustomAttributeTransformation,
    )

    mapping: dict[str | None, str | list[str]] = dict(target.fields.items())
    mapping.update({mine: target.fields[audit] for mine, audit in raw.PLAIN.items() if audit in target.fields})
    items = [ProcessingItem(identifier="execguard_expand", transformation=raw.ExpandFields())]
    for audit, why in target.missing.items():
        mine = [m for m, a in raw.PLAIN.items() if a == audit]
        items.append(ProcessingItem(
            identifier=f"execguard_missing_{audit}", transformation=DetectionItemFailureTransformation(f"{audit}: {why}"),
            field_name_conditions=[IncludeFieldCondition(fields=[audit, *mine])]))
    items.append(ProcessingItem(identifier="execguard_fields",
                                transformation=FieldMappingTransformation(mapping)))
    if target.condition:
        items.append(ProcessingItem(identifier="execguard_audit_events",
                                    transformation=AddConditionTransformation(target.condition, template=False)))  # type: ignore[arg-type]
    for key, value in target.attributes.items():
        items.append(ProcessingItem(identifier=f"execguard_{key}", transformation=SetCustomAttributeTransformation(key, value)))
    post = []
    if target.template:
        post.append(QueryPostprocessingItem(identifier="execguard_table",
                                            transformation=QuerySimpleTemplateTransformation(target.template)))
    return ProcessingPipeline(name=f"execguard Kubernetes audit fields for {target.name}", priority=20,
                              items=items, postprocessing_items=post)


