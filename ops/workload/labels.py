"""The ground-truth side table: event_id -> task family, kept outside the events.

Events carry nothing that names their family, so the pipeline cannot cheat; benchmarks ask
`label_of(event)` here. The table is bounded (oldest entries are forgotten first).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Mapping

MAX_ENTRIES = 2_000_000
_TABLE: "OrderedDict[str, str]" = OrderedDict()


def register(event_ids: Iterable[str], families: Iterable[str]) -> None:
    for event_id, family in zip(event_ids, families):
        _TABLE[event_id] = family
        _TABLE.move_to_end(event_id)
    while len(_TABLE) > MAX_ENTRIES:
        _TABLE.popitem(last=False)


def label_of(event: Mapping | str) -> str:
    """The family of an event generated in this process (by dict or by event_id).
    Raises KeyError for events this process did not generate."""
    event_id = event if isinstance(event, str) else event["event_id"]
    return _TABLE[event_id]


def families_of(events: Iterable[Mapping | str]) -> list[str]:
    return [label_of(e) for e in events]
