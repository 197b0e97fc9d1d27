"""The redaction stage's entry point: Redactor.redact_event / redact_batch / redact_text."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .addresses import find_addresses
from .names import NameTagger
from .patterns import find_structured
from .replace import EventAssigner, apply
from .secrets import find_secrets, secret_for_key
from .spans import PERSON, SECRET, Span, resolve

# Bump when a rule change can change output; it is stored beside every redacted event.
RULESET_VERSION = "2025.2"

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
        candidates = find_secrets(text) + find_structured(text)
        if self._names is not None:
            candidates += find_addresses(text) + self._names.find(text)
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
        assigner = EventAssigner(event_id, self.mode)
        counts: dict[str, int] = {}
        out_texts: dict[str, str | None] = {}
        for name, text in texts.items():
            if not text:
                out_texts[name] = text
                continue
            spans = self.detect(text)
            _count(counts, spans)
            out_texts[name] = apply(text, spans, assigner)
        out_meta: dict[str, str] = {}
        for key, value in (metadata or {}).items():
            if not value:
                out_meta[key] = value
                continue
            spans = self._detect_value(key, value)
            _count(counts, spans)
            out_meta[key] = apply(value, spans, assigner)
        return RedactedEvent(out_texts, out_meta, counts)

    def redact_batch(self, events: Iterable[tuple[str, Mapping[str, str | None], Mapping[str, str] | None]]
                     ) -> list[RedactedEvent]:
        """Many events, each (event_id, texts, metadata): one result per event, in order."""
        return [self.redact_event(eid, texts, meta) for eid, texts, meta in events]

    def redact_text(self, text: str, event_id: str = "") -> str:
        """One-off redaction of a single string (previews, logs)."""
        return self.redact_event(event_id, {"text": text}).texts["text"] or ""

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


def _count(counts: dict[str, int], spans: list[Span]) -> None:
    for s in spans:
        counts[s.type] = counts.get(s.type, 0) + 1
