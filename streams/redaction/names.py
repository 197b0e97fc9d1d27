"""PERSON tagger: a gazetteer of given and family names plus the context people write names
in (titles, greetings, sign-offs, "assigned to", JSON keys such as "customer_name").

Why not a statistical NER model: spaCy's small English pipeline (the one offline-installable
model, see docs/redaction.md) runs at ~20 one-KB events per CPU-second inside Presidio and
finds fewer names in agent traffic (JSON, logs) than this tagger; this one is a few hundred
microseconds per event. The lexicon is data, not code: see build_lexicon.py.

Each capitalised token gets features (Tok): in the given-name list, in the family-name list,
ambiguous (a name that is also an English word, "Will"), word (a common word, stop word,
place, acronym or CamelCase identifier: breaks a name), initial ("J."), particle (van, de, bin).

Names the lists do not hold are found from evidence that does not depend on them: a cue
before the run (title, greeting, sign-off, "--" signature line, hand-off, weak cues such as
"with"/"user" for two unknown words), something after it (an e-mail address in brackets, a
person's verb: "asked", "disputes", "wrote"; a speaker colon after a chat timestamp), the
structure around it (a name-bearing JSON/metadata key, a CSV column headed "name"), or an
e-mail address in the same text spelled from it. A run followed by a corporate suffix
("GmbH", "& Co. KG", "AG") is a company, not a person.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .lexicon import Lexicon, load
from .patterns import ascii_twin
from .spans import PERSON, Span
from .wordtrie import trie_pattern

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
# Letters are read a run at a time (_LS, possessive): every part after the first letter is
# optional, so the engine never backtracks into them and the match is the one _L gives, found
# without a loop iteration per letter.
_LS = rf"(?:[^\W\d_]++|{_ESC})"
_WORD_LS = rf"(?:[{_UP}]|\\u00[cdCD][0-9a-fA-F]){_LS}*+(?:['’]{_LS}++)*(?:-[{_UP}]{_LS}++)?"
_RUN = re.compile(
    rf"[{_UP}](?:(?<![\w\\].)|(?<=\\[nrt].))(?:\.(?=[ ])|{_LS}*+(?:['’]{_LS}++)*(?:-[{_UP}]{_LS}++)?)"
    rf"(?:[ ](?:{_PARTICLE}[ ])*(?:{_INITIAL}|{_WORD_LS}))*")
_RUN_ASCII = ascii_twin(_RUN)

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
okta auth0 datadog pagerduty splunk elastic elasticsearch opensearch prometheus loki jaeger envoy
istio linkerd helm argo argocd tekton circleci bitbucket atlassian asana trello figma dropbox
zoom webex outlook gmail hotmail proton fastly cloudflare akamai vonage plaid adyen klarna
braintree xero quickbooks netsuite workday servicenow freshdesk intercom mixpanel amplitude
snowflake databricks bigquery redshift dynamodb supabase firebase pinecone weaviate qdrant
langchain llamaindex ollama vllm pydantic fastapi uvicorn gunicorn webpack vite esbuild prisma
hibernate laravel symfony nestjs kubelet kubectl minikube openshift rancher nginx haproxy traefik
met said told sent got went came took gave made kept felt found saw knew thought brought bought
ran began wrote spoke forgot paid built sold held lost meant heard understood sat stood won
""".split())   # the last lines: irregular past forms, which the lemma list does not hold
# Corporate suffixes: a capitalised run followed by one of these is a company ("Becker GmbH").
_COMPANY = {"inc", "llc", "ltd", "gmbh", "corp", "co", "plc", "ag", "kg", "kgaa", "ohg", "gbr", "ug",
            "se", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "asa", "oy", "oyj",
            "pty", "lp", "llp", "e.v", "e.g", "mbh", "stiftung", "group", "holdings", "partners"}
