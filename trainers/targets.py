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
import re

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.S)
_PREFACE = re.compile(r"^[^\n{}\[\]]{1,80}:\s*\n")   # one short line ending in a colon


def _json_container(text: str) -> object | None:
    s = text.strip()
    if not s or s[0] not in "{[":
        return None
    try:
        value = json.loads(s)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def training_target(response: str) -> str:
    """The response as the adapter should learn it (see the module docstring)."""
    text = response.strip()
    body = _PREFACE.sub("", text, count=1)
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    value = _json_container(body)
    if value is None:
        return response
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
