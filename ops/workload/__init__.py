"""Realistic agent traffic for the demo, tests and benchmarks.

Five everyday task families (DNS, user admin, file shares, ticket triage: JSON commands;
open questions: long prose) plus "calendar", held back for drift scenarios. Everything is a
deterministic function of the seed. Ground truth (family labels, canonical answers, planted
PII, duplicate links) is returned on the side, never stored in the events. See docs/workload.md.
"""
from __future__ import annotations

from .drift import DriftScenario, shifted_stream
from .examples import Example, iter_examples, make_examples, make_split
from .families import DEFAULT_FAMILIES, FAMILIES, FREE_TEXT_FAMILIES, JSON_FAMILIES, canonical_json
from .generator import (
    DEFAULT_START_TS,
    Workload,
    generate_events,
    generate_events_with_canaries,
    generate_labelled,
    generate_workload,
)
from .jsonl import read_jsonl, write_jsonl
from .labels import families_of, label_of
from .pii import iban_valid, luhn_valid
from .traffic import DEFAULT_PRICES

__all__ = [
    "FAMILIES", "DEFAULT_FAMILIES", "JSON_FAMILIES", "FREE_TEXT_FAMILIES", "DEFAULT_PRICES",
    "DEFAULT_START_TS", "Example", "make_examples", "make_split", "iter_examples", "canonical_json",
    "Workload", "generate_workload", "generate_events", "generate_events_with_canaries",
    "generate_labelled", "label_of", "families_of", "DriftScenario", "shifted_stream",
    "write_jsonl", "read_jsonl", "luhn_valid", "iban_valid",
]
