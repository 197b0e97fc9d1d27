"""What a detected span becomes: a typed placeholder (<EMAIL_1>) or a realistic fake, the same
one for the same value everywhere in one event.

Numbering follows first appearance across the event's fields in the order they are given, so
a replay of the same event gives the same text (idempotent sinks rely on it). Fakes are seeded
by (event_id, type, number): deterministic per event, unrelated across events.
"""
from __future__ import annotations

import hashlib
import ipaddress
import random
import re
from functools import lru_cache

from .checksums import digits_of, luhn_ok
from .lexicon import load
from .spans import (ADDRESS, CREDIT_CARD, EMAIL, IBAN, IP_ADDRESS, PERSON, PHONE, SECRET, US_SSN,
                    Span)

_SPACE = re.compile(r"\s+")


def normalise(kind: str, value: str) -> str:
    """Two spellings of one value map to one key: case, spacing and formatting do not count."""
    if kind == EMAIL:
        return value.replace("%40", "@").lower()
    if kind in (PHONE, CREDIT_CARD, US_SSN):
        return digits_of(value)
    if kind == IBAN:
        return "".join(value.split()).upper()
    if kind == IP_ADDRESS:
        try:
            return str(ipaddress.ip_address(value.split("%")[0]))
        except ValueError:
            return value.lower()
    if kind == PERSON:
        v = value.casefold()
        if v.endswith(("'s", "’s")):
            v = v[:-2]
        return _SPACE.sub(" ", v).strip(" .,")
    if kind == ADDRESS:
        return _SPACE.sub(" ", re.sub(r"\\n|[,.]", " ", value.casefold())).strip()
    return value


class EventAssigner:
    """Numbers the distinct values of one event, per entity type."""

    def __init__(self, event_id: str, mode: str):
        self.event_id = event_id
        self.mode = mode
        self._index: dict[tuple[str, str], int] = {}
        self._next: dict[str, int] = {}
        self._persons: list[tuple[list[str], int]] = []   # tokens of each full name seen
        self._fakes: dict[tuple[str, int], str] = {}

    def number(self, kind: str, value: str) -> int:
        key = (kind, normalise(kind, value))
        n = self._index.get(key)
        if n is not None:
            return n
        if kind == PERSON:
            n = self._person_alias(key[1])
        if n is None:
            n = self._next.get(kind, 0) + 1
            self._next[kind] = n
        self._index[key] = n
        if kind == PERSON:
            self._persons.append((key[1].split(), n))
        return n

    def _person_alias(self, norm: str) -> int | None:
        # "John" after "John Smith" (or the other way round) is the same person in one event.
        toks = norm.split()
        for seen, n in self._persons:
            if len(toks) == 1 and toks[0] in seen:
                return n
            if len(seen) == 1 and seen[0] in toks:
                return n
        return None

    def replacement(self, kind: str, value: str) -> str:
        n = self.number(kind, value)
        if self.mode == "placeholder":
            return f"<{kind}_{n}>"
        fake = self._fakes.get((kind, n))
        if fake is None:
            fake = make_fake(kind, value, self._rng(kind, n))
            self._fakes[(kind, n)] = fake
        if kind == PERSON:
            return _person_shape(value, fake)
        if kind in (CREDIT_CARD, US_SSN, PHONE):
            return _relayout(value, fake)
        if kind == IBAN:
            compact = "".join(fake.split())
            return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4)) if " " in value.strip() else compact
        return fake

    def _rng(self, kind: str, n: int) -> random.Random:
        seed = hashlib.sha256(f"{self.event_id}\x1f{kind}\x1f{n}".encode()).digest()
        return random.Random(int.from_bytes(seed[:8], "big"))


def apply(text: str, spans: list[Span], assigner: EventAssigner) -> str:
    if not spans:
        return text
    parts, pos = [], 0
    for s in spans:
        parts.append(text[pos:s.start])
        parts.append(assigner.replacement(s.type, text[s.start:s.end]))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


# ---- fakes --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _name_pools() -> tuple[list[str], list[str]]:
    lex = load()
    first = sorted(n for n in lex.first if n.isascii() and n.isalpha() and n not in lex.ambiguous)
    last = sorted(n for n in lex.last if n.isascii() and n.isalpha() and n not in lex.ambiguous)
    return first, last


_STREETS = ("Oak", "Maple", "Cedar", "Elm", "Willow", "Birch", "Lakeview", "Hillcrest", "Sunset",
            "Riverside", "Park", "Highland", "Meadow", "Orchard", "Chestnut", "Juniper")
