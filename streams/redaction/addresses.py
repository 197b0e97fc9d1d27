"""Street addresses: house number + street name + street-type word (US/UK/AU/CA order), or
street-type word + name + number (continental Europe), each optionally followed by a unit and
a "City, ST 12345" / "12345 City" line. Postal-code-only or city-only mentions are not
addresses here."""
from __future__ import annotations

import re

from .patterns import ascii_twin
from .spans import ADDRESS, Span
from .wordtrie import trie_pattern


def _json_tolerant(pattern: str) -> str:
    """Let every non-ASCII letter of a literal word in `pattern` also match its JSON escape
    (ß or \\u00df): tool-call arguments written by json.dumps escape them. Character classes
    are left alone (they accept \\uXXXX through an explicit alternative)."""
    out, in_class, escaped = [], False, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        elif ord(ch) > 127 and ch != "’" and not in_class:
            out.append(f"(?:{ch}|\\\\u{ord(ch):04x}|\\\\u{ord(ch):04X})")
            continue
        out.append(ch)
    return "".join(out)


# USPS street suffixes (long and short forms) and their common UK/AU/CA companions.
_SUFFIXES = """
Alley Aly Annex Arcade Avenue Ave Av Bayou Beach Bend Bluff Bluffs Bottom Boulevard Blvd Branch
Bridge Brook Brooks Burg Burgs Bypass Camp Canyon Cape Causeway Center Centre Centers Circle
Cir Circles Cliff Cliffs Close Club Common Commons Corner Corners Course Court Ct Courts Cove
Coves Creek Crescent Cres Crest Crossing Crossroad Curve Dale Dam Divide Drive Dr Drives Estate
Estates Expressway Expy Extension Falls Ferry Field Fields Flat Flats Ford Fords Forest Forge
Forges Fork Forks Fort Freeway Fwy Garden Gardens Gdns Gateway Glen Glens Green Greens Grove
Grv Groves Harbor Harbors Haven Heights Hts Highway Hwy Hill Hills Hollow Inlet Island Islands
Isle Junction Junctions Key Keys Knoll Knolls Lake Lakes Land Landing Lane Ln Light Lights Loaf
Lock Locks Lodge Loop Mall Manor Manors Meadow Meadows Mews Mill Mills Mission Motorway Mount
Mountain Mountains Neck Orchard Oval Overpass Park Parks Parkway Pkwy Parkways Pass Passage Path
Pike Pine Pines Place Pl Plain Plains Plaza Point Points Port Ports Prairie Radial Ramp Ranch
Rapid Rapids Rest Ridge Ridges River Road Rd Roads Route Row Rue Run Shoal Shoals Shore Shores
Skyway Spring Springs Spur Spurs Square Sq Squares Station Stravenue Stream Street St Streets
Summit Terrace Ter Throughway Trace Track Trafficway Trail Trl Trailer Tunnel Turnpike Underpass
Union Unions Valley Valleys Via Viaduct View Views Village Villages Ville Vista Walk Walks Wall
Way Ways Well Wells Wharf Wynd Quay Parade Esplanade Broadway
""".split()
_SUFFIX = "(?:" + "|".join(sorted(set(_SUFFIXES), key=len, reverse=True)) + r")\.?"
_UNIT = r"(?:,?\s(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|Fl\.?|Room|Rm\.?|Bldg\.?|Building|#)\s?[\w-]{1,6})"
_CAPW = r"[A-Z0-9][\w'’.-]*"
_US_POST = r"(?:\d{5}(?:-\d{4})?)"
_UK_POST = r"(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})"
_CA_POST = r"(?:[A-Z]\d[A-Z]\s?\d[A-Z]\d)"
_LINE_BREAK = r"(?:,\s*|\s*(?:\\n|\n)\s*|\s+)"
_CITY_SEP = r"(?:,\s*|\s*(?:\\n|\n)\s*|\s+)"
# "Springfield, IL 62704", "London SW1A 1AA", "Toronto, ON M5V 2T6", "Sydney NSW 2000"
_CITY_LINE = (_LINE_BREAK + r"(?:[A-Z][\w'’.-]*(?:\s[A-Z][\w'’.-]*){0,3})" + _CITY_SEP +
              r"(?:(?:[A-Z]{2,3})\s+)?(?:" + _US_POST + "|" + _UK_POST + "|" + _CA_POST + r"|\d{4})(?![\w-])")

