"""Entity types, detected spans and the rule that settles overlaps."""
from __future__ import annotations

from typing import NamedTuple

EMAIL = "EMAIL"
PHONE = "PHONE"
CREDIT_CARD = "CREDIT_CARD"
IBAN = "IBAN"
US_SSN = "US_SSN"
IP_ADDRESS = "IP_ADDRESS"
SECRET = "SECRET"
PERSON = "PERSON"
ADDRESS = "ADDRESS"

ENTITY_TYPES = (EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS, SECRET, PERSON, ADDRESS)

# When two candidates overlap the higher one wins: a checksum or a provider prefix is
# stronger evidence than a digit shape, and any of those beats a name guess.
PRIORITY = {SECRET: 90, EMAIL: 80, IBAN: 70, CREDIT_CARD: 60, US_SSN: 50, IP_ADDRESS: 45,
            ADDRESS: 40, PHONE: 30, PERSON: 20}


class Span(NamedTuple):
    start: int
    end: int
    type: str


def resolve(candidates: list[Span]) -> list[Span]:
    """Keep a non-overlapping subset: by priority, then the longer span; sorted by start."""
    if len(candidates) < 2:
        return list(candidates)
    ordered = sorted(candidates, key=lambda s: (-PRIORITY[s.type], s.start - s.end, s.start))
    kept: list[Span] = []
    for s in ordered:
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    kept.sort()
    return kept