_COMPANY_AFTER = re.compile(r"(?:,?\s|\s?&\s?)(?:(?:Co|und|and|&)\.?\s)?([A-Za-z][\w.]*)")
# Code identifiers carry inner capitals ("HttpClient"); names with such prefixes do too.
_INNER_CAP = re.compile(r"[a-zß-ÿ][A-ZÀ-Þ]")
_NAME_PREFIX_CAP = re.compile(r"^(?:Mc|Mac|De|Di|Da|Du|La|Le|Van|Von|Fitz|St|O['’]|D['’])[A-ZÀ-Þ]")
# Verbs people do: a capitalised pair followed by one is a person ("Ifunanya Okeke disputes").
_PERSON_VERB = re.compile(
    r"\s(?:asked|asks|disputes|disputed|said|says|wrote|writes|called|calls|requested|requests"
    r"|reported|reports|wants|wanted|needs|needed|approved|approves|signed|joined|left|mentioned"
    r"|confirmed|confirms|complained|complains|replied|replies|emailed|phoned|submitted|opened"
    r"|filed|commented|noted|agreed|declined|cancelled|canceled|paid|ordered|booked|thinks|thought"
    r"|says|told|promised|suggested|prefers|owns|lives|moved|works|worked|will\s(?!be\b)[a-z]+)\b")
# Greeting nouns: "Hi team," is not a person.
_GREETING_NOUNS = {"team", "all", "everyone", "everybody", "folks", "guys", "there", "world", "friends",
                   "colleagues", "sir", "madam", "customer", "customers", "user", "users", "admin",
                   "support", "partner", "partners", "again", "again", "both", "you", "y'all", "ya",
                   "hiring", "recruiter", "manager", "valued", "mate", "buddy", "man", "dude"}
_AFTER_GREETED = (",", "!")
_GREETINGS = {"hi", "hello", "hey", "dear", "hiya", "morning", "evening", "afternoon"}
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
_CTX_STRIP = " \t\n\r,:;.!-—–\"'(="


_ESCAPED_BREAK = re.compile(r"\\+[nr]")
# A line of its own before the name: a signature delimiter ("--") or a chat timestamp.
_LINE_LEAD = re.compile(r"(?:^|\n)(?:--|—|__)[ \t]*\n[ \t]*$")
_SPEAKER_LEAD = re.compile(r"(?:^|\n)[ \t]*(?:\[[\d:.\sAPMapm/-]{4,22}\][ \t]*|\d{1,2}:\d{2}(?::\d{2})?[ \t]+)?$")


def context_before(pre: str) -> str:
    """"title", "strong", "weak" or "" for the text just before a candidate name."""
    if "\\" in pre:
        pre = _ESCAPED_BREAK.sub("\n", pre)
    # (_LINE_LEAD needs a line break and one of the delimiters: cheap tests first)
    if "\n" in pre and ("--" in pre or "—" in pre or "__" in pre) and _LINE_LEAD.search(pre):
        return "strong"
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


_MONTH_NAMES = {"january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december"}


def _strong_key(match_text: str) -> bool:
    """A key that names a person outright ("customer_name", "author") rather than something
    that may be anything ("name", "user")."""
    key = re.match(r"[\\\"'\s]*([\w -]+)", match_text)
    k = key.group(1).strip().lower() if key else ""
    return k not in ("name", "user", "account", "owner", "account_name", "account name", "username",
                     "user_name", "user name", "nick", "nickname", "nick_name")


_LOCAL_PART = re.compile(r"([A-Za-z][A-Za-z0-9._+-]{1,63})@[A-Za-z0-9-]+\.")


def _fold(word: str) -> str:
    """Lower case ASCII letters only ("Kašparová" -> "kaparov"), as mail local parts are written."""
    return "".join(ch for ch in word.lower() if "a" <= ch <= "z")


def _email_name_parts(text: str) -> set[str]:
    """Pieces of e-mail local parts in the text ("ana.ruiz@" -> {"ana", "ruiz", "ana.ruiz"}):
    people's addresses are spelled from their names."""
    out: set[str] = set()
    for m in _LOCAL_PART.finditer(text):
        local = m.group(1).lower()
        out.add(_fold(local))
        out.update(p for p in re.split(r"[._+\-\d]+", local) if len(p) >= 3)
    return out


