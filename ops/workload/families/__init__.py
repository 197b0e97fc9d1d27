"""Task families: each module exposes NAME and ``sample(rng, typo_rate) -> Task``."""
from __future__ import annotations

from . import calendar, dns, fileshare, questions, tickets, users
from .base import Task, canonical_json

_MODULES = (dns, users, fileshare, tickets, questions, calendar)
SAMPLERS = {m.NAME: m.sample for m in _MODULES}
FAMILIES: tuple[str, ...] = tuple(SAMPLERS)
# The everyday mix; calendar is held back for drift scenarios ("a new task appears").
DEFAULT_FAMILIES: tuple[str, ...] = ("dns", "user_admin", "file_share", "ticket_triage", "open_question")
JSON_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f != questions.NAME)
FREE_TEXT_FAMILIES: tuple[str, ...] = (questions.NAME,)

__all__ = ["SAMPLERS", "FAMILIES", "DEFAULT_FAMILIES", "JSON_FAMILIES", "FREE_TEXT_FAMILIES",
           "Task", "canonical_json"]
