"""Sources turn raw records into normalized Events. Each module handles one format.

JSON sources are tried per record in this order (the first whose ``match`` accepts it wins),
so one stream may mix formats; text sources are chosen per file by sniffing.
"""

from __future__ import annotations

from types import ModuleType

from . import aks, auditd, docker_events, dockerd_log, eks, falco, gke, k8s_audit, kubearmor, tetragon
from .base import JsonSource

JSON_SOURCES: list[JsonSource] = [k8s_audit, eks, gke, aks, docker_events, falco, kubearmor, tetragon]

# Line-oriented text formats, chosen per file by their module's sniff(head: bytes) -> bool.
# Each module has FORMAT, LITERALS (lines the prefilter must keep, see pipeline/prefilter.py) and Parser(file) -> TextParser.
TEXT_SOURCES: list[ModuleType] = [dockerd_log, auditd]

FORMATS = ["auto"] + [s.FORMAT for s in JSON_SOURCES] + [m.FORMAT for m in TEXT_SOURCES]


def json_source(name: str) -> JsonSource | None:
    for src in JSON_SOURCES:
        if src.FORMAT == name:
            return src
    return None

