"""A prompt's template skeleton: the literal words that stay when slot values are abstracted.

Templated agent traffic differs mostly in slot values (host names, user names, paths, numbers,
dates, redaction placeholders such as <EMAIL_1>). Replacing them with typed markers yields a
skeleton that (a) carries the task's structure rather than its data and (b) repeats, so the
expensive text encoder can be cached on it.
"""
from __future__ import annotations

import re

# Order matters: the most specific shapes first, so an e-mail is not taken for a host name.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # redaction placeholders (<EMAIL_1>, <CREDIT_CARD_2>) lose their index and underscores
    (re.compile(r"<([A-Z][A-Z_]*?)(?:_\d+)?>"), lambda m: "<" + m.group(1).replace("_", "") + ">"),
    (re.compile(r"```[a-z]*"), " "),                                             # code fences
    (re.compile(r"\bhttps?://\S+"), "<URL>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<EMAIL>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?\b"), "<IP>"),
    (re.compile(r"\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b", re.I), "<IP>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+Z?)?\b"), "<DATE>"),
    (re.compile(r"(?<![\w<])/[\w.-]+(?:/[\w.-]+)*/?"), "<PATH>"),
    (re.compile(r"\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|dev|cloud|eu|uk|de|fr|co|app|ai|local|internal|corp|tech|info|biz|us)\b", re.I), "<HOST>"),
    (re.compile(r"@[\w.-]+"), "<USER>"),
    (re.compile(r"#\d+"), "#<NUM>"),
    (re.compile(r"\b\d+(?:[smhd]|ms|min|gb|mb|kb|am|pm)\b", re.I), "<NUM>"),      # quantities with units
    # identifiers: user names like a.ramos or mensah_r17, tokens mixing letters and digits
    (re.compile(r"\b[a-z]+(?:[._][a-z0-9]+)+\b|\b[a-z]+[_-]?\d+[a-z0-9]*\b|\b\d+[a-z]+[a-z0-9]*\b", re.I), "<ID>"),
    (re.compile(r"\b\d[\d,. ]*\d\b|\b\d\b"), "<NUM>"),
    (re.compile(r"\s+"), " "),
)
_MARKER_RUN = re.compile(r"(<[A-Z]+>)(?:[\s,;]*\1)+")


def skeleton(text: str, max_chars: int = 600) -> str:
    """Lower-cased template skeleton of ``text`` (first ``max_chars`` characters only:
    the head of a prompt says what the task is; the tail is mostly payload)."""
    s = text[:max_chars]
    for pattern, repl in _RULES:
        s = pattern.sub(repl, s)
    s = _MARKER_RUN.sub(r"\1", s)
    # Markers stay upper case so they never collide with a literal word.
    return re.sub(r"[^<>]+(?=<|$)", lambda m: m.group(0).lower(), s).strip()
