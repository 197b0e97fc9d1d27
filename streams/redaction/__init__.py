"""PII and secret redaction for the ingest stage (pure logic, no I/O).

    from streams.redaction import Redactor, RULESET_VERSION
    r = Redactor(ner=True, mode="placeholder")          # or mode="fake"
    out = r.redact_event(event_id, {"prompt": p, "response": q, "tool_calls": t}, metadata)
    out.texts, out.metadata, out.counts                 # counts: {"EMAIL": 2, ...}

See docs/redaction.md for the entity types, the rules and the measured quality and speed.
"""
from .redactor import MODES, RULESET_VERSION, RedactedEvent, Redactor, restore
from .spans import ENTITY_TYPES, Span

__all__ = ["Redactor", "RedactedEvent", "restore", "RULESET_VERSION", "MODES", "ENTITY_TYPES", "Span",
           "redact_text"]

_default: Redactor | None = None


def redact_text(text: str) -> str:
    """Placeholder redaction of one string with the full rule set (module-level convenience)."""
    global _default
    if _default is None:
        _default = Redactor()
    return _default.redact_text(text)
