"""What counts as a word when comparing two prompts.

A token is a maximal run of word characters (Unicode ``\\w``: letters, digits, underscore) of
the NFKC-normalised, case-folded text. So case, whitespace and punctuation never count, and a
redaction placeholder such as ``<EMAIL_1>`` is one token (``email_1``): two prompts that differ
only in the redacted value are the same prompt.

Two implementations of the same rule live here: ``tokens`` (plain Python, the reference used by
tests and by the benchmark's exact Jaccard) and ``encode_batch`` + ``hashing.tokenise`` (one
bytes buffer for a whole batch, tokenised with numpy). Tests keep them in agreement.
"""
from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+")
# Everything that is not a word character becomes a space; NUL is kept as the document separator.
_NON_WORD = re.compile(r"[^\w\x00]+")
SEPARATOR = "\x00"

def normalise(text: str) -> str:
    """NFKC + case folding. ASCII text is only lower-cased (NFKC leaves ASCII unchanged)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


def tokens(text: str) -> list[str]:
    """The reference tokeniser."""
    return _WORD.findall(normalise(text))


def shingles(text: str, size: int) -> set[tuple[str, ...]]:
    """The set of ``size``-token shingles, as the signature sees it: a text shorter than
    ``size`` tokens is one shingle of all its tokens, an empty text the empty shingle."""
    toks = tokens(text)
    if len(toks) < size:
        return {tuple(toks)}
    return {tuple(toks[i:i + size]) for i in range(len(toks) - size + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def encode_batch(texts: list[str]) -> bytes:
    """The normalised texts as one UTF-8 buffer, separated by NUL bytes (so document i ends
    at the i-th NUL). A NUL inside a text is whitespace like any other control character."""
    joined = SEPARATOR.join(texts)
    if joined.count(SEPARATOR) != len(texts) - 1:
        joined = SEPARATOR.join(t.replace(SEPARATOR, " ") for t in texts)
    if joined.isascii():
        return joined.lower().encode("ascii")
    folded = unicodedata.normalize("NFKC", joined).casefold()
    return _NON_WORD.sub(" ", folded).encode("utf-8")