_NUMBER_FIRST = re.compile(
    r"(?:(?<![\w])(?:Flat|Apt\.?|Apartment|Suite|Unit|Studio|Room)\s\w{1,5}(?:,\s*|\s*(?:\\n|\n)\s*)"
    r"(?:\d{1,6}[A-Za-z]?,?\s)?"          # "Flat 5\nBaker Street": a unit line, the number optional
    r"|(?<![\w.,/-])\d{1,6}[A-Za-z]?(?:-\d{1,4})?,?\s)"
    r"(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s)?"
    r"(?:" + _CAPW + r"\s){1,4}?" + _SUFFIX + r"(?:\s(?:N|S|E|W|NE|NW|SE|SW)\b)?(?![\w-])"
    r"(?:" + _UNIT + r")?(?:" + _CITY_LINE + r")?")

# Continental order: "Hauptstraße 12", "Via Roma 12", "Calle Mayor, 5", "Kerkstraat 12"
_EU_SUFFIX_WORD = (r"[A-ZÀ-ÖØ-ÞĀ-Ž](?:[\w'’.-]|\\u[0-9a-fA-F]{4})*(?i:straße|strasse|str\.|weg|gasse|platz|allee|ring"
                   r"|damm|ufer|steig|pfad|chaussee|markt|graben|straat|laan|gracht|plein|kade"
                   r"|singel|dijk|baan|boulevard|dreef|hof|steeg|pad|wal|gatan|vägen|gränd|vej"
                   r"|gade|veien|gata|katu|tie|utca)")
# Street-type words that come first in French, Spanish, Italian, Portuguese and Polish.
_EU_PREFIX_WORD = (r"(?:(?i:rue|avenue|av\.|avda\.?|boulevard|bd|chemin|impasse|allée|place|quai"
                   r"|route|cours|calle|callejón|cañada|glorieta|pasadizo|urbanización|vía|acceso"
                   r"|vial|avenida|paseo|plaza|plazuela|pasaje|camino|carretera|cuesta|ronda|rambla"
                   r"|travesía|senda|carrer|via|viale|piazza|piazzale|corso|largo|vicolo|strada"
                   r"|contrada|incrocio|borgo|rotonda|canale|stretto|lungomare|salita|traversa"
                   r"|rua|travessa|praça|estrada|alameda|beco|calçada|rotunda|ulica|aleja)|C/|C\.|ul\.|al\.)")
_EU_NAME = r"(?:\s(?:[A-ZÀ-ÖØ-Þa-zß-öø-ÿĀ-ž'’.-]|\\u[0-9a-fA-F]{4})+){1,6}?"
_EU_CITY = r"[A-ZÀ-ÖØ-ÞĀ-Ž](?:[\wÀ-ÿ'’.-]|\\u[0-9a-fA-F]{4})*(?:[ -][A-ZÀ-ÖØ-ÞĀ-Ž(](?:[\wÀ-ÿ'’.)-]|\\u[0-9a-fA-F]{4})*){0,3}"
_EU_POSTCODE = r"(?:[A-Z]{1,2}-)?(?:\d{5}|\d{4}(?:\s?[A-Z]{2})?|\d{2}-\d{3}|\d{3}\s\d{2}|\d{4}-\d{3})"
# "12345 City", "1017 GC\nAmsterdam", "00184, Roma (RM)", or "City, 28013"
_EU_POST_CITY = (r"(?:(?:,\s*|\s*(?:\\n|\n)\s*|\s+)(?:" + _EU_POSTCODE + r",?(?:\s+|\s*(?:\\n|\n)\s*)" + _EU_CITY
                 + r"|" + _EU_CITY + r",\s*" + _EU_POSTCODE + r"(?![\w-])))")