# Function words of languages that capitalise every noun (German): there two unknown
# capitalised words in a row are ordinary nouns, not a name.
_NOUN_CAPS_WORDS = frozenset("der die das und nicht ist mit für ein eine auf sich den dem des zu von "
                             "bitte ich wir sie wird werden haben sind auch noch nach bei".split())
# Those words standing alone (no word character on either side): the ones a scan for every
# lower-case word (\b[a-zäöüß]+\b) would find among them. Each branch starts with a literal
# letter, so the engine skips other text fast.
_NOUN_CAPS_SCAN = re.compile("|".join(
    re.escape(first) + r"(?<!\w.)" + trie_pattern(sorted(w[1:] for w in _NOUN_CAPS_WORDS if w[0] == first))
    + r"(?!\w)" for first in sorted({w[0] for w in _NOUN_CAPS_WORDS})))


class _Facts:
    """Facts about one text that some candidates need, computed the first time one does."""
    __slots__ = ("text", "parts", "noun_caps")

    def __init__(self, text: str):
        self.text, self.parts, self.noun_caps = text, None, None

    def mirrors(self) -> set[str]:
        """_email_name_parts of the text."""
        if self.parts is None:
            self.parts = _email_name_parts(self.text) if "@" in self.text else set()
        return self.parts

    def capitalises_nouns(self) -> bool:
        if self.noun_caps is None:
            self.noun_caps = len(set(_NOUN_CAPS_SCAN.findall(self.text[:4000]))) >= 3
        return self.noun_caps


def _mirrored(words: list, mirrors: set[str]) -> bool:
    """"Emeka Ihejirika" beside emeka_ihejirika@..., e.ihejirika@..., ihejirika.emeka@..."""
    first, last = _fold(words[0].text), _fold(words[-1].text)
    if len(first) < 2 or len(last) < 3:
        return False
    if first in mirrors and last in mirrors:
        return True
    return (first + last) in mirrors or (first[0] + last) in mirrors or (last + first) in mirrors \
        or (len(last) >= 5 and last in mirrors)


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


