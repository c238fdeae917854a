"""Coverage of a live API listing: one item per list the collection could not read."""

from __future__ import annotations

from ..engine import Item
from ..gather.inputs import COVERAGE_KIND, Inputs


def coverage_items(inputs: Inputs) -> list[Item]:
    """One item per list the live collection could not read."""
    items = []
    for o in inputs.of_kind(COVERAGE_KIND):
        for gap in o.data.get("gaps") or []:
            facts = {"api": o.name, **gap}
            items.append(Item("kube_api_coverage", f"{o.name} list {gap['list']}", facts, o.file, None))
    return items