_STREET_FIRST = re.compile(_json_tolerant(
    r"(?<![\w])(?:" + _EU_SUFFIX_WORD + r"|" + _EU_PREFIX_WORD + _EU_NAME + r")"
    r",?\s(?:n[º°o]\.?\s?)?\d{1,4}(?:\s?[a-zA-Z](?![\w]))?(?:[-/]\d{1,4}[a-zA-Z]?)?(?![\w])"
    r"(?:,?\s(?:Apt\.?|Piso|piso|Puerta|puerta|Appartamento|Piano|Interno|Scala|int\.?|Int\.?|Whg\.?"
    r"|bus|Bus|[0-9]{1,2}[ºª°]\s?[A-Z]?)\s?[\w-]{0,4})?"
    r"(?:" + _EU_POST_CITY + r")?"))
# No house number, but a postcode and city after it: "rue Coulon, 38979 Gosselin"
_STREET_NO_NUMBER = re.compile(_json_tolerant(
    r"(?<![\w])" + _EU_PREFIX_WORD + _EU_NAME + _EU_POST_CITY))
# French order: "12 rue de la Paix, 75002 Paris", "5 bis, avenue Victor Hugo"
_FR_NUMBER_FIRST = re.compile(
    r"(?<![\w.,/-])\d{1,4}(?:\s?(?:bis|ter))?,?\s(?:rue|avenue|boulevard|bd|chemin|impasse|allée"
    r"|place|quai|route|cours|av\.|Rue|Avenue|Boulevard|Chemin|Impasse|Allée|Place|Quai|Route"
    r"|Cours)(?:\s(?:[A-ZÀ-ÖØ-Þa-zß-öø-ÿ'’-]+)){1,5}?(?=[,.;:)\"\n]|\\n|\s\d{5}|\s(?:and|et|or|ou)\s|$)(?:" + _EU_POST_CITY + r")?")


# Addresses found by their last line alone, whatever the street-type word ("873 Buck Lookout\n
# South Elizabethfurt, NSW, 2411", "Rubikon Allé 74, 5547 Holstebro"): a house number and a few
# capitalised words, then a city with a state code and postcode, or a postcode and a city.
_CAP = r"(?:[A-ZÀ-ÖØ-ÞĀ-Ž]|\\u0[01][0-9a-fA-F]{2})(?:[\w'’.-]|\\u[0-9a-fA-F]{4})*"
_STATE_POST_ANCHOR = re.compile(r"[A-Z](?<=[\s,][A-Z])[A-Z]{1,2},?\s\d{4,5}(?![\w-])")
_EN_ANCHORED = re.compile(
    r"(?<![\w./-])(?:(?:Flat|Unit|Suite|Apt\.?)\s\w{1,5},?\s)?\d{1,6}[A-Za-z]?(?:/\d{1,5})?\s"
    r"(?:" + _CAP + r"\s){0,3}" + _CAP +
    r"(?:,?\s(?:Apt\.?|Suite|Unit|Flat)\s?[\w-]{1,6})?(?:,\s*|\s*(?:\\n|\n)\s*)"
    r"[A-Z][\w'’-]*(?:\s[A-Z][\w'’-]*){0,3},?\s[A-Z]{2,3},?\s\d{4,5}(?![\w-])")
_POST_CITY_ANCHOR = re.compile(
    r"(?:,\s?|\n|\\n)(?:\d{4,5}|\d{2}-\d{3}|\d{3}\s\d{2}|\d{4}-\d{3})\s(?:[A-ZÀ-ÖØ-ÞĀ-Ž]|\\u0[01])")
_EU_ANCHORED = re.compile(
    r"(?<![\w\\])(?:" + _CAP + r"\s){0,3}" + _CAP + r"\s\d{1,4}[a-zA-Z]?(?:[/-]\d{1,4})?"
    r"(?:,\s?|\n|\\n)(?:\d{4,5}|\d{2}-\d{3}|\d{3}\s\d{2}|\d{4}-\d{3})\s(" + _CAP + r")")

