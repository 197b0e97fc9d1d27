"""The word lists shipped in data/ (built by build_lexicon.py), loaded once per process."""
from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).resolve().parent / "data"


class Lexicon(NamedTuple):
    first: frozenset[str]       # given names, lower case
    last: frozenset[str]        # family names, lower case
    ambiguous: frozenset[str]   # names that are also everyday words ("will", "grace")
    common: frozenset[str]      # English words that are not names
    places: frozenset[str]      # one-word countries, states, cities


def _read(name: str) -> frozenset[str]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())


@lru_cache(maxsize=1)
def load() -> Lexicon:
    return Lexicon(_read("first_names.txt.gz"), _read("last_names.txt.gz"),
                   _read("ambiguous_names.txt.gz"), _read("common_words.txt.gz"),
                   _read("places.txt.gz"))
