"""Copy-constrained decoding: each string value of a JSON answer must be one the field held in
training, or, for a field whose values are copied from the request, a span of the request.

A small specialist that extracts fields from a request gets the structure right long before it
copies every span letter for letter; its typical errors are a plausible value that is nowhere
in the request ("hostners" for "partners", "ameliak" for "ameliat") and an enum value it never
saw ("reactivate" for "enable_user"). The training answers say, per field, which kind it is:
a field most of whose values occur in their requests is copied (a login, a host name, a path);
any other field is a closed set (actions, record types). Greedy decoding then takes, at each
step, the most likely token that keeps every string value of the answer so far consistent:
an open value must be a prefix of a value the field held, or (copied fields) a span of the
request starting at a word boundary; a closed value must be one the field held or occur in
the request as a whole token. Keys, numbers, unknown fields and prose are not constrained; the
answer may not end inside unfinished JSON; when no token fits, the model's own choice stands.

Whether an adapter uses it is decided by measurement: the trainer scores the held-out split
both ways and keeps copy decoding only when it does at least as well (decoding.json beside the
adapter weights, covered by the signed manifest). Pure logic plus one transformers
LogitsProcessor; shared by the trainer's evaluation and serving.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from schemas.scoring import parse_json

DECODING_FILE = "decoding.json"
MODE_COPY, MODE_FREE = "copy", "free"
WORD_CHARS = r"A-Za-z0-9_\-"   # a value copied as a whole token has none of these beside it


def scan_values(text: str) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """(closed string values, the open one or None) of a JSON prefix, each as (field path,
    value). Keys are not values; strings inside arrays are, under the path "<key>[]"."""
    closed: list[tuple[str, str]] = []
    stack: list[list] = []           # [kind, current key] per open container
    expect_key = in_str = is_key = esc = False
    buf: list[str] = []

    def path() -> str:
        parts = []
        for kind, key in stack:
            parts.append("[]" if kind == "[" else f".{key}")
        return "$" + "".join(parts)

    for ch in text:
        if in_str:
            if esc:
                buf.append(ch)
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                if is_key:
                    stack[-1][1] = "".join(buf)
                else:
                    closed.append((path(), "".join(buf)))
            else:
                buf.append(ch)
            continue
        if ch == '"':
            in_str, is_key, buf = True, bool(stack) and stack[-1][0] == "{" and expect_key, []
        elif ch in "{[":
            stack.append([ch, ""])
            expect_key = ch == "{"
        elif ch in "}]":
            if stack:
                stack.pop()
            expect_key = False
        elif ch == ":":
            expect_key = False
        elif ch == ",":
            expect_key = bool(stack) and stack[-1][0] == "{"
    return closed, ((path(), "".join(buf)) if in_str and not is_key else None)


def string_leaves(value: Any, path: str = "$") -> Iterable[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from string_leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from string_leaves(v, f"{path}[]")
    elif isinstance(value, str):
        yield path, value


def _left(dot_ok: bool) -> str:
    # not inside a word; and, unless the field allows it, not the tail of a dotted name
    return rf"(?<![{WORD_CHARS}])" + ("" if dot_ok else rf"(?<![{WORD_CHARS}]\.)")


def _right(dot_ok: bool) -> str:
    return rf"(?![{WORD_CHARS}])" + ("" if dot_ok else rf"(?!\.[{WORD_CHARS}])")


_WORD_SET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")   # WORD_CHARS


def occurs(value: str, text: str, dot_left: bool = True, dot_right: bool = True) -> bool:
    """`value` is in `text` as a whole token (not inside a longer word; with dot_left /
    dot_right False, not a piece of a longer dotted name either). The same test as the
    _left/_right patterns, by str.find: augmentation asks it for thousands of distinct values,
    and a compiled pattern each was most of its time."""
    if not value:
        return False
    word, n, size = _WORD_SET, len(value), len(text)
    start = text.find(value)
    while start >= 0:
        end = start + n
        if not ((start > 0 and text[start - 1] in word)
                or (not dot_left and start >= 2 and text[start - 1] == "." and text[start - 2] in word)
                or (end < size and text[end] in word)
                or (not dot_right and end + 1 < size and text[end] == "." and text[end + 1] in word)):
            return True
        start = text.find(value, start + 1)
    return False


def _dotted(value: str, text: str) -> tuple[bool, bool]:
    """Does the whole-token occurrence of `value` in `text` sit inside a dotted name, on the
    left ("api.<value>") or on the right ("<value>.example.com")?"""
    m = re.search(_left(True) + re.escape(value) + _right(True), text)
    if m is None:
        return False, False
    left = m.start() >= 2 and text[m.start() - 1] == "." and re.match(rf"[{WORD_CHARS}]", text[m.start() - 2]) is not None
    right = m.end() + 1 < len(text) and text[m.end()] == "." and re.match(rf"[{WORD_CHARS}]", text[m.end() + 1]) is not None
    return left, right


@dataclass(frozen=True)
class Field:
    """What one field of the training answers held. A copied field takes spans of the request
    (with the boundaries seen in training) or one of its constants (values that were not in
    their request, like "@"); any other field is the closed set of its values."""

    copied: bool
    values: frozenset[str]                    # every value seen
    constants: frozenset[str] = frozenset()   # values seen that were not in their request
    dot_left: bool = False                    # a copied span may end a dotted name
    dot_right: bool = False                   # ... or start one

    @cached_property
    def allowed(self) -> frozenset[str]:
        return self.constants if self.copied else self.values

    @cached_property
    def prefixes(self) -> frozenset[str]:
        return frozenset(v[:i] for v in self.allowed for i in range(len(v) + 1))


@dataclass(frozen=True)
class CopyRule:
    """Which string values an answer to one request may hold."""

    prompt: str
    fields: Mapping[str, Field]

    def open_ok(self, path: str, partial: str) -> bool:
        f = self.fields.get(path)
        if f is None or partial in f.prefixes:
            return True
        return f.copied and (not partial or re.search(_left(f.dot_left) + re.escape(partial), self.prompt) is not None)

    def closed_ok(self, path: str, value: str) -> bool:
        f = self.fields.get(path)
        if f is None or value in f.allowed:
            return True
        return f.copied and occurs(value, self.prompt, f.dot_left, f.dot_right)

    def text_ok(self, before: str, after: str) -> bool:
        """May the answer grow from `before` to `after`? Only the values it touches are judged."""
        if not after.lstrip().startswith(("{", "[")):
            return True   # prose: not constrained
        n_before = len(scan_values(before)[0])
        closed, open_value = scan_values(after)
        if any(not self.closed_ok(p, v) for p, v in closed[n_before:]):
            return False
        return open_value is None or self.open_ok(*open_value)


@dataclass(frozen=True)
class CopyVocabulary:
    """Per field of a specialist's training answers, what it may hold (Field). Saved beside
    the adapter."""

    fields: Mapping[str, Field]

    @property
    def known(self) -> bool:
        return bool(self.fields)

    @classmethod
    def from_examples(cls, pairs: Iterable[tuple[str, str]], copied_share: float = 0.5,
                      closed_set_share: float = 0.05, closed_set_min: int = 40,
                      derived_share: float = 0.5) -> "CopyVocabulary":
        """From (prompt, answer) pairs; prose answers are skipped. A field is copied when at
        least `copied_share` of its values occur in their request, unless its distinct values
        are at most `closed_set_share` of its (>= closed_set_min) occurrences; a field that is
        not copied is a closed set, unless more than `derived_share` of its occurrences bring
        a new value (derived from the request, like an ISO date from "May 3"): then it is free."""
        stats: dict[str, dict[str, Any]] = {}
        for prompt, text in pairs:
            answer = parse_json(text)
            if not isinstance(answer, (dict, list)):
                continue
            for path, value in string_leaves(answer):
                st = stats.setdefault(path, {"values": set(), "constants": Counter(), "in": 0, "n": 0, "l": False, "r": False})
                st["values"].add(value)
                st["n"] += 1
                if occurs(value, prompt):
                    st["in"] += 1
                    left, right = _dotted(value, prompt)
                    st["l"] |= left
                    st["r"] |= right
                else:
                    st["constants"][value] += 1
        fields = {}
        for p, st in stats.items():
            # a field with a handful of values over many answers is a closed set even when the
            # request spells them out (a record type): any other word of the request is wrong
            closed_set = st["n"] >= closed_set_min and len(st["values"]) <= closed_set_share * st["n"]
            copied = st["in"] >= copied_share * st["n"] and not closed_set
            if not copied and not closed_set and len(st["values"]) > derived_share * st["n"]:
                continue   # mostly new values not in the request: derived (a date), left free
            # a constant of a copied field must recur: a one-off is more likely a teacher's slip
            constants = frozenset(v for v, n in st["constants"].items() if n >= 2)
            fields[p] = Field(copied, frozenset(st["values"]), constants, st["l"], st["r"])
        return cls(fields)

    def rule(self, prompt: str) -> CopyRule:
        return CopyRule(prompt, self.fields)

    def save(self, adapter_dir: Path, mode: str) -> Path:
        path = Path(adapter_dir) / DECODING_FILE
        doc = {"mode": mode, "fields": {p: {"copied": f.copied, "values": sorted(f.values), "constants": sorted(f.constants),
                                            "dot_left": f.dot_left, "dot_right": f.dot_right}
                                        for p, f in sorted(self.fields.items())}}
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
        return path


def load_decoding(adapter_dir: Path) -> CopyVocabulary | None:
    """The adapter's copy vocabulary when it decodes in copy mode, else None."""
    path = Path(adapter_dir) / DECODING_FILE
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if doc.get("mode") != MODE_COPY:
        return None
    return CopyVocabulary({p: Field(bool(f["copied"]), frozenset(map(str, f["values"])), frozenset(map(str, f.get("constants", []))),
                                    bool(f.get("dot_left")), bool(f.get("dot_right")))
                           for p, f in doc.get("fields", {}).items()})


