"""What counts as a format error in the ledger.

A call is *JSON-family* when any of these holds:
  1. it carries tool_calls (the model answered with a function call);
  2. its metadata asks for JSON: metadata["response_format"] is json, json_object or json_schema;
  3. its response looks like JSON: after stripping whitespace and one optional ``` / ```json
     fence, it starts with '{' or '['.

A JSON-family call is a format error when
  - tool_calls is present but is not valid JSON, or
  - the response is expected to be JSON (rule 2 or 3) and does not parse, ignoring one code
    fence. An empty response is fine when valid tool_calls carry the answer; with rule 2 and
    no tool_calls it is an error (the caller asked for JSON and got nothing).
Calls outside the family (plain prose) are never format errors: the ledger cannot tell what
shape prose should have. The outcome field (success/failure) is the service's own verdict and
is counted separately.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

JSON_RESPONSE_FORMATS = frozenset({"json", "json_object", "json_schema"})


def strip_fence(text: str) -> str:
    """The body of one ```...``` (or ```json ...```) fence, else the stripped text."""
    s = text.strip()
    if s.startswith("```"):
        first_newline = s.find("\n")
        body = s[first_newline + 1:] if first_newline >= 0 else ""
        if body.rstrip().endswith("```"):
            body = body.rstrip()[:-3]
        return body.strip()
    return s


def looks_like_json(text: str | None) -> bool:
    if not text:
        return False
    s = strip_fence(text)
    return s[:1] in ("{", "[")


def is_valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def expects_json(metadata: Mapping[str, Any] | None) -> bool:
    if not metadata:
        return False
    fmt = metadata.get("response_format")
    return isinstance(fmt, str) and fmt.strip().lower() in JSON_RESPONSE_FORMATS


def is_format_error(response: str | None, tool_calls: str | None, metadata: Mapping[str, Any] | None = None) -> bool:
    has_tools = bool(tool_calls and tool_calls.strip())
    if has_tools and not is_valid_json(tool_calls):  # type: ignore[arg-type]
        return True
    body = strip_fence(response or "")
    if expects_json(metadata):
        if not body:
            return not has_tools
        return not is_valid_json(body)
    if body[:1] in ("{", "["):
        return not is_valid_json(body)
    return False
