"""Structured identifiers found by shape and confirmed by checksum or context: email, phone,
payment card, IBAN, US SSN, IPv4/IPv6.

Every finder takes the whole text and returns candidate Spans; overlaps between finders are
settled later by spans.resolve. Cheap substring tests skip a finder when its pattern cannot
match, which is what keeps the common event (no PII at all) fast.
"""
from __future__ import annotations

import re

from .checksums import card_network, card_ok, digits_of, iban_ok, ip_ok, luhn_ok, ssn_ok
from .spans import CREDIT_CARD, EMAIL, IBAN, IP_ADDRESS, PHONE, US_SSN, Span

# Left edge of a token: not inside a word, but allowed right after a JSON escape such as \n
# (tool-call arguments are JSON strings inside JSON, so "\nJohn" is common).
LB = r"(?:(?<![\w\\])|(?<=\\[nrt]))"

def ascii_twin(rx: re.Pattern) -> re.Pattern:
    """`rx` with ASCII-only \\w, \\d and \\b, for texts that are all ASCII (str.isascii()): on
    those it finds exactly what `rx` finds, without the Unicode table lookup per character
    (~20% of the scan). Not for patterns with \\s (Unicode \\s also holds \\x1c-\\x1f) or
    case folding (which pairs some ASCII letters with non-ASCII ones)."""
    assert "\\s" not in rx.pattern and "\\S" not in rx.pattern and "(?i" not in rx.pattern \
        and not rx.flags & re.IGNORECASE, rx.pattern
    return re.compile(rx.pattern, re.ASCII)