MAX_CANDIDATES = 256   # tokens tried per step, best first, before the model's own choice stands


def logits_processor(tokenizer: Any, rules: Sequence[CopyRule], prompt_width: int) -> Any:
    """A transformers LogitsProcessor enforcing rules[row] on row `row` of a greedy batch whose
    prompts (left-padded) end at column prompt_width."""
    import torch
    from transformers import LogitsProcessor

    eos = tokenizer.eos_token_id

    class _CopyProcessor(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            for row, rule in enumerate(rules):
                generated = input_ids[row, prompt_width:].tolist()
                before = tokenizer.decode(generated, skip_special_tokens=True)
                if before.strip() and not before.lstrip().startswith(("{", "[")):
                    continue   # prose
                _, open_value = scan_values(before)
                # a candidate's text is decoded after the last token, so tokenizers that drop a
                # word's leading space when it is decoded alone give the same text as in context
                tail = generated[-1:]
                tail_text = tokenizer.decode(tail, skip_special_tokens=True)
                order = torch.topk(scores[row], min(MAX_CANDIDATES, scores.shape[-1])).indices.tolist()
                choice = None
                for tok in order:   # nearly always the first or second candidate
                    if tok == eos:
                        if isinstance(parse_json(before), (dict, list)):
                            choice = tok
                            break
                        continue    # never stop inside an unfinished JSON answer
                    piece = tokenizer.decode(tail + [tok], skip_special_tokens=True)[len(tail_text):]
                    if '"' not in piece and "\\" not in piece:
                        # the common case: the token extends a value, a key, or punctuation
                        ok = open_value is None or rule.open_ok(open_value[0], open_value[1] + piece)
                    else:
                        ok = rule.text_ok(before, before + piece)
                    if ok:
                        choice = tok
                        break
                if choice is not None and choice != order[0]:
                    scores[row, choice] = scores[row, order[0]] + 1.0
            return scores

    return _CopyProcessor()
