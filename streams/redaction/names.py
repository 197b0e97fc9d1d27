"""PERSON tagger: a gazetteer of given and family names plus the context people write names
in (titles, greetings, sign-offs, "assigned to", JSON keys such as "customer_name").

Why not a statistical NER model: spaCy's small English pipeline (the one offline-installable
model, see docs/redaction.md) runs at ~20 one-KB events per CPU-second inside Presidio and
finds fewer names in agent traffic (JSON, logs) than this tagger; this one is a few hundred
microseconds per event. The lexicon is data, not code: see build_lexicon.py.

Each capitalised token gets features (Tok): in the given-name list, in the family-name list,
ambiguous (a name that is also an English word, "Will"), word (a common word, stop word,
place or acronym: breaks a name), initial ("J."), particle (van, de, bin).
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .lexicon import Lexicon, load
from .spans import PERSON, Span

_UP = "A-ZÀ-ÖØ-ÞĀĂĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮİĴĶĹĻĽĿŁŃŅŇŌŎŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽȘȚ"
# JSON written by Python escapes non-ASCII letters ("\\u00c7etin"): such escapes count as letters.
_ESC = r"\\u[0-9a-fA-F]{4}"
_L = rf"(?:[^\W\d_]|{_ESC})"
_WORD = rf"(?:[{_UP}]|\\u00[cdCD][0-9a-fA-F]){_L}*(?:['’]{_L}+)*(?:-[{_UP}]{_L}+)?"
_INITIAL = rf"[{_UP}]\.(?=[ ])"
_PARTICLES = {"van", "von", "der", "den", "de", "da", "di", "del", "della", "dos", "das", "du",
              "la", "le", "bin", "ibn", "al", "el", "ter", "ten", "zu", "y", "af"}
_PARTICLE = "(?:" + "|".join(sorted(_PARTICLES, key=len, reverse=True)) + ")"
_TOKEN = re.compile(rf"{_INITIAL}|{_WORD}|{_PARTICLE}")
# A run of capitalised words. It starts with a plain upper-case class (checked for the left
# boundary only after that first letter), which lets the regex engine skip other text fast.
_RUN = re.compile(
    rf"[{_UP}](?:(?<![\w\\].)|(?<=\\[nrt].))(?:\.(?=[ ])|{_L}*(?:['’]{_L}+)*(?:-[{_UP}]{_L}+)?)"
    rf"(?:[ ](?:{_PARTICLE}[ ])*(?:{_INITIAL}|{_WORD}))*")

# Capitalised words that are never a person here, whatever the name lists say: calendar
# words, greetings, corporate suffixes, and the products and models agent traffic is full of.
_STOP = set("""
january february march april may june july august september october november december
feb apr jun jul aug sept oct nov dec tue tues wed thu thur thurs fri
monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday
i i'm i’m im i'll i've i'd it's let's me my mine we us our you your he him his she her it its they them their a an and or but if
of at on in to for from by with as is are was were be been am do does did have has had not
so than too very can just should would could might must shall all any some each
every both few more most other such own same only also about into over after before under
again further then once here there when where why how what which who whom this that these
those nor yes no ok okay please dear hi hello hey thanks thank cheers regards best
re fw fwd subject date sent cc bcc attn note notes ticket order invoice ref id
hi hello hey dear thanks thank regards best cheers sincerely team support customer service
the this that these those there here what when where which who why how yes no ok okay please
mr mrs ms mx dr prof sir madam miss
inc llc ltd gmbh corp co plc sa ag bv kg ohg ug company group bank university college hospital
stiftung verein partners holdings industries solutions systems technologies consulting
ventures associates sons brothers enterprises labs
api json http https url sql html css xml yaml uuid id ip dns ssh tcp udp tls ssl cli sdk ui ux
rails django flask kafka redis docker kubernetes linux windows azure amazon
google apple microsoft oracle python java rust scala kotlin
ansible chef puppet vault consul nomad terraform grafana kibana sentry celery pandas spark
hadoop hive presto trino airflow jupyter siri alexa cortana claude gemini llama mistral falcon
phi qwen bard copilot cursor openai anthropic github gitlab slack stripe jira confluence
notion zendesk salesforce hubspot shopify twilio sendgrid mailchimp paypal visa mastercard
amex discover chrome firefox safari edge android ios macos ubuntu debian fedora postgres mysql
mongodb sqlite nginx apache tomcat node react angular vue svelte next nuxt vercel netlify heroku
aws gcp lambda fargate bedrock sagemaker vertex faust river clickhouse distillery
""".split())
# Tools and languages named like people: a name only with a second name token or context.
_AMBIGUOUS_TOOLS = {"jenkins", "julia", "ruby", "ada", "pascal", "hugo", "gemma", "grace",
                    "max", "sage", "chef", "swift", "dart", "elixir", "crystal", "ray", "nova",
                    "jan", "mar", "sep", "mon", "sat", "sun"}   # also month/day abbreviations
# First words of multi-word place names ("San Francisco", "Fort Worth").
_PLACE_PREFIX = {"san", "santa", "santo", "são", "los", "las", "new", "fort", "saint", "st",
                 "port", "mount", "lake", "north", "south", "east", "west", "upper", "lower",
                 "great", "little", "old", "bad", "le", "la", "el"}

_TITLES = {"mr", "mrs", "ms", "mx", "miss", "dr", "prof", "professor", "sir", "dame", "madam",
           "madame", "mme", "mlle", "herr", "frau", "señor", "señora", "sr", "sra", "srta", "sig",
           "sig.ra", "rev", "capt", "captain", "sgt", "lt", "col", "hon", "judge", "officer"}
# Words right before a name that make it one: greetings, sign-offs, introductions, hand-offs.
_STRONG_1 = {"hi", "hello", "hey", "dear", "greetings", "welcome", "thanks", "thx", "cheers",
             "regards", "best", "sincerely", "yours", "attn", "attention", "named", "called", "i'm",
             "im", "it's", "cc", "bcc", "ping", "ask", "tell", "meet", "per", "requester", "requestor",
             "approver", "reviewer", "assignee", "reporter"}
_STRONG_2 = {"thank you", "name is", "i am", "this is", "my name", "spoke to", "spoke with",
             "speaking with", "talked to", "talking to", "assigned to", "reported by", "created by",
             "approved by", "reviewed by", "signed by", "submitted by", "requested by",
             "escalated to", "handled by", "according to", "contact person", "met with"}
_STRONG_3 = {"on behalf of"}
_SIGN_OFF = {"regards", "thanks", "cheers", "best", "sincerely", "yours", "thank you"}
# Weaker cues: enough for two unseen capitalised words ("with Xolani Dube"), not for one.
_WEAK_1 = {"from", "to", "by", "with", "for", "and", "or", "customer", "client", "patient",
           "employee", "user", "applicant", "manager", "colleague", "friend", "wife", "husband",
           "son", "daughter", "mother", "father", "brother", "sister", "boss", "ceo", "cto", "cfo",
           "vp", "director", "engineer", "rep", "agent", "driver", "author", "owner", "candidate",
           "member", "guest", "passenger", "tenant", "landlord", "doctor", "nurse", "lawyer",
           "teacher", "student", "contact"}
_CTX_STRIP = " \t\n\r,:;.!-—–\"'("


def context_before(pre: str) -> str:
    """"title", "strong", "weak" or "" for the text just before a candidate name."""
    pre = pre.replace("\\n", "\n")
    body = pre.rstrip(_CTX_STRIP)
    sep = pre[len(body):]
    words = [w.lstrip("\\\"'([{<") for w in body.lower().split()[-3:]]
    if not words:
        return ""
    last = words[-1]
    if last.rstrip(".") in _TITLES and sep.strip(" .") == "":
        return "title"
    two = " ".join(words[-2:])
    if "\n" in sep and (last in _SIGN_OFF or two in _SIGN_OFF):
        return "strong"
    if "\n" in sep:
        return ""                       # a name on a new line needs a sign-off above it
    if last in _STRONG_1 or two in _STRONG_2 or " ".join(words) in _STRONG_3:
        return "strong"
    if last in _WEAK_1:
        return "weak"
    return ""


_EMAIL_AFTER = re.compile(r"\s*[\"']?\s*(?:<|\(|\[)\s*[\w.+'-]+@")

# "customer_name": "Ada Lovelace", author=ada lovelace, Name: Ada Lovelace
_NAME_KEYS = (r"(?:full|first|last|given|family|display|customer|client|contact|patient|employee"
              r"|sender|recipient|author|owner|assignee|reporter|requester|agent|user|account"
              r"|holder|cardholder|passenger|guest|member|beneficiary|billing|shipping|emergency"
              r"|legal|sur|nick|maiden|middle)?[_ -]?name")
_PERSON_KEYS = (r"author|assignee|reporter|requester|customer|contact|patient|employee|sender"
                r"|recipient|signatory|attendee|passenger|guest|cardholder|beneficiary"
                r"|manager|approver|reviewer|driver|applicant|candidate|tenant|owner")
_KEY_VALUE = re.compile(
    r"(?i)(?<![\w])\\?[\"']?(?:" + _NAME_KEYS + "|" + _PERSON_KEYS + r")\\?[\"']?\s*[:=]\s*\\?[\"']?"
    r"(" + _L + r"+(?:[ '’.-]{1,2}" + _L + r"+){0,4})(?=\\?[\"']|\s*(?:[,;}\n]|\\n|$))")
_KEY_WORDS = ("name", "author", "assignee", "reporter", "requester", "customer", "contact",
              "patient", "employee", "sender", "recipient", "signatory", "attendee", "passenger",
              "guest", "cardholder", "beneficiary", "manager", "approver", "reviewer", "driver",
              "applicant", "candidate", "tenant", "owner")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_- ")


def _key_starts(low: str) -> list[int]:
    """Where a name-bearing key may start: each key word found by str.find, moved back over
    the rest of the identifier ("customer_name" -> the "c")."""
    starts = set()
    for word in _KEY_WORDS:
        i = low.find(word)
        while i >= 0:
            a = i
            while a > 0 and i - a < 24 and low[a - 1] in _KEY_CHARS and low[a - 1] != " ":
                a -= 1
            if a > 0 and low[a - 1] in "\"'":
                a -= 1
                if a > 0 and low[a - 1] == "\\":
                    a -= 1
            starts.add(a)
            i = low.find(word, i + 1)
    return sorted(starts)


_KEY_OK = re.compile(r"(?i)^(?:" + _NAME_KEYS + "|" + _PERSON_KEYS + r")$")
_VALUE_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_UNESCAPE = re.compile(_ESC)


def unescape(token: str) -> str:
    if "\\" not in token:
        return token
    return _UNESCAPE.sub(lambda m: chr(int(m.group()[2:], 16)), token)


_SUFFIXES = (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ly", ""), ("er", ""))


class Tok(NamedTuple):
    start: int
    end: int
    text: str
    first: bool      # in the given-name list
    last: bool       # in the family-name list
    ambiguous: bool  # a name that is also an English word
    word: bool       # a common word, stop word or place: breaks a name
    initial: bool
    particle: bool

    @property
    def namey(self) -> bool:
        return not self.word and not self.particle


class NameTagger:
    """Finds PERSON spans in text. Stateless after construction; one per process is enough."""

    def __init__(self, lexicon: Lexicon | None = None):
        self.lex = lexicon or load()
        self._cache: dict[str, tuple] = {}      # token text -> features (bounded below)

    # ---- token features --------------------------------------------------------------------
    def is_common(self, low: str) -> bool:
        lex = self.lex
        if low in lex.common or low in _STOP:
            return True
        for suf, rep in _SUFFIXES:                 # "Affects", "Upgraded", "Billing"
            if low.endswith(suf) and len(low) - len(suf) >= 3 and (low[:-len(suf)] + rep) in lex.common:
                return True
        return False

    def tok(self, start: int, end: int, text: str) -> Tok:
        feats = self._cache.get(text)
        if feats is None:
            t = self._classify(0, len(text), text)
            feats = (t.end - t.start, t.text) + tuple(t[3:])
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[text] = feats
        return Tok(start, start + feats[0], feats[1], *feats[2:])

    def _classify(self, start: int, end: int, text: str) -> Tok:
        if len(text) == 2 and text[1] == ".":
            return Tok(start, end, text, False, False, False, False, True, False)
        if text.endswith(("'s", "’s")):
            end -= 2
            text = text[:-2]
        low = unescape(text).lower()
        if low in _PARTICLES and text[0].islower():
            return Tok(start, end, text, False, False, False, False, False, True)
        lex = self.lex
        if len(low) < 2 or low in _STOP:
            return Tok(start, end, text, False, False, False, True, False, False)
        first, last = low in lex.first, low in lex.last
        if "-" in low and not (first or last):          # Jean-Luc, Smith-Jones
            parts = low.split("-")
            first = parts[0] in lex.first
            last = any(p in lex.last for p in parts)
        if first or last:
            amb = low in lex.ambiguous or low in _AMBIGUOUS_TOOLS
            return Tok(start, end, text, first, last, amb, False, False, False)
        word = (self.is_common(low) or low in lex.places
                or (text.isupper() and len(text) <= 5))     # acronyms: API, AWS, EMEA
        return Tok(start, end, text, False, False, False, word, False, False)

    # ---- text --------------------------------------------------------------------------------
    def find(self, text: str) -> list[Span]:
        out: list[Span] = []
        for run in _RUN.finditer(text):
            r = run.group()
            if " " not in r:
                # most runs are one capitalised word ("The", "Error"): decide from the cache
                t = self.tok(run.start(), run.end(), r)
                if t.word or t.particle or t.initial:
                    continue
                if self._accept(text, [t], ""):
                    out.append(Span(t.start, t.end, PERSON))
                continue
            out += self._from_run(text, run.start(), r)
        low = text.lower()
        for start in _key_starts(low):
            m = _KEY_VALUE.match(text, start)
            if m:
                span = self._from_value(m.group(1), m.start(1))
                if span:
                    out.append(span)
        out += self._lowercase_greetings(text)
        return out + self._repeat_mentions(text, out)

    def _repeat_mentions(self, text: str, found: list[Span]) -> list[Span]:
        """"Noah" alone after "Noah Woods-Wright" in the same text is the same person."""
        parts = set()
        for s in found:
            words = text[s.start:s.end].split()
            if len(words) >= 2:
                parts.update(w for w in words if len(w) >= 3 and w[0].isupper() and w.lower() not in _STOP)
        if not parts:
            return []
        rx = re.compile(r"(?<![\w\\])(?:" + "|".join(re.escape(p) for p in sorted(parts)) + r")(?!\w)")
        return [Span(m.start(), m.end(), PERSON) for m in rx.finditer(text)]

    def _from_run(self, text: str, start: int, run: str) -> list[Span]:
        toks = [self.tok(start + t.start(), start + t.end(), t.group()) for t in _TOKEN.finditer(run)]
        spans: list[Span] = []
        i = 0
        while i < len(toks):
            if not toks[i].namey and not self._cued_pair(text, toks, i):
                i += 1
                continue
            j = i
            while j + 1 < len(toks) and j + 1 - i < 4 and (
                    not toks[j + 1].word or (toks[j].first and self._surname_like(toks[j + 1]))):
                j += 1
            while j > i and (toks[j].particle or toks[j].initial):   # never end on "van" or "J."
                j -= 1
            seg = toks[i:j + 1]
            prev = toks[i - 1].text.lower() if i else ""
            if self._accept(text, seg, prev):
                spans.append(Span(seg[0].start, seg[-1].end, PERSON))
            i = j + 1
        return spans

    def _cued_pair(self, text: str, toks: list, i: int) -> bool:
        """Two capitalised words right after a strong cue ("approved by Peregrine Montgomery"):
        a name even when the given name is also an English word or unknown to the gazetteer."""
        t = toks[i]
        if i + 1 >= len(toks) or not t.text[:1].isupper() or t.text.isupper() or t.text.lower() in _STOP:
            return False
        if not self._surname_like(toks[i + 1]):
            return False
        return context_before(text[max(0, t.start - 40):t.start]) in ("title", "strong")

    def _surname_like(self, t: Tok) -> bool:
        """"Glazer", "Cook" after a given name: a capitalised common noun, not a stop word,
        acronym or place."""
        low = t.text.lower()
        return (t.text[:1].isupper() and not t.text.isupper() and low not in _STOP
                and low not in self.lex.places)

    def _accept(self, text: str, seg: list[Tok], prev: str) -> bool:
        words = [t for t in seg if not t.initial and not t.particle]
        if not words:
            return False
        place_like = prev in _PLACE_PREFIX or seg[0].text.lower() in _PLACE_PREFIX
        if not place_like and self._by_lexicon(words):
            return True
        s, e = seg[0].start, seg[-1].end
        ctx = context_before(text[max(0, s - 40):s])
        if ctx in ("title", "strong") or _EMAIL_AFTER.match(text, e):
            return True
        return not place_like and len(words) >= 2 and ctx == "weak"     # "with Xolani Dube"

    @staticmethod
    def _by_lexicon(words: list[Tok]) -> bool:
        if len(words) >= 2:
            w0 = words[0]
            if w0.first and any(t.last or t.first for t in words[1:]):
                return True                                  # John Smith, Mark Brown
            if w0.first and not w0.ambiguous:
                return True                                  # Józef Glazer
            if w0.first and all(not t.word for t in words[1:]):
                return True                                  # Jan Opmans: unseen family name
            return any((t.first or t.last) and not t.ambiguous for t in words)   # Chiamaka Okafor
        t = words[0]
        # A lone word is a name only when it can be nothing else: a given name that is not
        # also a surname, a place or an English word ("Priya", not "Morgan" or "Will").
        return t.first and not t.last and not t.ambiguous

    def _from_value(self, value: str, start: int) -> Span | None:
        plain = unescape(value)
        toks = _VALUE_TOKEN.findall(plain)
        if not 1 <= len(toks) <= 4:
            return None
        feats = [self.tok(0, len(t), t[:1].upper() + t[1:]) for t in toks]
        lex = self.lex
        if any(f.word and not f.particle and f.text.lower() not in lex.first
               and f.text.lower() not in lex.last for f in feats[:1]) or any(
                f.text.lower() in _STOP for f in feats[1:]):
            return None
        if (feats[0].first and not feats[0].ambiguous) or any(f.first or f.last for f in feats) \
                or (len(toks) >= 2 and all(t[0].isupper() for t in toks)):
            return Span(start, start + len(value.rstrip(" .")), PERSON)
        return None

    def value_for_key(self, key: str, value: str) -> bool:
        """Metadata: is `value`, stored under `key`, a person's name?"""
        return bool(_KEY_OK.match(key.strip())) and self._from_value(value.strip(), 0) is not None

    _GREETING_LOW = re.compile(
        r"\b(?:hi|hello|hey|dear|thanks|thank you|my name is|i am|i'm|this is)[ ,]+"
        r"([a-z][a-z'-]+)(?:[ ]([a-z][a-z'-]+))?\b")

    def _lowercase_greetings(self, text: str) -> list[Span]:
        """"hi priya," in chat: lower-case names right after a greeting, gazetteer-confirmed."""
        out = []
        lex = self.lex
        for m in self._GREETING_LOW.finditer(text.lower()):
            first = text[m.start(1):m.end(1)]
            if not first.islower() or first not in lex.first or first in lex.ambiguous or first in _STOP:
                continue
            end = m.end(1)
            last = text[m.start(2):m.end(2)] if m.group(2) else None
            if last and last.islower() and last in lex.last and not self.is_common(last):
                end = m.end(2)
            out.append(Span(m.start(1), end, PERSON))
        return out