def whole_word_occurrences(text: str, values) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) of the values in `text`, each not inside a word (nor right
    after a backslash), scanning left to right and taking the longest value at each start:
    what finditer over a longest-first alternation of them finds, without compiling a new
    pattern for every text (that compile cost more than the rest of the tagger)."""
    hits = []
    n = len(text)
    for value in values:
        size = len(value)
        if not size:
            continue
        i = text.find(value)
        while i >= 0:
            end = i + size
            # (\w is exactly str.isalnum() or "_", one character at a time)
            before = text[i - 1] if i else " "
            after = text[end] if end < n else " "
            if not (before.isalnum() or before in "_\\") and not (after.isalnum() or after == "_"):
                hits.append((i, -size))
            i = text.find(value, i + 1)
    hits.sort()
    out: list[tuple[int, int]] = []
    pos = 0
    for start, neg_size in hits:
        if start >= pos:                    # the longest value at this start; then move past it
            pos = start - neg_size
            out.append((start, pos))
    return out


_SUFFIXES = (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ly", ""), ("er", ""))


def _company_follows(text: str, end: int) -> bool:
    """"Becker GmbH", "Hermann Seifert AG" after a run that ends at `end`: a company (a suffix
    inside the run, "Stolze Drubin GmbH & Co. KG", is found with its tokens)."""
    m = _COMPANY_AFTER.match(text, end)
    return bool(m) and m.group(1).lower().rstrip(".") in _COMPANY


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


# Tok(start, end, *rest) goes through the named tuple's Python-level __new__; building the
# tuple directly gives the same Tok in less than half the time (tens of Toks per event).
_new_tuple = tuple.__new__


def _tok_at(start: int, feats: tuple) -> Tok:
    """The Tok of a token at `start`, from its cached features (see NameTagger._features)."""
    return _new_tuple(Tok, (start, start + feats[0]) + feats[1:])


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
            feats = self._features(text)
        return _tok_at(start, feats)

    def _features(self, text: str) -> tuple:
        """(length, text, first, last, ambiguous, word, initial, particle) of a token, cached:
        the Tok fields after its end, with the length in place of the offsets."""
        t = self._classify(0, len(text), text)
        feats = (t.end - t.start, t.text) + tuple(t[3:])
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[text] = feats
        return feats

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
                or (text.isupper() and len(text) <= 5)      # acronyms: API, AWS, EMEA
                or (_INNER_CAP.search(text) is not None and not _NAME_PREFIX_CAP.match(text)))
        return Tok(start, end, text, False, False, False, word, False, False)

    # ---- text --------------------------------------------------------------------------------
    def find(self, text: str, low: str | None = None) -> list[Span]:
        """`low`: text.lower(), when the caller has it."""
        out: list[Span] = []
        mirrors = _Facts(text)         # e-mail name parts etc., computed on first use
        cache = self._cache
        for run in (_RUN_ASCII if text.isascii() else _RUN).finditer(text):
            r = run.group()
            if " " not in r:
                # most runs are one capitalised word ("The", "Error"): decide from the cached
                # features, building a Tok only for the few that may be names
                feats = cache.get(r) or self._features(r)
                if feats[6] or feats[7]:                  # initial, particle
                    continue
                start = run.start()
                if feats[5]:                              # a word
                    end = start + feats[0]
                    if text[end:end + 1] in _AFTER_GREETED:
                        t = _tok_at(start, feats)
                        if self._greeted_word(text, t):   # "Dear August,"
                            out.append(Span(t.start, t.end, PERSON))
                    continue
                t = _tok_at(start, feats)
                if self._accept(text, [t], "", mirrors):
                    out.append(Span(t.start, t.end, PERSON))
                continue
            out += self._from_run(text, run.start(), r, mirrors)
        low = text.lower() if low is None else low
        starts = _key_starts(low)
        for start in starts:
            m = _KEY_VALUE.match(text, start)
            if m:
                span = self._from_value(m.group(1), m.start(1), _strong_key(m.group(0)))
                if span:
                    out.append(span)
        if starts and "\n" in text:
            out += self._csv_columns(text, low, starts)
        out += self._lowercase_greetings(text, low)
        return out + self._repeat_mentions(text, out)

    def _greeted_word(self, text: str, t: Tok) -> bool:
        """A capitalised common word right after a greeting and before a comma is a given
        name ("Dear August,", "Hi Nail,"), unless it is how people greet groups ("Hi team,")."""
        low = t.text.lower()
        if low in _GREETING_NOUNS or t.text.isupper() or text[t.end:t.end + 1] not in (",", "!"):
            return False
        if low in _STOP and low not in _MONTH_NAMES:
            return False
        words = text[max(0, t.start - 12):t.start].lower().split()
        return bool(words) and words[-1].strip(",") in _GREETINGS and text[t.start - 1:t.start] == " "

    def _repeat_mentions(self, text: str, found: list[Span]) -> list[Span]:
        """"Noah" alone after "Noah Woods-Wright" in the same text is the same person, and so is
        "Noah Woods-Wright" again in a context without cues ("[10:02] Noah Woods-Wright: hi")."""
        parts = set()
        for s in found:
            value = text[s.start:s.end]
            words = value.split()
            if len(words) >= 2:
                parts.add(value)
                parts.update(w for w in words if len(w) >= 3 and w[0].isupper() and w.lower() not in _STOP
                             and not (self._cache.get(w) or self._features(w))[5])   # not a word
        if not parts:
            return []
        # longest first, so a full name is one span rather than two adjacent ones
        return [Span(a, b, PERSON) for a, b in whole_word_occurrences(text, parts)]

    def _from_run(self, text: str, start: int, run: str, mirrors: "_Facts | None" = None) -> list[Span]:
        toks = [self.tok(start + t.start(), start + t.end(), t.group()) for t in _TOKEN.finditer(run)]
        if any(t.text.lower().rstrip(".") in _COMPANY for t in toks[1:]):
            return []                                 # "Stolze Drubin GmbH"
        if _company_follows(text, toks[-1].end):
            return []
        spans: list[Span] = []
        i = 0
        while i < len(toks):
            if not toks[i].namey and not self._cued_pair(text, toks, i):
                if toks[i].word and text[toks[i].end:toks[i].end + 1] in _AFTER_GREETED \
                        and self._greeted_word(text, toks[i]):
                    spans.append(Span(toks[i].start, toks[i].end, PERSON))
                i += 1
                continue
            j = i
            while j + 1 < len(toks) and j + 1 - i < 4 and (
                    not toks[j + 1].word or (toks[j].first and self._surname_like(toks[j + 1]))):
                j += 1
            # A cued name may go on with a family name that is also a word or a famous
            # surname ("approved by Seraphina Delacroix", "Author: Zenovia Pop <...>").
            while (j + 1 < len(toks) and j + 1 - i < 3 and not toks[j].particle
                   and self._surname_like(toks[j + 1]) and not toks[j + 1].text.isupper()
                   and self._cued(text, toks[i].start, toks[j + 1].end, toks[i])):
                j += 1
            while j > i and (toks[j].particle or toks[j].initial):   # never end on "van" or "J."
                j -= 1
            seg = toks[i:j + 1]
            prev = toks[i - 1].text.lower() if i else ""
            if self._accept(text, seg, prev, mirrors):
                spans.append(Span(seg[0].start, seg[-1].end, PERSON))
            i = j + 1
        return spans

    def _cued(self, text: str, s: int, e: int, first: Tok) -> bool:
        """Evidence around a candidate that does not depend on the word lists: a strong cue or
        title before it, an e-mail address or a person's verb after it, or a chat speaker
        label ("[10:42] Ana Ruiz: ..."). `first` must not be a plain word for the last two."""
        ctx = context_before(text[max(0, s - 40):s])
        if ctx in ("title", "strong") or _EMAIL_AFTER.match(text, e):
            return True
        if first.word and not first.first:
            return False                  # a plain word ("Black Friday") needs a strong cue
        if ctx == "weak":
            return True
        if _PERSON_VERB.match(text, e):
            return True
        return text.startswith(": ", e) and _SPEAKER_LEAD.search(text, max(0, s - 40), s) is not None

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

    def _accept(self, text: str, seg: list[Tok], prev: str, mirrors: "_Facts | None" = None) -> bool:
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
        if place_like or len(words) < 2:
            return False
        if ctx == "weak":                                              # "with Xolani Dube"
            return True
        if words[0].word:
            return False
        # Unseen names without a cue word before them: a person's verb or a speaker colon
        # after the pair, or an e-mail address in the same text spelled from the name.
        if _PERSON_VERB.match(text, e):
            return True
        if text.startswith(": ", e) and _SPEAKER_LEAD.search(text, max(0, s - 40), s):
            return True
        if mirrors is None:
            return False
        # Two capitalised words that are in no list at all (not English words, places, known
        # names, products, acronyms or identifiers): in English text that is a name far more
        # often than anything else ("Tovrain Quelbask"). Not in German-like text.
        if len(words) == 2 and all(not t.word and not t.first and not t.last and len(t.text) >= 3
                                   and not t.text.isupper() for t in words) \
                and not mirrors.capitalises_nouns():
            return True
        return _mirrored(words, mirrors.mirrors())

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

    def _from_value(self, value: str, start: int, strong_key: bool = False) -> Span | None:
        """The value of a name-bearing key. Under a key that says person ("customer_name",
        "author") any short run of words that are not all common words is a name; under a
        looser one ("name", "user") the word lists or two capitalised words must agree."""
        plain = unescape(value)
        toks = _VALUE_TOKEN.findall(plain)
        if not 1 <= len(toks) <= 4:
            return None
        feats = [self.tok(0, len(t), t[:1].upper() + t[1:]) for t in toks]
        lex = self.lex
        if any(f.text.lower() in _STOP or f.text.lower() in _COMPANY for f in feats):
            return None
        span = Span(start, start + len(value.rstrip(" .")), PERSON)
        named = [f.first or f.last for f in feats]
        unknown = [not f.word and not f.particle and not n for f, n in zip(feats, named)]
        if strong_key and any(named):
            return span
        if strong_key and any(unknown) and (len(toks) >= 2 or toks[0][0].isupper()):
            return span                    # "Vanda Kašparová", "joona kallio", "Oyelaran"
        if any(f.word and not f.particle and f.text.lower() not in lex.first
               and f.text.lower() not in lex.last for f in feats[:1]):
            if not (len(toks) >= 2 and all(t[0].isupper() for t in toks) and any(unknown)):
                return None
            return span
        if (feats[0].first and not feats[0].ambiguous) or any(named) \
                or (len(toks) >= 2 and all(t[0].isupper() for t in toks)):
            return span
        return None

    def value_for_key(self, key: str, value: str) -> bool:
        """Metadata: is `value`, stored under `key`, a person's name?"""
        key = key.strip()
        return bool(_KEY_OK.match(key)) and self._from_value(value.strip(), 0, _strong_key(key)) is not None

    def _csv_columns(self, text: str, low: str, key_starts: list[int]) -> list[Span]:
        """Cells under a name column of a CSV/TSV table ("id,name,email\n7,Ana Ruiz,...")."""
        out: list[Span] = []
        done = -1
        for k in key_starts:
            if k <= done:
                continue
            a = low.rfind("\n", 0, k) + 1
            b = low.find("\n", k)
            if b < 0:
                break
            done = b
            line = low[a:b]
            sep = max(",\t;|", key=line.count)
            if line.count(sep) < 1 or text.count(sep, b + 1, low.find("\n", b + 1) % (len(text) + 1)) != line.count(sep):
                continue
            cols = [c.strip().strip("\"'") for c in line.split(sep)]
            idx = [i for i, c in enumerate(cols) if _KEY_OK.match(c)]
            if not idx:
                continue
            pos = b + 1
            while pos < len(text):
                end = text.find("\n", pos)
                end = len(text) if end < 0 else end
                cells = text[pos:end].split(sep)
                if len(cells) != len(cols):
                    break
                offsets = [pos]
                for c in cells[:-1]:
                    offsets.append(offsets[-1] + len(c) + 1)
                for i in idx:
                    raw = cells[i]
                    value = raw.strip().strip("\"'")
                    if value:
                        at = offsets[i] + raw.index(value)
                        span = self._from_value(value, at, _strong_key(cols[i]) or cols[i] == "name")
                        if span:
                            out.append(span)
                pos = end + 1
        return out

    # The greeting starts a word (\b before it): checked after its first letter, so the
    # engine skips to the letters h, d, t, m, i fast.
    _GREETING_LOW = re.compile(
        r"(?:h(?<!\w.)(?:i|ello|ey)|d(?<!\w.)ear|t(?<!\w.)(?:hanks|hank you|his is)|m(?<!\w.)y name is"
        r"|i(?<!\w.)(?: am|'m))[ ,]+"
        r"([a-z][a-z'-]+)(?:[ ]([a-z][a-z'-]+))?\b")

    def _lowercase_greetings(self, text: str, low: str) -> list[Span]:
        """"hi priya," in chat: lower-case names right after a greeting, gazetteer-confirmed.
        `low` is text.lower()."""
        out = []
        lex = self.lex
        for m in self._GREETING_LOW.finditer(low):
            first = text[m.start(1):m.end(1)]
            if not first.islower() or first not in lex.first or first in lex.ambiguous or first in _STOP:
                continue
            end = m.end(1)
            last = text[m.start(2):m.end(2)] if m.group(2) else None
            if last and last.islower() and last in lex.last and not self.is_common(last):
                end = m.end(2)
            out.append(Span(m.start(1), end, PERSON))
        return out
