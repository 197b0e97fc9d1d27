"""Entity types, detected spans and the rule that settles overlaps."""
from __future__ import annotations

from bisect import bisect_left
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
    # Most often nothing overlaps once exact repeats (a name found again by its repeats) are
    # dropped: then every span is kept, and the settling below is not needed. (An empty span
    # and its repeat overlap nothing and are both kept below: those take the long way.)
    by_start = sorted(set(candidates))
    if all(a.start < a.end <= b.start for a, b in zip(by_start, by_start[1:])) \
            and by_start[-1].start < by_start[-1].end:
        return by_start
    ordered = sorted(candidates, key=lambda s: (-PRIORITY[s.type], s.start - s.end, s.start))
    kept: list[Span] = []
    taken: list[tuple[int, int]] = []       # (start, end) of kept, sorted
    for s in ordered:
        # Kept spans do not overlap, so sorted by start their ends rise too: the last one that
        # starts before s ends is the only one that can reach into s.
        i = bisect_left(taken, (s.end,))
        if i and taken[i - 1][1] > s.start:
            continue
        taken.insert(i, (s.start, s.end))
        kept.append(s)
    kept.sort()
    return kept