def merge_windows(windows: list[tuple[int, int]], gap: int = 0) -> list[tuple[int, int]]:
    """Sorted, merged windows; windows closer than `gap` are joined (fewer regex calls)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(windows):
        if out and lo <= out[-1][1] + gap:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def substring_windows(text: str, needles: tuple[str, ...], before: int, after: int) -> list[tuple[int, int]]:
    """Merged windows around every occurrence of any needle (plain str.find: C speed)."""
    n, wins = len(text), []
    for needle in needles:
        i = text.find(needle)
        while i >= 0:
            wins.append((max(0, i - before), min(n, i + len(needle) + after)))
            i = text.find(needle, i + 1)
    return merge_windows(wins)


# Every digit-bearing entity lies inside a run of digits and separators (_NUM_REGION). One
# cheap scan finds those runs (the pattern starts with \d, so the regex engine skips other
# text fast) and the specific patterns then run only inside them: ~5x faster than scanning
# the text with each.
_NUM_REGION = r"\d[\d .()\-/+x#]*"
# The window of a run reaches 4 characters before it and 3 after, and windows closer than 32
# characters are merged: runs at most 39 non-digits apart share one window. _NUM_CHAIN finds
# each such chain of runs in one match, so the windows come out already merged.
_NUM_CHAIN = re.compile(_NUM_REGION + r"(?:\D{1,39}" + _NUM_REGION + r")*")
_NUM_CHAIN_ASCII = ascii_twin(_NUM_CHAIN)


def numeric_windows(text: str) -> list[tuple[int, int]]:
    n = len(text)
    chains = (_NUM_CHAIN_ASCII if text.isascii() else _NUM_CHAIN).finditer(text)
    return [(max(0, m.start() - 4), min(n, m.end() + 3)) for m in chains]


def _in_windows(rx: re.Pattern, text: str, windows: list[tuple[int, int]]):
    for lo, hi in windows:
        yield from rx.finditer(text, lo, hi)


_EMAIL = re.compile(
    LB + r"(?:[\w'+-]|\\u[0-9a-fA-F]{4})+(?:\.(?:[\w'+-]|\\u[0-9a-fA-F]{4})+)*(?:@|%40)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])")


# What a local part is made of (word characters, ' + - . and \\u escapes): read backwards
# from an "@" over these to where an address holding that "@" can start at the earliest.
_LOCAL_CHARS = re.compile(r"[\w'+.\\-]*")


def find_emails(text: str) -> list[Span]:
    if "@" not in text and "%40" not in text:
        return []
    out = []
    n = len(text)
    rev = text[::-1]
    for lo, hi in substring_windows(text, ("@", "%40"), 64, 256):
        # finditer over the window, but each search starts where the local part before the
        # next "@" (or "%40") starts, and stops when none is left: every match holds one and
        # none can start before that run, so the text skipped cannot match.
        pos = lo
        while True:
            at, pct = text.find("@", pos, hi), text.find("%40", pos, hi)
            needle = at if pct < 0 else pct if at < 0 else min(at, pct)
            if needle < 0:
                break
            start = needle - (_LOCAL_CHARS.match(rev, n - needle).end() - (n - needle))
            m = _EMAIL.search(text, max(pos, start), hi)
            if m is None:
                break
            out.append(Span(m.start(), m.end(), EMAIL))
            pos = m.end()
    return out


# ---- payment cards -----------------------------------------------------------------------
# Patterns start with a plain \d and check the left boundary after it (a look-behind over the
# first digit): the regex engine then skips non-digits fast instead of testing every position.
_DIGIT_LB = r"\d(?:(?<![\w\\.,-]\d)|(?<=\\[nrt]\d))"
_CARD = re.compile(
    _DIGIT_LB + r"(?:"
    r"\d{3}([ -])\d{4}\1\d{4}(?:\1\d{1,4}(?:\1\d{3})?)?"   # 4-4-4(-4(-3))
    r"|\d{3}([ -])\d{6}\2\d{4,5}"                          # amex 4-6-5, diners 4-6-4
    r"|\d{11,18}"
    r")(?![\d])(?!\.\d)(?!-\d)")
_CARD_ASCII = ascii_twin(_CARD)


_CARD_CONTEXT = re.compile(r"(?i)(?:card|maestro|debit|credit|visa|mastercard|cc|pan|payment)\W{1,5}(?:\w+\W{1,5}){0,3}$")


def find_cards(text: str, windows: list[tuple[int, int]] | None = None) -> list[Span]:
    out = []
    rx = _CARD_ASCII if text.isascii() else _CARD
    for m in _in_windows(rx, text, numeric_windows(text) if windows is None else windows):
        digits = digits_of(m.group())
        if len(digits) == 12:
            # 12-digit Maestro numbers exist, but so do 12-digit ids: need the word "card"
            if not (card_network(digits) == "maestro" and luhn_ok(digits)
                    and _CARD_CONTEXT.search(text, max(0, m.start() - 40), m.start())):
                continue
        elif not card_ok(digits):
            continue
        out.append(Span(m.start(), m.end(), CREDIT_CARD))
    return out


# ---- IBAN ----------------------------------------------------------------------------------
_IBAN = re.compile(r"[A-Z](?:(?<![\w\\].)|(?<=\\[nrt].))[A-Z]\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_COUNTRY_AND_CHECK = re.compile(r"[A-Z]{2}\d\d")     # in every IBAN; absent from most texts


def find_ibans(text: str, windows: list[tuple[int, int]] | None = None) -> list[Span]:
    out = []
    if not _COUNTRY_AND_CHECK.search(text):
        return out
    windows = numeric_windows(text) if windows is None else windows
    n = len(text)
    # an IBAN starts two letters before its first digits and may hold letters further on
    wide = merge_windows([(max(0, lo - 2), min(n, hi + 36)) for lo, hi in windows])
    for m in _in_windows(_IBAN, text, wide):
        value = m.group()
        # A trailing group may belong to the next word ("... 3000 BIC"): drop groups from the
        # right until the check digits agree.
        while value:
            if iban_ok(value):
                out.append(Span(m.start(), m.start() + len(value), IBAN))
                break
            cut = value.rfind(" ")
            if cut < 0:
                break
            value = value[:cut]
    return out


# ---- US SSN ---------------------------------------------------------------------------------
_SSN = re.compile(r"\d(?:(?<![\w\\-]\d)|(?<=\\[nrt]\d))(?:\d{2}([- ])\d{2}\1\d{4}|(\d{8}))(?![\d-])")
_SSN_ASCII = ascii_twin(_SSN)
_SSN_CONTEXT = re.compile(r"(?i)(?:ssn|social security|soc\.? ?sec|tax ?id|tin)\W{0,20}$")


def find_ssns(text: str, windows: list[tuple[int, int]] | None = None) -> list[Span]:
    out = []
    rx = _SSN_ASCII if text.isascii() else _SSN
    for m in _in_windows(rx, text, numeric_windows(text) if windows is None else windows):
        if not ssn_ok(m.group()):
            continue
        # Nine bare digits are an SSN only when the text says so.
        if m.group(2) and not _SSN_CONTEXT.search(text, max(0, m.start() - 40), m.start()):
            continue
        out.append(Span(m.start(), m.end(), US_SSN))
    return out


# ---- IP addresses ---------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(r"(?=\d)" + LB + r"(?<![\d.])" + _OCTET + r"(?:\." + _OCTET + r"){3}(?![\w]|\.\d)")
_IPV4_ASCII = ascii_twin(_IPV4)
# "v10.0.0.1", "version 1.2.3.4", "pkg==1.2.3.4": four dotted numbers that name a release.
_VERSION_CONTEXT = re.compile(
    r"(?i)(?:\bv|version|\bver\.?|release|\brel\.?|build|firmware|\bfw|==|>=|<=|~=|!=|\bpatch)\s*[:=]?\s*$"
    r"|(?:upgrad\w*|updat\w*|bump\w*|pinned|fixed|released|downgrad\w*|rolled back)(?: \S+){0,3} (?:to|in|from|at)\s+$")
# The version cues end the text before the match (up to its trailing spaces and one ":"/"="),
# or the text ends in " to/in/from/at" and a space. In ASCII text, unless one of those endings
# is there, the pattern (tried at each of 40 positions, ~15 us) cannot match: a cheap filter.
_VERSION_ENDS = ("v", "version", "ver", "ver.", "release", "rel", "rel.", "build", "firmware", "fw",
                 "=", "patch")
_UPGRADE_ENDS = (" to", " in", " from", " at")


def _version_context(text: str, start: int) -> bool:
    lo = max(0, start - 40)
    before = text[lo:start]
    if before.isascii():          # (?i) also folds a few non-ASCII letters: those take the pattern
        tail = before.rstrip().lower()
        if not (tail.endswith(_VERSION_ENDS) or tail[-1:] == ":" and tail[:-1].rstrip().endswith(_VERSION_ENDS)
                or tail.endswith(_UPGRADE_ENDS) and before[-1:].isspace()):
            return False
    return _VERSION_CONTEXT.search(text, lo, start) is not None


_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:|:)(?:[0-9A-Fa-f]{0,4}:){1,7}"
                   r"(?:[0-9A-Fa-f]{1,4}|" + _OCTET + r"(?:\." + _OCTET + r"){3})?(?:%[\w.]+)?(?![\w:])")


def _ipv6_plausible(value: str) -> bool:
    groups = [g for g in value.split("%")[0].split(":") if g]
    # "a::2" or "::1" alone are too often code (slices, C++ scopes) to call an address.
    return (len(groups) >= 4 or (len(groups) >= 2 and any(len(g) >= 3 for g in groups)))


# A colon with the next colon at most 10 characters on (group 1 runs up to that one).
_COLON_PAIR = re.compile(r":(?=([^:]{0,9}):)")


_HEX_COLONS = re.compile(r":[0-9A-Fa-f]{0,4}:")


def _colon_windows(text: str) -> list[tuple[int, int]]:
    """Windows around clusters of 2+ colons within 10 characters (where an IPv6 can be)."""
    n = len(text)
    return merge_windows([(max(0, m.start() - 40), min(n, m.end(1) + 45)) for m in _COLON_PAIR.finditer(text)])


def find_ips(text: str, windows: list[tuple[int, int]] | None = None) -> list[Span]:
    out = []
    if "." in text:
        rx = _IPV4_ASCII if text.isascii() else _IPV4
        for m in _in_windows(rx, text, numeric_windows(text) if windows is None else windows):
            if _version_context(text, m.start()):
                continue
            out.append(Span(m.start(), m.end(), IP_ADDRESS))
    if "::" in text or text.count(":") >= 7:
        # every IPv6 holds two colons with at most 4 hex digits between them: windows without
        # such a pair (JSON keys, "a: b" prose) are skipped
        windows = [(lo, hi) for lo, hi in _colon_windows(text) if _HEX_COLONS.search(text, lo, hi)]
        for m in _in_windows(_IPV6, text, windows):
            value = m.group()
            if _ipv6_plausible(value) and ip_ok(value):
                out.append(Span(m.start(), m.end(), IP_ADDRESS))
    return out


# ---- phone numbers --------------------------------------------------------------------------
_PHONE = re.compile(
    r"(?=[\d+(])(?:(?<![\w+\\.-])(?<!\d:)|(?<=\\[nrt]))"
    r"(?:\+\s?|00)?(?:\d{7,15}(?![ .\-/]?\d)"
    r"|(?:\(\s?\+?\d{1,5}\s?\)|\d{1,6})"
    r"(?:(?:[ .\-/]{1,2}|(?<=\))|(?=\())(?:\(\d{1,5}\)|\d{1,12})){1,6})"
    r"(?:\s?(?:x|ext\.?|extension|#)\s?\d{1,6})?(?![\w]|[.\-/]\d)")
_PHONE_CONTEXT = re.compile(
    r"(?i:(?:phone|tel|telephone|mobile|mob|cell|fax|call|text|sms|whatsapp|reach|dial|contact"
    r"|number|ph|hotline|landline|telefon|téléphone|móvil|cellulare)(?:\W{1,3}[a-z]{1,5}){0,3}\W{0,5})$"
    # a contact line that names the person first ("Contact: Ana Ruiz, 0534513151"), and the
    # one-letter labels of signature blocks ("m: 0957 036017", "T. 020 7946 0018")
    r"|(?i:contact|reach|call)\W{1,3}(?:[A-ZÀ-Þ][\w'’-]{0,20}\W{1,3}){1,4}$|(?:^|[\s|(])(?i:m|t|p|c|mob|tel)\s?[:.]\s?$")
# A CSV cell under a phone column: "id,name,phone\n1,Ann,4155550134"
_CSV_CELL = re.compile(r"(?:^|[,\t;|])$")
_CSV_PHONE_HEADER = re.compile(r"(?im)^[^\n]*[,\t;|][^\n]*(?:phone|tel|mobile|cell)[^\n]*$")
_DATE_LIKE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(?:$|\D)")
_EXT = re.compile(r"\s?(?:x|ext\.?|extension|#)\s?\d{1,6}$")
_GROUPS = re.compile(r"\d+")
_DOT_SPACE = re.compile(r"\d\.\s|\s\.\d")
_SEPARATORS = re.compile(r"[.\-/ ]")


def _phone_ok(value: str, has_context) -> bool:
    """has_context: a callable, asked only when the shape alone does not decide."""
    core = _EXT.sub("", value) if "x" in value or "#" in value else value    # (an extension needs one)
    d = digits_of(core)
    # "00" is the international prefix only before a country code and a full number
    plus = core.startswith("+") or (core.startswith("00") and core[2:3].isdigit() and core[2] != "0" and len(d) >= 11)
    if not 7 <= len(d) <= 15:
        return False
    if not plus and _DATE_LIKE.match(core):        # "+61-2-7557-9017" is never a date
        return False
    groups = _GROUPS.findall(core)
    if "." in core and len(groups) >= 4 and not plus and "(" not in core and not _DOT_SPACE.search(core) \
            and all(sep == "." for sep in _SEPARATORS.findall(core)):
        return False           # dotted quads and browser builds (120.0.6099.109) are versions
    return _phone_shape_ok(core, d, groups, plus) or has_context()


def _phone_shape_ok(core: str, d: str, groups: list[str], plus: bool) -> bool:
    """Whether the layout alone says phone number (no context word needed)."""
    if plus:
        return len(d) >= 8
    if "(" in core:
        return len(d) >= 9
    if len(groups) == 1 or len(d) > 12:
        return False           # bare digit runs and long numbers are ids unless the text says phone
    if [len(g) for g in groups] == [3, 2, 4]:
        return False           # the shape of a US SSN, not of any phone numbering plan
    if all(len(g) == 4 for g in groups) and len(groups) >= 3:
        return False           # 4-4-4 groups: a card-like or order number
    if len(set(_SEPARATORS.findall(core))) > 2:
        return False
    if "." in core and len(groups) >= 4 and all(len(g) <= 3 for g in groups):
        return False           # dotted quads: versions and addresses, not phones
    if len(d) < 9:
        return False
    return all(len(g) >= 2 for g in groups[1:])


# _PHONE_CONTEXT needs one of these words (in lower case), or the text before the number ends
# in ":" or "." (signature labels). In ASCII text, without either it cannot match: tried at
# each of 40 positions it costs ~13 us, the filter well under one.
_PHONE_CUE_HINT = re.compile("ph|tel|mob|cell|fax|call|text|sms|whatsapp|reach|dial|contact|number"
                             "|hotline|landline")
_PHONE_HEADER_HINT = re.compile("phone|tel|mobile|cell")


def _phone_context(text: str, m: re.Match) -> bool:
    start = m.start()
    lo = max(0, start - 40)
    before = text[lo:start]
    if not before.isascii() or _PHONE_CUE_HINT.search(before.lower()) or before.rstrip()[-1:] in (":", "."):
        if _PHONE_CONTEXT.search(text, lo, start):
            return True
    if _CSV_CELL.search(text, max(0, start - 1), start) \
            and text[m.end():m.end() + 1] in ("", ",", "\t", ";", "|", "\n", "\r"):
        lo = max(0, start - 2000)
        header = text[lo:start]
        if header.isascii() and not _PHONE_HEADER_HINT.search(header.lower()):
            return False
        return bool(_CSV_PHONE_HEADER.search(text, lo, start))
    return False


def find_phones(text: str, windows: list[tuple[int, int]] | None = None) -> list[Span]:
    out = []
    for m in _in_windows(_PHONE, text, numeric_windows(text) if windows is None else windows):
        value = m.group().rstrip(" .-/")
        if len(value) < 7:
            continue
        if _phone_ok(value, lambda m=m: _phone_context(text, m)):
            out.append(Span(m.start(), m.start() + len(value), PHONE))
    return out


def find_structured(text: str) -> list[Span]:
    windows = numeric_windows(text)
    if not windows:
        return find_emails(text) + find_ips(text, windows)
    return (find_emails(text) + find_cards(text, windows) + find_ibans(text, windows)
            + find_ssns(text, windows) + find_ips(text, windows) + find_phones(text, windows))
