"""The redaction stage's entry point: Redactor.redact_event / redact_batch / redact_text."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .addresses import find_addresses
from .names import NameTagger
from .patterns import find_structured
from .replace import EventAssigner, apply
from .secrets import find_secrets, secret_for_key
from .spans import PERSON, SECRET, Span, resolve

# Bump when a rule change can change output; it is stored beside every redacted event.
RULESET_VERSION = "2025.3"

MODES = ("placeholder", "fake")
TEXT_FIELDS = ("prompt", "response", "tool_calls")


@dataclass
class RedactedEvent:
    texts: dict[str, str | None]
    metadata: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)   # entity type -> spans replaced


class Redactor:
    """Finds PII and secrets and replaces them consistently within one event.

    ner=False turns off PERSON and ADDRESS recognition (the only parts that need word lists)
    for maximum throughput; everything else is always on.
    """

    def __init__(self, ner: bool = True, mode: str = "placeholder"):
        if mode not in MODES:
            raise ValueError(f"redaction mode {mode!r} is not one of {', '.join(MODES)}")
        self.ner = ner
        self.mode = mode
        self._names = NameTagger() if ner else None

    # ---- detection ---------------------------------------------------------------------------
    def detect(self, text: str) -> list[Span]:
        """Non-overlapping entity spans in `text`, sorted by start."""
        if not text:
            return []
        low = text.lower()                  # read by every finder but the structured one
        candidates = find_secrets(text, low) + find_structured(text)
        if self._names is not None:
            candidates += find_addresses(text, low) + self._names.find(text, low)
        return resolve(candidates)

    def _detect_value(self, key: str, value: str) -> list[Span]:
        """A metadata value, read with its key as context ("phone": "4155550134")."""
        if secret_for_key(key, value):
            return [Span(0, len(value), SECRET)]
        if self._names is not None and self._names.value_for_key(key, value):
            return [Span(0, len(value), PERSON)]
        prefix = f"{key}: "
        spans = self.detect(prefix + value)
        off = len(prefix)
        return [Span(s.start - off, s.end - off, s.type) for s in spans if s.start >= off]

    # ---- replacement -------------------------------------------------------------------------
    def redact_event(self, event_id: str, texts: Mapping[str, str | None],
                     metadata: Mapping[str, str] | None = None) -> RedactedEvent:
        # Pass 1 finds entities field by field; pass 2 replaces every other occurrence of a found
        # value anywhere in the event. A value may be recognisable in one place only (a username
        # under a "username" key, a name after "Dear") and must not survive in the others, and
        # a training example needs the same placeholder in its prompt and its answer.
        fields: list[tuple[str, str, str, list[Span]]] = []   # (kind, name, text, spans)
        for name, text in texts.items():
            if text:
                fields.append(("text", name, text, self.detect(text)))
        for key, value in (metadata or {}).items():
            if value:
                fields.append(("meta", key, value, self._detect_value(key, value)))
        found = _found_values(fields)
        assigner = EventAssigner(event_id, self.mode)
        counts: dict[str, int] = {}
        out_texts: dict[str, str | None] = {name: text for name, text in texts.items() if not text}
        out_meta: dict[str, str] = {key: value for key, value in (metadata or {}).items() if not value}
        for kind, name, text, spans in fields:
            if found is not None:
                spans = resolve(spans + _occurrences(text, found))
            _count(counts, spans)
            (out_texts if kind == "text" else out_meta)[name] = apply(text, spans, assigner)
        out_texts = {name: out_texts[name] for name in texts}
        out_meta = {key: out_meta[key] for key in (metadata or {})}
        return RedactedEvent(out_texts, out_meta, counts)

    def redact_batch(self, events: Iterable[tuple[str, Mapping[str, str | None], Mapping[str, str] | None]]
                     ) -> list[RedactedEvent]:
        """Many events, each (event_id, texts, metadata): one result per event, in order."""
        return [self.redact_event(eid, texts, meta) for eid, texts, meta in events]

    def redact_text(self, text: str, event_id: str = "") -> str:
        """One-off redaction of a single string (previews, logs)."""
        return self.redact_event(event_id, {"text": text}).texts["text"] or ""

    def pseudonymise(self, text: str) -> tuple[str, dict[str, str]]:
        """(redacted text, replacement -> original value): the reversible form serving uses, so
        a specialist answers the request as it was trained (on redacted traffic) and its answer
        gets the caller's real values back (restore())."""
        spans = self.detect(text)
        if not spans:
            return text, {}
        assigner = EventAssigner("", self.mode)
        originals: dict[str, str] = {}
        for sp in spans:
            originals.setdefault(assigner.replacement(sp.type, text[sp.start:sp.end]), text[sp.start:sp.end])
        return apply(text, spans, assigner), originals

    def redact_observations(self, observations: list[dict[str, Any]]) -> None:
        """In place, for the ingest agent: prompt, response, tool_calls and metadata values of
        each observation record are replaced; pii_counts and redaction_version are set."""
        for obs in observations:
            texts = {f: obs.get(f) for f in TEXT_FIELDS}
            result = self.redact_event(str(obs["event_id"]), texts, obs.get("metadata") or {})
            for f in TEXT_FIELDS:
                obs[f] = result.texts[f]
            obs["metadata"] = result.metadata
            obs["pii_counts"] = result.counts
            obs["redaction_version"] = RULESET_VERSION


def restore(answer: str, originals: Mapping[str, str]) -> str:
    """Put the original values back in place of their replacements. Inside a JSON answer a
    value is written JSON-escaped, so the answer stays valid JSON."""
    if not originals or not answer:
        return answer
    looks_json = answer.lstrip().startswith(("{", "["))
    pattern = re.compile("|".join(re.escape(k) for k in sorted(originals, key=len, reverse=True)))
    return pattern.sub(lambda m: json.dumps(originals[m.group(0)], ensure_ascii=False)[1:-1] if looks_json
                       else originals[m.group(0)], answer)


def _count(counts: dict[str, int], spans: list[Span]) -> None:
    for s in spans:
        counts[s.type] = counts.get(s.type, 0) + 1


# Values shorter than this are not propagated: "Li" or "Ana" also occur inside ordinary words.
MIN_PROPAGATED_LEN = 4


def _found_values(fields: list[tuple[str, str, str, list[Span]]]) -> tuple[Any, dict[str, str]] | None:
    """A regex matching every value found in pass 1 as a whole token, and value -> type."""
    types: dict[str, str] = {}
    for _, _, text, spans in fields:
        for sp in spans:
            value = text[sp.start:sp.end].strip()
            if len(value) >= MIN_PROPAGATED_LEN and value not in types:
                types[value] = sp.type
    if not types:
        return None
    alternation = "|".join(re.escape(v) for v in sorted(types, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)"), types


def _occurrences(text: str, found: tuple[Any, dict[str, str]]) -> list[Span]:
    pattern, types = found
    return [Span(m.start(), m.end(), types[m.group(0)]) for m in pattern.finditer(text)]