# (letters in runs, not one at a time: the same words, found ~2x faster)
_WORD = re.compile(r"(?:[^\W\d_]+|\\u[0-9a-fA-F]{4})+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SUFFIX_SET = frozenset(w.lower() for w in _SUFFIXES) | {"flat", "studio"}
_EU_SUFFIX_ENDS = ("straße", "strasse", "str", "weg", "gasse", "platz", "allee", "ring", "damm",
                   "ufer", "steig", "pfad", "chaussee", "markt", "graben", "straat", "laan", "gracht",
                   "plein", "kade", "singel", "dijk", "baan", "boulevard", "dreef", "hof", "steeg",
                   "pad", "wal", "gatan", "vägen", "gränd", "vej", "gade", "veien", "gata", "katu",
                   "tie", "utca")
_EU_PREFIX_SET = frozenset("""rue avenue avda boulevard bd chemin impasse allée place quai route
cours calle callejón cañada glorieta pasadizo urbanización vía acceso vial avenida paseo plaza
plazuela pasaje camino carretera cuesta ronda rambla travesía senda carrer via viale piazza
piazzale corso largo vicolo strada contrada incrocio borgo rotonda canale stretto lungomare
salita traversa rua travessa praça estrada alameda beco calçada rotunda ulica aleja""".split())
# abbreviations that count only with their dot or slash: "C/ Mayor", "C. Mayor", "ul. Długa"
_EU_ABBREVIATIONS = frozenset({"c", "ul", "al", "av"})
_TRIGGER_SET = _SUFFIX_SET | _EU_PREFIX_SET | _EU_ABBREVIATIONS
_WINDOW_BEFORE, _WINDOW_AFTER = 80, 160
_Window = tuple[int, int, bool]     # (start, end, opened by a street-type word that comes first)
_DIGIT = re.compile(r"\d")


# The trigger words, found by two scans of the lower-cased text instead of a Python loop over
# every word: whole words from the three lists (_SET_HIT), and words ending in a Germanic or
# Nordic street suffix (_END_HIT; the start of such a compound is read from the reversed
# text). Each hit is then checked against the full word, as the loop did.
_SET_HIT = re.compile(r"(?<![^\W\d_])" + trie_pattern(_TRIGGER_SET)
                      + r"(?![^\W\d_])")
_SET_HIT_ASCII = ascii_twin(_SET_HIT)
_END_HIT = re.compile(trie_pattern(_EU_SUFFIX_ENDS) + r"(?![^\W\d_])")
_LETTERS = re.compile(r"[^\W\d_]*")


def find_addresses(text: str, low: str | None = None) -> list[Span]:
    """Street-type words are found first; the address patterns then run only in a window
    around each one (running them over the whole text costs ~1 ms per KB). `low`:
    text.lower(), when the caller has it."""
    # (\d is str.isdecimal: a subset of isdigit, which also holds superscripts and the like)
    if not _DIGIT.search(text) and (text.isascii() or not any(ch.isdigit() for ch in text)):
        return []
    anchored = _anchored(text)
    us_windows, eu_windows = _trigger_windows(text, text.lower() if low is None else low)
    if not us_windows and not eu_windows:
        return anchored
    found: set[tuple[int, int]] = set()
    for windows, all_patterns in ((us_windows, (_NUMBER_FIRST,)),
                                  (eu_windows, (_STREET_FIRST, _STREET_NO_NUMBER, _FR_NUMBER_FIRST))):
        for lo, hi, prefix_word in _merge(windows):
            if not _DIGIT.search(text, lo, hi):
                continue                        # each of these patterns needs a digit
            patterns = all_patterns
            if len(patterns) > 1 and not prefix_word:
                # _STREET_NO_NUMBER and _FR_NUMBER_FIRST start at a street-type word that
                # comes first (rue, via, C/...), and each such word opens a window flagged so:
                # without one they cannot match here, unless case folding or a \uXXXX escape
                # reads a word the trigger scan does not (not in plain ASCII)
                window = text[lo:hi]
                if window.isascii() and "\\" not in window:
                    patterns = patterns[:1]
            for rx in patterns:
                for m in rx.finditer(text, lo, hi):
                    found.add((m.start(), m.start() + len(m.group().rstrip(" .,;"))))
    return [Span(a, b, ADDRESS) for a, b in sorted(found)] + anchored


def _trigger_windows(text: str, low: str) -> tuple[list[_Window], list[_Window]]:
    """(windows for the number-first patterns, windows for the continental ones)."""
    if "\\u" in text or len(low) != len(text):
        return _trigger_windows_by_word(text)      # JSON escapes inside words, or odd casing
    n = len(text)
    us_windows: list[_Window] = []
    eu_windows: list[_Window] = []
    for m in (_SET_HIT_ASCII if low.isascii() else _SET_HIT).finditer(low):
        a, b = m.span()
        _add_windows(text, a, b, text[a:b], m.group(), us_windows, eu_windows)
    rev = None
    for m in _END_HIT.finditer(low):
        b = m.end()
        if rev is None:
            rev = low[::-1]
        a = m.start() - _LETTERS.match(rev, n - m.start()).end() + (n - m.start())
        if text[a].isupper():
            _add_windows(text, a, b, text[a:b], low[a:b], us_windows, eu_windows)
    return us_windows, eu_windows


def _trigger_windows_by_word(text: str) -> tuple[list[_Window], list[_Window]]:
    """The same windows, from every word in turn (words may hold \\u escapes here)."""
    us_windows: list[_Window] = []
    eu_windows: list[_Window] = []
    # No "any list word at all?" pre-pass: it is one more scan as dear as this loop, and almost
    # every such text (39 of 42 escaped 1 KB events in the benchmark) has one.
    for m in _WORD.finditer(text):
        word = _decoded(m.group())
        w = word.lower()
        # _add_windows does nothing for a word in none of the lists: skip the call (most words)
        if w in _TRIGGER_SET or w.endswith(_EU_SUFFIX_ENDS):
            _add_windows(text, m.start(), m.end(), word, w, us_windows, eu_windows)
    return us_windows, eu_windows


def _decoded(word: str) -> str:
    """A word with its \\uXXXX escapes turned back into letters."""
    if "\\" not in word:
        return word
    return _ESCAPE.sub(lambda e: chr(int(e.group(1), 16)), word)


def _add_windows(text: str, start: int, end: int, word: str, w: str,
                 us_windows: list[_Window], eu_windows: list[_Window]) -> None:
    """The windows one word calls for; `w` is the word in lower case. Each window says
    whether a street-type word that comes first (rue, via, C/) opened it."""
    n = len(text)
    if w in _SUFFIX_SET and word[0].isupper():          # "Baker Street", not "api key"
        lo = max(0, start - _WINDOW_BEFORE)
        if _DIGIT.search(text, lo, start):              # a house number must come before
            us_windows.append((lo, min(n, end + _WINDOW_AFTER), False))
    prefix_word = w in _EU_PREFIX_SET or (w in _EU_ABBREVIATIONS and text[end:end + 1] in "./")
    if prefix_word or (word[0].isupper() and w.endswith(_EU_SUFFIX_ENDS)):
        # back to the start of a compound ("Hans-Hinrich-Ackermann-Ring"), then 14 more:
        # French addresses put the number first ("214 bis, avenue ...")
        lo = start
        while lo > 0 and start - lo < 60 and not text[lo - 1].isspace():
            lo -= 1
        eu_windows.append((max(0, lo - 14), min(n, end + _WINDOW_AFTER), prefix_word))


def _anchored(text: str) -> list[Span]:
    """Addresses recognised from their city line (see _EN_ANCHORED, _EU_ANCHORED)."""
    out = []
    for anchor, rx in ((_STATE_POST_ANCHOR, _EN_ANCHORED), (_POST_CITY_ANCHOR, _EU_ANCHORED)):
        for a in anchor.finditer(text):
            lo = max(0, a.start() - 90)
            for m in rx.finditer(text, lo, min(len(text), a.end() + 40)):
                if m.start() > a.start() or m.end() < a.end():
                    continue
                if rx is _EU_ANCHORED and _common(m.group(1)):
                    continue                        # "Windows 11, 2024 Edition"
                out.append(Span(m.start(), m.end(), ADDRESS))
                break
    return out


def _common(word: str) -> bool:
    from .lexicon import load
    return word.lower() in load().common


def _merge(windows: list[_Window]) -> list[_Window]:
    """Overlapping windows joined; a joined window keeps any window's prefix-word flag."""
    out: list[_Window] = []
    for lo, hi, flag in sorted(windows):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi), out[-1][2] or flag)
        else:
            out.append((lo, hi, flag))
    return out
