"""What every task family produces: a prompt and the answer the generator knows to be right."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping


def canonical_json(answer: Mapping[str, Any]) -> str:
    """The one spelling of an answer used for training targets: sorted keys, compact."""
    return json.dumps(answer, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Task:
    """One sampled request. ``answer`` is the ground-truth command (None for free-text
    families); ``reference`` is what a correct frontier model replies; ``tool`` names the
    function an agent would call with ``answer`` as arguments."""

    family: str
    prompt: str
    answer: dict | None
    reference: str
    tool: str | None = None
