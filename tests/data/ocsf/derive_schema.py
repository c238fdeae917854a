"""Derive a JSON schema for the OCSF Detection Finding class (2004) from an ocsf/ocsf-schema checkout.

Usage: python derive_schema.py OCSF_SCHEMA_DIR > detection_finding-1.1.0.schema.json

It compiles the class as the OCSF server does: the ``extends`` chain (detection_finding -> finding ->
base_event), ``$include`` of profile and include files, attribute definitions from dictionary.json with the
class's overrides, objects (and their ``extends``) from objects/. Each object becomes a ``$defs`` entry.
A required attribute is required (a profile's only where the profile is applied: here never);
``*_id`` attributes with an enum take its keys; no attribute outside the class or object is allowed
(as the OCSF server's validator reports unknown attributes); no value is null.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
DICT = json.loads((ROOT / "dictionary.json").read_text())
TYPES = DICT["types"]["attributes"]
BASIC = {"string_t": "string", "integer_t": "integer", "long_t": "integer", "float_t": "number", "boolean_t": "boolean"}


def load(rel: str) -> dict[str, Any]:
    return json.loads((ROOT / rel).read_text())


def find(kind: str, name: str) -> dict[str, Any]:
    for p in sorted((ROOT / kind).rglob("*.json")):
        d = json.loads(p.read_text())
        if d.get("name") == name:
            return d
    raise KeyError(f"{kind} {name}")


def attributes(d: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The attributes of a class or object with its parents and includes merged (later wins)."""
    out: dict[str, dict[str, Any]] = {}
    if d.get("extends"):
        out.update(attributes(find(kind, d["extends"]), kind))
    own = dict(d.get("attributes") or {})
    for inc in own.pop("$include", []):
        optional = inc.startswith("profiles/")  # a profile's attributes are required only where it is applied
        for name, a in attributes(load(inc), kind).items():
            out[name] = {**out.get(name, {}), **a, **({"from_profile": True} if optional else {})}
    for name, a in own.items():
        out[name] = {**out.get(name, {}), **a}
    return out


def base_type(t: str) -> str | None:
    while t not in BASIC:
        if t == "json_t":
            return None
        nxt = TYPES.get(t, {}).get("type")
        if nxt is None:
            return "object"
        t = nxt
    return BASIC[t]


DEFS: dict[str, Any] = {}


def schema_of(name: str, a: dict[str, Any]) -> dict[str, Any]:
    full = {**DICT["attributes"].get(name, {}), **a}
    t = full.get("type", "string_t")
    bt = base_type(t)
    if t == "object":
        one: dict[str, Any] = {"type": "object"}  # object_t: any attributes (unmapped, for one)
    elif bt == "object":
        obj(t)
        one = {"$ref": f"#/$defs/{t}"}
    elif bt is None:
        one = {}
    else:
        one = {"type": bt}
        if full.get("enum") and bt == "integer":
            one["enum"] = sorted(int(k) for k in full["enum"])
    return {"type": "array", "items": one} if full.get("is_array") else one


def shape(attrs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    props = {n: schema_of(n, a) for n, a in sorted(attrs.items())}
    required = sorted(n for n, a in attrs.items() if a.get("requirement") == "required" and not a.get("from_profile"))
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def obj(name: str) -> None:
    if name in DEFS:
        return
    DEFS[name] = {}  # placeholder: objects refer to each other
    DEFS[name] = shape(attributes(find("objects", name), "objects"))


def main() -> None:
    cls = find("events", "detection_finding")
    category = load("categories.json")["attributes"][cls["category"]]["uid"]
    class_uid = category * 1000 + cls["uid"]
    attrs = attributes(cls, "events")
    top = shape(attrs)
    top["properties"]["class_uid"] = {"const": class_uid}
    top["properties"]["category_uid"] = {"const": category}
    activities = sorted(int(k) for k in {**DICT["attributes"]["activity_id"].get("enum", {}), **attrs["activity_id"].get("enum", {})})
    top["properties"]["type_uid"] = {"enum": [class_uid * 100 + a for a in activities]}
    version = load("version.json")["version"]
    out = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://schema.ocsf.io/{version}/classes/detection_finding",
        "title": f"OCSF {version} Detection Finding ({class_uid}), derived from ocsf/ocsf-schema by derive_schema.py",
        **top,
        "$defs": dict(sorted(DEFS.items())),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


main()
