"""What an adapter learns to say: the teacher's answer, with a JSON answer in one spelling.

Recorded frontier answers to the same kind of request come in several spellings of the same
JSON value: bare and compact, fenced (```json) and indented, or behind a line of prose
("Here is the command:"). Exact match and serving's shadow comparison judge JSON answers by
value, so the spelling carries nothing to learn, yet on a few hundred examples three
spellings cost a small model real capacity (and indented JSON twice the tokens). The
training target is therefore the JSON value in compact form, keys in the teacher's order;
any other answer (prose, or prose around JSON) is learnt exactly as written. Evaluation
still compares against the teacher's original text. Pure.
"""
from __future__ import annotations

import json

from schemas.scoring import parse_json


def training_target(response: str) -> str:
    """The response as the adapter should learn it (see the module docstring)."""
    value = parse_json(response)
    if not isinstance(value, (dict, list)):
        return response
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
