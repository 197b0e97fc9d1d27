"""A regex alternation of many literal words, written as a trie.

Python's regex engine tries the branches of an alternation one after another; with a few
hundred words that is a few hundred checks at every position. Grouped by shared prefixes
("a(?:lley|ly|nnex|...)|b(?:...)"), each position costs one check per distinct first letter.
"""
from __future__ import annotations

import re


def trie_pattern(words) -> str:
    """A non-capturing pattern matching exactly the given non-empty words (longest first where
    one word is a prefix of another, as a plain alternation sorted by length would)."""
    root: dict = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}                       # end of a word
    return _emit(root)


def _emit(node: dict) -> str:
    branches = [re.escape(ch) + _emit(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:                          # a word ends here and longer ones go on
        return "(?:" + body + ")?"
    return body


def occurrences_pattern(words) -> re.Pattern:
    """A pattern whose matches are the starts of every occurrence of every word, overlapping
    ones included: a match is the word's first character alone (so the scan resumes right
    after it) and the rest of the word is read in a lookahead, as the match's last group
    (see occurrences). Branching on a literal first character lets the engine skip other
    text fast: one scan instead of a str.find loop per word. Where one word is a prefix of
    another, the longer is reported."""
    by_first: dict[str, list[str]] = {}
    for word in words:
        by_first.setdefault(word[0], []).append(word[1:])
    branches = [re.escape(first) + "(?=(" + trie_pattern(rests) + "))" for first, rests in sorted(by_first.items())]
    return re.compile("|".join(branches))


def occurrences(pattern: re.Pattern, text: str) -> list[tuple[int, int]]:
    """(start, end) of each occurrence found by an occurrences_pattern."""
    return [(m.start(), m.end(m.lastindex)) for m in pattern.finditer(text)]