_STREET_TYPES = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way", "Place")
_UPPER, _LOWER, _DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789"
_KEEP_PREFIX = re.compile(
    r"^(?:sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?|gh[pousr]_|github_pat_|glpat-"
    r"|xox[a-z]-|[sr]k_(?:live|test)_|whsec_|AKIA|ASIA|AIza|GOCSPX-|ya29\.|hf_|npm_|pypi-|SG\."
    r"|dop_v1_|shp[a-z]{2}_|eyJ)")


def _scramble(value: str, rng: random.Random) -> str:
    out = []
    for ch in value:
        if "a" <= ch <= "z":
            out.append(rng.choice(_LOWER))
        elif "A" <= ch <= "Z":
            out.append(rng.choice(_UPPER))
        elif "0" <= ch <= "9":
            out.append(rng.choice(_DIGITS))
        else:
            out.append(ch)
    return "".join(out)


def _digits_like(value: str, rng: random.Random, keep: int = 0) -> str:
    """Replace digits keeping layout; the first `keep` digits stay."""
    out, seen = [], 0
    for ch in value:
        if ch.isdigit():
            out.append(ch if seen < keep else rng.choice(_DIGITS))
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


def _relayout(original: str, fake: str) -> str:
    """The fake's digits in the original's layout: "4111-1111-..." stays dashed, "4111 1111 ..."
    spaced, for every mention of the same number."""
    digits = digits_of(fake)
    if len(digits) != len(digits_of(original)):
        return fake
    it = iter(digits)
    return "".join(next(it) if ch.isdigit() else ch for ch in original)


def _person_shape(original: str, fake: str) -> str:
    """Fit a full fake name to the original mention: "John" -> "Maria", "Smith" -> "Okafor",
    "john smith" -> "maria okafor", "SMITH" -> "OKAFOR"."""
    toks = original.split()
    fake_toks = fake.split()
    if len(toks) == 1 and len(fake_toks) > 1:
        lex = load()
        low = toks[0].lower()
        fake = fake_toks[-1] if (low in lex.last and low not in lex.first) else fake_toks[0]
    if original.islower():
        return fake.lower()
    if original.isupper():
        return fake.upper()
    return fake


def make_fake(kind: str, value: str, rng: random.Random) -> str:
    if kind == PERSON:
        first, last = _name_pools()
        return f"{rng.choice(first).title()} {rng.choice(last).title()}"
    if kind == EMAIL:
        first, last = _name_pools()
        return f"{rng.choice(first)}.{rng.choice(last)}{rng.randint(1, 99)}@example.{rng.choice(('com', 'org', 'net'))}"
    if kind == PHONE:
        # keep the country code's first digits so the fake stays in the same numbering plan
        keep = (1 if value[1:2] == "1" else 2) if value.startswith("+") else 0
        return _digits_like(value, rng, keep)
    if kind == CREDIT_CARD:
        for _ in range(50):
            fake = _digits_like(value, rng, keep=1)
            digits = digits_of(fake)
            # fix the check digit so the fake is a well-formed (but random) card number
            for last in _DIGITS:
                if luhn_ok(digits[:-1] + last):
                    idx = max(i for i, ch in enumerate(fake) if ch.isdigit())
                    return fake[:idx] + last + fake[idx + 1:]
        return fake
    if kind == IBAN:
        compact = "".join(value.split()).upper()
        bban = "".join(rng.choice(_DIGITS) if c.isdigit() else rng.choice(_UPPER) for c in compact[4:])
        country = compact[:2]
        rearranged = bban + country + "00"
        check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
        fake = f"{country}{check:02d}{bban}"
        if " " in value.strip():
            fake = " ".join(fake[i:i + 4] for i in range(0, len(fake), 4))
        return fake
    if kind == US_SSN:
        area = rng.choice([a for a in range(1, 900) if a != 666])
        d = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        sep = "-" if "-" in value else (" " if " " in value else "")
        return f"{d[:3]}{sep}{d[3:5]}{sep}{d[5:]}"
    if kind == IP_ADDRESS:
        if ":" in value:
            return f"2001:db8::{rng.randint(1, 0xffff):x}:{rng.randint(1, 0xffff):x}"
        net = rng.choice(("192.0.2", "198.51.100", "203.0.113"))   # documentation ranges
        return f"{net}.{rng.randint(1, 254)}"
    if kind == SECRET:
        if value.startswith("-----BEGIN"):
            return "\n".join(line if line.startswith("-----") else _scramble(line, rng)
                             for line in value.split("\n"))
        m = _KEEP_PREFIX.match(value)
        keep = m.end() if m else 0
        return value[:keep] + _scramble(value[keep:], rng)
    if kind == ADDRESS:
        return f"{rng.randint(1, 9999)} {rng.choice(_STREETS)} {rng.choice(_STREET_TYPES)}"
    return f"<{kind}>"
