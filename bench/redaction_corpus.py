"""Deterministic, labelled evaluation set for PII redaction, generated in code.

`build_corpus(n, seed)` returns `n` snippets of agent traffic (chat turns, tool calls as JSON
and as JSON-in-JSON arguments, e-mails, support tickets, logs, HTTP dumps, configs, code,
CSV, git logs, stack traces, k8s manifests), each with gold character spans
(start, end, type, tag). Values come from Faker (pinned version, seeded per locale) and from
generators of real token formats; the text around them carries hard negatives that must
survive (versions, dates, order ids, hashes, UUIDs, IP-like versions, numbers failing Luhn or
mod-97, capitalised words that are not names).

tag "held_out" marks a value drawn from a locale the rules were never developed on (and, for
names, a locale the shipped gazetteer does not include): the benchmark reports recall on
those separately. See docs/redaction.md.
"""
from __future__ import annotations

import base64
from datetime import datetime, timedelta
import json
import random
import string
import uuid
from dataclasses import dataclass, field

PERSON_DEV = ("en_US", "en_GB", "en_IN", "en_IE", "de_DE", "fr_FR", "es_ES", "es_MX", "it_IT",
              "pt_BR", "nl_NL", "pl_PL", "sv_SE", "tr_TR", "id_ID")
PERSON_HELD_OUT = ("fi_FI", "hu_HU", "cs_CZ", "ro_RO", "hr_HR", "yo_NG", "ig_NG", "sw", "zu_ZA",
                   "en_PK", "lt_LT")
PHONE_DEV = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN")
PHONE_HELD_OUT = ("pt_BR", "en_AU", "ja_JP", "sv_SE", "pl_PL", "en_CA", "de_CH")
ADDRESS_DEV = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")
ADDRESS_HELD_OUT = ("en_AU", "en_CA", "pt_PT", "pl_PL", "da_DK", "sv_SE")
IBAN_LOCALES = ("de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_GB", "pl_PL", "pt_PT", "fi_FI",
                "sv_SE", "da_DK", "no_NO", "de_AT", "de_CH", "fr_BE")
HELD_OUT_SHARE = 0.25
UNSEEN_NAME_SHARE = 0.30        # person names outside the detector's gazetteer (see person_parts)

# Syllables for invented names: no list of real names is read, so none of these is a name the
# detector was built from (in_gazetteer() double-checks; collisions are redrawn).
_ONSETS = ("b", "br", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kh", "l", "m", "n", "p", "pr",
           "q", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "y", "z", "zh", "")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "ia", "y", "ae", "oa")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "th", "k", "nd", "rt", "x", "v")
_GIVEN_ENDS = ("a", "o", "en", "ia", "el", "is", "an", "ette", "ik", "ur", "ine", "")
_FAMILY_ENDS = ("son", "ová", "escu", "ić", "ski", "wala", "ola", "enko", "berg", "mann", "ez", "ani",
                "ley", "ton", "ford", "ow", "aro", "idze", "")


def invented_name(r: random.Random) -> tuple[str, str]:
    def word(syllables: int, ends) -> str:
        w = "".join(r.choice(_ONSETS) + r.choice(_VOWELS) + r.choice(_CODAS) for _ in range(syllables))
        return (w + r.choice(ends)).capitalize()
    first = word(r.choice((1, 1, 2)), _GIVEN_ENDS)
    last = word(r.choice((1, 2, 2)), _FAMILY_ENDS)
    if r.random() < 0.08:
        last += "-" + word(r.choice((1, 2)), _FAMILY_ENDS)
    return first, last


def in_gazetteer(word: str) -> bool:
    """Whether the detector's shipped name lists hold this word (or a part of a hyphenated one)."""
    from streams.redaction.lexicon import load
    lex = load()
    parts = word.lower().split("-")
    return any(p in lex.first or p in lex.last for p in parts) or len(word) < 3


@dataclass
class Snippet:
    text: str
    spans: list[tuple[int, int, str, str]]
    kind: str


@dataclass
class _B:
    """Builds text while recording where each labelled value landed."""
    parts: list[str] = field(default_factory=list)
    spans: list[tuple[int, int, str, str]] = field(default_factory=list)
    pos: int = 0

    def add(self, text: str) -> "_B":
        self.parts.append(text)
        self.pos += len(text)
        return self

    def ent(self, kind: str, value: str | tuple[str, str]) -> "_B":
        value, tag = value if isinstance(value, tuple) else (value, "")
        self.spans.append((self.pos, self.pos + len(value), kind, tag))
        return self.add(value)

    def jent(self, kind: str, value: str | tuple[str, str], escape_twice: bool = False) -> "_B":
        """A JSON string value: quotes outside the span, escapes (\\n) inside it."""
        value, tag = value if isinstance(value, tuple) else (value, "")
        inner = json.dumps(value)[1:-1]
        if escape_twice:
            inner = json.dumps(inner)[1:-1]
        return self.ent(kind, (inner, tag))

    def build(self, kind: str) -> Snippet:
        return Snippet("".join(self.parts), self.spans, kind)


def _faker(locale: str, seed: int):
    from faker import Faker
    f = Faker(locale)
    f.seed_instance(seed * 7919 + sum(map(ord, locale)))
    return f


class Values:
    """Random but realistic values of every type, plus hard negatives."""

    def __init__(self, rng: random.Random, seed: int):
        self.r = rng
        self.seed = seed
        self._fakers: dict[str, object] = {}     # one seeded Faker per locale per build

    def _pick_locale(self, dev, held):
        if self.r.random() < HELD_OUT_SHARE:
            return self.r.choice(held), "held_out"
        return self.r.choice(dev), ""

    def f(self, locale: str):
        f = self._fakers.get(locale)
        if f is None:
            f = self._fakers[locale] = _faker(locale, self.seed)
        return f

    # ---- people -------------------------------------------------------------------------
    def person_parts(self) -> tuple[str, str, str]:
        """(given, family, tag). tag "" = a development locale (names mostly in the gazetteer),
        "held_out" = a locale the gazetteer does not include, "unseen" = a name none of whose
        words the gazetteer holds: half from held-out locales, half invented (syllables)."""
        u = self.r.random()
        if u < UNSEEN_NAME_SHARE:
            for _ in range(20):
                if self.r.random() < 0.5:
                    first, last = invented_name(self.r)
                else:
                    f = self.f(self.r.choice(PERSON_HELD_OUT))
                    first, last = f.first_name().split()[0], f.last_name()
                if not in_gazetteer(first) and not in_gazetteer(last):
                    return first, last, "unseen"
            return invented_name(self.r) + ("unseen",)
        loc, tag = (self.r.choice(PERSON_HELD_OUT), "held_out") if u < UNSEEN_NAME_SHARE + HELD_OUT_SHARE \
            else (self.r.choice(PERSON_DEV), "")
        f = self.f(loc)
        first = f.first_name().split()[0]
        last = f.last_name()
        return first, last, tag

    def person(self) -> tuple[str, str]:
        first, last, tag = self.person_parts()
        return f"{first} {last}", tag

    # ---- contact -------------------------------------------------------------------------
    def email(self, name: tuple[str, str] | None = None) -> str:
        r = self.r
        f = self.f(r.choice(PERSON_DEV))
        style = r.random()
        if style < 0.35:
            return f.email()
        if style < 0.55:
            return f.company_email()
        if style < 0.7 and name:
            first, _, last = name[0].partition(" ")
            local = r.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}", f"{first}+{r.choice(['billing', 'news', 'test'])}"])
            local = "".join(ch for ch in local.lower() if ch.isascii() and (ch.isalnum() or ch in "._+"))
            return f"{local or 'user'}@{r.choice(['gmail.com', 'outlook.com', 'acme.io', 'mail.example.co.uk', 'corp.example.dev', 'proton.me'])}"
        if style < 0.8:
            return f"{f.user_name()}{r.randint(1, 999)}@{f.free_email_domain()}"
        if style < 0.9:
            return f.email().upper() if r.random() < 0.3 else f"{f.user_name()}@{f.domain_word()}.{r.choice(['io', 'dev', 'ai', 'museum', 'co.jp', 'com.br'])}"
        return f"{f.first_name().lower()}-{f.last_name().lower()}@{f.domain_name()}".replace(" ", "")

    def phone(self) -> tuple[str, str]:
        loc, tag = self._pick_locale(PHONE_DEV, PHONE_HELD_OUT)
        f = self.f(loc)
        return f.phone_number(), tag

    def address(self) -> tuple[str, str]:
        loc, tag = self._pick_locale(ADDRESS_DEV, ADDRESS_HELD_OUT)
        f = self.f(loc)
        r = self.r.random()
        if r < 0.35:
            return f.address(), tag
        street = f.street_address()
        if r < 0.55:
            return street, tag
        city = f.city()
        post = f.postcode()
        if loc.startswith("en_"):
            region = ""
            if hasattr(f, "state_abbr"):
                region = f.state_abbr() + " "
            elif hasattr(f, "province_abbr"):
                region = f.province_abbr() + " "
            return f"{street}, {city}, {region}{post}", tag
        return f"{street}, {post} {city}", tag

    # ---- money and ids -------------------------------------------------------------------
    def card(self) -> str:
        r = self.r
        f = self.f("en_US")
        ctype = r.choice(["visa16", "visa16", "mastercard", "mastercard", "amex", "discover", "jcb16", "diners", "maestro"])
        number = f.credit_card_number(card_type=ctype)
        style = r.random()
        if style < 0.4:
            return number
        sep = " " if style < 0.75 else "-"
        if len(number) == 15:
            return sep.join((number[:4], number[4:10], number[10:]))
        if len(number) == 14:
            return sep.join((number[:4], number[4:10], number[10:]))
        return sep.join(number[i:i + 4] for i in range(0, len(number), 4))

    def iban(self) -> str:
        value = self.f(self.r.choice(IBAN_LOCALES)).iban()
        if self.r.random() < 0.5:
            return " ".join(value[i:i + 4] for i in range(0, len(value), 4))
        return value

    def ssn(self) -> str:
        value = self.f("en_US").ssn()
        style = self.r.random()
        if style < 0.7:
            return value
        return value.replace("-", " ") if style < 0.85 else value.replace("-", "")

    def ipv4(self) -> str:
        f = self.f("en_US")
        return self.r.choice([f.ipv4_public(), f.ipv4_private(), f.ipv4(), f.ipv4_public()])

    def ipv6(self) -> str:
        import ipaddress
        full = self.f("en_US").ipv6()
        return full if self.r.random() < 0.4 else str(ipaddress.ip_address(full).compressed)

    def ip(self) -> str:
        return self.ipv6() if self.r.random() < 0.25 else self.ipv4()

    # ---- secrets -------------------------------------------------------------------------
    def _chars(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def secret_token(self) -> str:
        """A provider token in its real published format."""
        r, c = self.r, self._chars
        kind = r.randrange(15)
        b32 = string.ascii_uppercase + "234567"
        urlsafe = string.ascii_letters + string.digits + "-_"
        if kind == 0:
            return "AKIA" + c(16, b32)
        if kind == 1:
            return "sk-proj-" + c(r.choice([48, 64, 120]), urlsafe)
        if kind == 2:
            return "sk-" + c(20) + "T3BlbkFJ" + c(20)
        if kind == 3:
            return "sk-ant-api03-" + c(93, urlsafe) + "AA"
        if kind == 4:
            return "ghp_" + c(36)
        if kind == 5:
            return "github_pat_11" + c(20, string.ascii_uppercase + string.digits) + "_" + c(59)
        if kind == 6:
            return f"xox{r.choice('bpa')}-{r.randint(10**10, 10**12)}-{r.randint(10**10, 10**12)}-{c(24)}"
        if kind == 7:
            return r.choice(["sk_live_", "rk_live_", "sk_test_"]) + c(r.choice([24, 99]))
        if kind == 8:
            return "AIza" + c(35, urlsafe)
        if kind == 9:
            return self.jwt()
        if kind == 10:
            return "glpat-" + c(20, urlsafe)
        if kind == 11:
            return "hf_" + c(34)
        if kind == 12:
            return "npm_" + c(36)
        if kind == 13:
            return "SG." + c(22, urlsafe) + "." + c(43, urlsafe)
        return "ghs_" + c(36)

    def jwt(self) -> str:
        def b64(obj) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
        head = b64({"alg": self.r.choice(["HS256", "RS256"]), "typ": "JWT"})
        body = b64({"sub": str(self.r.randint(10**6, 10**9)), "iat": self.r.randint(1.6e9, 1.8e9),
                    "scope": self.r.choice(["read", "admin", "orders:write"])})
        return f"{head}.{body}.{self._chars(43, string.ascii_letters + string.digits + '-_')}"

    def pem(self) -> str:
        kind = self.r.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
        lines = [self._chars(64, string.ascii_letters + string.digits + "+/") for _ in range(self.r.randint(4, 12))]
        return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"

    def password(self) -> str:
        r = self.r
        style = r.random()
        if style < 0.4:
            return self._chars(r.randint(12, 24), string.ascii_letters + string.digits + "!#%^*-_")
        if style < 0.7:
            return r.choice(["Summer", "Winter", "Dragon", "Monkey", "Sunshine", "Welcome", "Passw0rd"]) + str(r.randint(1, 2025)) + r.choice(["!", "#", "", "$"])
        return self.f("en_US").password(length=r.randint(10, 20), special_chars=False)

    def random_key(self) -> str:
        r = self.r
        return self._chars(r.choice([32, 40, 48]), r.choice([string.ascii_letters + string.digits, string.hexdigits.lower()[:16] + string.ascii_uppercase]))

    # ---- hard negatives (never labelled) -------------------------------------------------
    def version(self) -> str:
        r = self.r
        a, b, c = r.randint(0, 12), r.randint(0, 30), r.randint(0, 40)
        return r.choice([f"{a}.{b}.{c}", f"v{a}.{b}.{c}", f"v{r.randint(1, 12)}.0.0.{r.randint(1, 9)}",
                         f"{a}.{b}.{c}-rc.{r.randint(1, 5)}", f"{a}.{b}", f"{a}.{b}.{c}+build.{r.randint(1, 999)}",
                         f"{r.randint(90, 130)}.0.{r.randint(1000, 6999)}.{r.randint(10, 200)}"])

    def ip_like_version(self) -> str:
        r = self.r
        return r.choice([f"version {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 99)}",
                         f"v{r.randint(1, 20)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
                         f"build {r.randint(1, 10)}.{r.randint(0, 9)}.{r.randint(0, 200)}.{r.randint(1, 200)}",
                         f"=={r.randint(1, 5)}.{r.randint(0, 30)}.{r.randint(0, 9)}.{r.randint(0, 9)}"])

    def dt(self) -> datetime:
        """A moment in a fixed range (never relative to today: the set must not drift)."""
        return datetime(2021, 1, 1) + timedelta(seconds=self.r.randrange(6 * 365 * 86400))

    def date(self) -> str:
        f = self.f("en_US")
        d = self.dt().date()
        return self.r.choice([d.isoformat(), d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%Y"),
                              d.strftime("%B %d, %Y"), self.dt().isoformat(), d.strftime("%d/%m/%Y"),
                              f"{d.isoformat()} {self.r.randint(0, 23):02d}:{self.r.randint(0, 59):02d}"])

    def order_id(self) -> str:
        r = self.r
        return r.choice([f"ORD-{r.randint(2019, 2025)}-{r.randint(0, 999999):06d}", f"#{r.randint(10**6, 10**7)}",
                         f"INV-{r.randint(1000, 99999)}", f"{r.randint(10**9, 10**10 - 1)}",
                         f"PO{r.randint(10**7, 10**8)}", f"{r.randint(100, 999)}-{r.randint(1000000, 9999999)}-{r.randint(1000000, 9999999)}"])

    def sha(self) -> str:
        return "".join(self.r.choice("0123456789abcdef") for _ in range(self.r.choice([7, 40, 64, 32])))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def bad_card(self) -> str:
        """A card-shaped number that fails Luhn."""
        good = self.f("en_US").credit_card_number(card_type="visa16")
        last = str((int(good[-1]) + self.r.randint(1, 9)) % 10)
        bad = good[:-1] + last
        return " ".join(bad[i:i + 4] for i in range(0, 16, 4)) if self.r.random() < 0.5 else bad

    def bad_iban(self) -> str:
        good = self.f(self.r.choice(IBAN_LOCALES)).iban()
        check = (int(good[2:4]) + self.r.randint(1, 90)) % 100
        return f"{good[:2]}{check:02d}{good[4:]}"

    def epoch(self) -> str:
        return str(self.r.randint(1_600_000_000, 1_800_000_000) * (1000 if self.r.random() < 0.5 else 1))

    def company(self) -> str:
        return self.f(self.r.choice(("en_US", "en_GB", "de_DE"))).company()

    def capitalised_non_names(self) -> str:
        return self.r.choice([
            "Kafka Streams", "Visual Studio Code", "Google Cloud Run", "San Francisco office",
            "New York region", "Grafana dashboard", "Jenkins pipeline", "Ruby on Rails",
            "Julia notebook", "Apple Pay", "Black Friday sale", "Customer Success team",
            "Support Team", "Mark as resolved", "Will retry", "Grace period", "May release",
            "Jordan warehouse", "Victoria station", "Amazon S3", "Microsoft Teams", "Salesforce CRM",
            "Stripe Checkout", "Claude Sonnet", "GitHub Actions", "Monday standup", "Apache Kafka",
            "Hugging Face", "Azure Functions", "Grafana Loki", "Mistral Large", "Vertex AI",
            "Hello World", "Lagos office", "Helsinki region", "Nairobi data centre", "Zendesk Sunshine",
            "Oracle Cloud", "Pivotal Tracker", "Sentry Relay", "Tableau Prep", "Okta Verify"])

    def identifier(self) -> str:
        """Code identifiers and capitalised sentence starts: capitalised, never a person."""
        return self.r.choice([
            "UserAccountService", "NullPointerException", "HttpClient", "OrderRepository.save()",
            "KafkaConsumer", "LoginViewController", "Traceback", "Starting", "Retrying", "Mutex",
            "Deadline Exceeded", "Quota Exhausted", "Bad Gateway", "Invalid Argument", "Unauthenticated",
            "Exited", "Warn", "Nginx Ingress", "Kubelet", "Terraform Plan", "Pydantic ValidationError",
            "Fastapi", "Uvicorn", "Gunicorn", "Webpack", "Vite", "Esbuild", "Prisma Client"])


# ---- templates --------------------------------------------------------------------------
def t_chat_support(b: _B, v: Values):
    name = v.person()
    b.add(v.r.choice(["Hi, my name is ", "Hello, this is ", "hey there, I'm "])).ent("PERSON", name)
    b.add(v.r.choice([" and my email is ", ". You can reach me at ", " (account "])).ent("EMAIL", v.email(name))
    b.add(v.r.choice([". I was charged twice for order ", ") - duplicate charge on order "])).add(v.order_id())
    b.add(f" placed on {v.date()}. ")
    if v.r.random() < 0.5:
        b.add("The card I used is ").ent("CREDIT_CARD", v.card()).add(f", app version {v.version()}.")
    else:
        b.add("Please call me back on ").ent("PHONE", v.phone()).add(" after 5pm.")


def t_email(b: _B, v: Values):
    sender, rcpt = v.person(), v.person()
    b.add("From: ").ent("PERSON", sender).add(" <").ent("EMAIL", v.email(sender)).add(">\n")
    b.add("To: ").ent("EMAIL", v.email(rcpt)).add("\n")
    b.add(f"Date: {v.date()}\nSubject: Re: {v.r.choice(['Invoice', 'Contract renewal', 'Ticket'])} {v.order_id()}\n\n")
    b.add(v.r.choice(["Hi ", "Dear ", "Hello "])).ent("PERSON", (rcpt[0].split()[0], rcpt[1])).add(",\n\n")
    b.add(v.r.choice(["Thanks for the quick reply. ", "Following up on our call. ", ""]))
    b.add(f"The {v.capitalised_non_names()} issue is fixed in {v.version()}. ")
    if v.r.random() < 0.6:
        b.add("Feel free to call me at ").ent("PHONE", v.phone()).add(".\n\n")
    else:
        b.add("The new office is at ").ent("ADDRESS", v.address()).add(".\n\n")
    b.add(v.r.choice(["Best regards,\n", "Thanks,\n", "Cheers,\n", "Kind regards,\n"])).ent("PERSON", sender)
    b.add(f"\n{v.company()}\n")
    if v.r.random() < 0.5:
        b.add("Mobile: ").ent("PHONE", v.phone())


def t_tool_call(b: _B, v: Values):
    name = v.person()
    if v.r.random() < 0.25:
        name = (name[0].lower(), name[1])
    b.add('{"name": "update_customer", "arguments": {"customer_name": "').jent("PERSON", name)
    b.add('", "email": "').jent("EMAIL", v.email(name)).add('", "phone": "').jent("PHONE", v.phone())
    b.add('", "shipping_address": "').jent("ADDRESS", v.address())
    b.add(f'", "customer_id": "{v.uuid()}", "plan": "pro", "seats": {v.r.randint(1, 200)}, '
          f'"updated_at": "{v.date()}"' + "}}")


def t_tool_call_escaped(b: _B, v: Values):
    """OpenAI-style: arguments are a JSON string inside JSON (quotes and newlines escaped)."""
    name = v.person()
    b.add('[{"id": "call_' + v._chars(24) + '", "type": "function", "function": {"name": "send_email", "arguments": "{\\"to\\": \\"')
    b.jent("EMAIL", v.email(name), escape_twice=False)
    b.add('\\", \\"subject\\": \\"Your refund for order ' + v.order_id() + '\\", \\"body\\": \\"Hi ')
    b.ent("PERSON", (name[0].split()[0], name[1]))
    b.add(",\\\\n\\\\nWe refunded the charge on card ending " + str(v.r.randint(1000, 9999)) + ". If you have questions call ")
    b.ent("PHONE", v.phone())
    b.add(".\\\\n\\\\nRegards,\\\\n")
    agent = v.person()
    b.ent("PERSON", agent)
    b.add('\\"}"}}]')


def t_log(b: _B, v: Values):
    for _ in range(v.r.randint(2, 4)):
        b.add(f"{v.dt().isoformat()}Z INFO api request_id={v.uuid()} ")
        choice = v.r.random()
        if choice < 0.35:
            b.add("user=").ent("EMAIL", v.email()).add(" client_ip=").ent("IP_ADDRESS", v.ip())
        elif choice < 0.6:
            b.add(f"version={v.version()} commit={v.sha()} latency_ms={v.r.randint(3, 900)}")
        elif choice < 0.8:
            b.add("login failed for ").ent("EMAIL", v.email()).add(" from ").ent("IP_ADDRESS", v.ip())
        else:
            b.add(f"order={v.order_id()} amount={v.r.randint(1, 999)}.{v.r.randint(0, 99):02d} ts={v.epoch()}")
        b.add("\n")


def t_access_log(b: _B, v: Values):
    for _ in range(v.r.randint(1, 3)):
        b.ent("IP_ADDRESS", v.ipv4()).add(f' - - [{v.dt().strftime("%d/%b/%Y:%H:%M:%S")} +0000] '
                                         f'"GET /api/v{v.r.randint(1, 3)}/orders/{v.r.randint(1, 99999)} HTTP/1.1" '
                                         f'{v.r.choice([200, 404, 500])} {v.r.randint(100, 99999)} "-" '
                                         f'"Mozilla/5.0 Chrome/{v.r.randint(90, 130)}.0.{v.r.randint(1000, 6999)}.{v.r.randint(10, 200)}"\n')


def t_env(b: _B, v: Values):
    b.add("export AWS_ACCESS_KEY_ID=").ent("SECRET", "AKIA" + v._chars(16, string.ascii_uppercase + "234567")).add("\n")
    b.add("export AWS_SECRET_ACCESS_KEY=").ent("SECRET", v._chars(40, string.ascii_letters + string.digits + "+/")).add("\n")
    user = v.f("en_US").user_name()
    b.add(f"DATABASE_URL={v.r.choice(['postgres', 'mysql', 'mongodb+srv', 'redis'])}://{user}:").ent("SECRET", v.password().replace("#", "x"))
    b.add(f"@db-{v.r.randint(1, 9)}.internal:5432/app\nLOG_LEVEL=info\nAPP_VERSION={v.version()}\nMAX_TOKENS={v.r.choice([256, 512, 4096])}\n")
    b.add(f"CACHE_KEY_PREFIX=user_profile\nGIT_SHA={v.sha()}\n")


def t_code(b: _B, v: Values):
    tok = v.secret_token()
    b.add("import openai\n\nclient = Client(api_key=\"").ent("SECRET", tok).add("\")\n")
    b.add(f"# pinned to {v.version()} at commit {v.sha()}\n")
    b.add(f'resp = client.chat.completions.create(model="gpt-4o-mini", max_tokens={v.r.choice([128, 512])}, '
          f'user="{v.uuid()}")\n')
    if v.r.random() < 0.5:
        b.add('stripe.api_key = "').ent("SECRET", "sk_live_" + v._chars(24)).add('"\n')
    else:
        b.add('headers = {"Authorization": "Bearer ').ent("SECRET", v.random_key()).add('"}\n')


def t_http(b: _B, v: Values):
    b.add(f"POST /v1/charges HTTP/1.1\nHost: api.example.com\nAuthorization: Bearer ").ent("SECRET", v.secret_token() if v.r.random() < 0.5 else v.jwt())
    b.add(f"\nX-Request-Id: {v.uuid()}\nX-Forwarded-For: ").ent("IP_ADDRESS", v.ip()).add("\nContent-Type: application/json\n\n")
    b.add('{"amount": ' + str(v.r.randint(100, 99999)) + ', "currency": "usd", "card": {"number": "').jent("CREDIT_CARD", v.card())
    b.add(f'", "exp": "{v.r.randint(1, 12):02d}/{v.r.randint(25, 32)}"}}, "metadata": {{"order": "{v.order_id()}"}}}}')


def t_payment_ticket(b: _B, v: Values):
    name = v.person()
    b.add(f"Ticket {v.order_id()}: ").ent("PERSON", name).add(v.r.choice([" asked for a refund of ", " disputes a charge of "]))
    b.add(f"${v.r.randint(5, 900)}.{v.r.randint(0, 99):02d}. ")
    b.add("Refund to IBAN ").ent("IBAN", v.iban()).add(f" (BIC {v.f('de_DE').swift()}). ")
    b.add(f"Original charge on card ").ent("CREDIT_CARD", v.card()).add(f" on {v.date()}. ")
    b.add(f"Note: reference number {v.bad_card()} is our internal batch id, not a card.")


def t_hr_form(b: _B, v: Values):
    name = v.person()
    b.add("Employee: ").ent("PERSON", name).add("\nSSN: ").ent("US_SSN", v.ssn())
    b.add("\nAddress: ").ent("ADDRESS", v.address()).add("\nPhone: ").ent("PHONE", v.phone())
    b.add(f"\nStart date: {v.date()}\nEmployee ID: E{v.r.randint(10000, 99999)}\nManager: ").ent("PERSON", v.person())
    b.add("\n")


def t_shipping(b: _B, v: Values):
    name = v.person()
    b.add(v.r.choice(["Please ship order ", "Ship "])).add(v.order_id()).add(" to ").ent("PERSON", name).add(", ")
    b.ent("ADDRESS", v.address()).add(f". Tracking 1Z{v._chars(6, string.ascii_uppercase + string.digits)}{v.r.randint(10**9, 10**10)}. ")
    b.add(f"Estimated delivery {v.date()}.")


def t_csv(b: _B, v: Values):
    b.add("id,name,email,phone,last_ip,plan_version\n")
    for i in range(v.r.randint(2, 4)):
        name = v.person()
        b.add(f"{v.r.randint(1, 99999)},").ent("PERSON", name).add(",").ent("EMAIL", v.email(name)).add(",")
        b.ent("PHONE", v.phone()).add(",").ent("IP_ADDRESS", v.ipv4()).add(f",{v.version()}\n")


def t_stacktrace(b: _B, v: Values):
    ip = v.ipv4()
    b.add("Traceback (most recent call last):\n  File \"/srv/app/db.py\", line 42, in connect\n")
    b.add(f"psycopg2.OperationalError: connection to server at \"").ent("IP_ADDRESS", ip).add(f"\", port 5432 failed: timeout\n")
    b.add(f"DSN: host=db.internal port=5432 user=app password=").ent("SECRET", v.password().replace(" ", "")).add(" dbname=orders\n")
    b.add(f"worker pid={v.r.randint(100, 99999)} version={v.version()} trace_id={v.sha()}")


def t_k8s(b: _B, v: Values):
    b.add(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-creds\n  labels:\n    version: \"{v.version()}\"\nstringData:\n")
    b.add("  DB_PASSWORD: ").ent("SECRET", v.password()).add("\n")
    b.add("  SLACK_BOT_TOKEN: ").ent("SECRET", f"xoxb-{v.r.randint(10**10, 10**12)}-{v.r.randint(10**10, 10**12)}-{v._chars(24)}").add("\n")
    b.add(f"  image: registry.example.com/api@sha256:{''.join(v.r.choice('0123456789abcdef') for _ in range(64))}\n")


def t_git_log(b: _B, v: Values):
    name = v.person()
    b.add(f"commit {''.join(v.r.choice('0123456789abcdef') for _ in range(40))}\nAuthor: ").ent("PERSON", name)
    b.add(" <").ent("EMAIL", v.email(name)).add(f">\nDate:   {v.date()}\n\n    Bump {v.r.choice(['api', 'sdk', 'worker'])} to {v.version()}\n")
    b.add(f"    Fixes {v.r.choice(['JIRA', 'OPS', 'SUP'])}-{v.r.randint(10, 9999)}; tested on {v.ip_like_version()}\n")


def t_infra_chat(b: _B, v: Values):
    b.add(f"After upgrading to {v.ip_like_version()} our server at ").ent("IP_ADDRESS", v.ipv6() if v.r.random() < 0.5 else v.ipv4())
    b.add(" stopped answering. The firewall allows ").ent("IP_ADDRESS", v.ipv4()).add(f"/24 and the LB health check hits {v.version()} of the app. ")
    b.add(f"Deployment id {v.uuid()}, image digest sha256:{v.sha()}.")


def t_pem(b: _B, v: Values):
    if v.r.random() < 0.5:
        b.add("Here is the key file you asked about:\n").ent("SECRET", v.pem()).add(f"\nIt was generated on {v.date()}.")
    else:
        b.add('{"tool": "read_file", "path": "/home/deploy/.ssh/id_rsa", "content": "').jent("SECRET", v.pem()).add('"}')


def t_webhook(b: _B, v: Values):
    first, last, tag = v.person_parts()
    b.add(f"ping ").ent("PERSON", (first, tag)).add(", the webhook https://hooks.slack.com/services/")
    b.ent("SECRET", f"T{v._chars(9, string.ascii_uppercase + string.digits)}/B{v._chars(9, string.ascii_uppercase + string.digits)}/{v._chars(24)}")
    b.add(f" returns 403 since {v.date()}. Token in vault is ").ent("SECRET", v.secret_token()).add(".")


def t_negatives(b: _B, v: Values):
    """Nothing to redact here: every number and word must survive."""
    parts = [
        f"Upgraded from {v.version()} to {v.version()}",
        f"see {v.ip_like_version()}",
        f"commit {v.sha()}",
        f"request {v.uuid()}",
        f"order {v.order_id()}",
        f"batch {v.bad_card()}",
        f"ref {v.bad_iban()}",
        f"on {v.date()}",
        f"ts={v.epoch()}",
        f"{v.capitalised_non_names()}",
        f"max_tokens={v.r.choice([256, 1024])}",
        f'"key": "user_profile:{v.r.randint(1, 999)}"',
        f"token_count {v.r.randint(10, 5000)}",
        f"port {v.r.randint(1024, 65535)}",
        f"took {v.r.randint(1, 999)} ms",
        f"MAC {':'.join(f'{v.r.randint(0, 255):02X}' for _ in range(6))}",
        f"ISBN 978-{v.r.randint(0, 9)}-{v.r.randint(100, 999)}-{v.r.randint(10000, 99999)}-{v.r.randint(0, 9)}",
        f"{v.r.choice(['Will', 'May', 'Mark', 'Grace', 'Faith'])} {v.r.choice(['this', 'the team', 'it'])} ship on time?",
        f"price ${v.r.randint(1, 9999)}.{v.r.randint(0, 99):02d}",
        f"memory at 0x{v.r.getrandbits(48):012x}",
        f"{v.identifier()} raised at line {v.r.randint(1, 999)}",
        f"{v.r.choice(['Hi team', 'Dear Customer', 'Hello World', 'Hi all', 'Dear Sir or Madam'])}, {v.identifier()} is back",
        f"with {v.capitalised_non_names()} and {v.identifier()}",
        f"user {v.identifier()} settings",
        f"pod api-{v._chars(9, 'abcdef0123456789')}-{v._chars(5, 'abcdefghjkmnpqrstuvwxyz0123456789')}",
    ]
    v.r.shuffle(parts)
    b.add("; ".join(parts[:v.r.randint(5, 9)]) + ".")


def t_meeting(b: _B, v: Values):
    a, c = v.person(), v.person()
    b.add("Met with ").ent("PERSON", a).add(" and ").ent("PERSON", c).add(f" from {v.company()} on {v.date()}. ")
    b.ent("PERSON", (a[0].split()[0], a[1])).add(" will send the signed contract to ").ent("EMAIL", v.email(a))
    b.add(f" by {v.date()}. Action items tracked in {v.capitalised_non_names()}.")


def t_prompt_summarise(b: _B, v: Values):
    name = v.person()
    b.add("Summarise this customer message and classify its intent:\n\n\"")
    b.add(v.r.choice(["I moved last month, ", "Please update my details: "]))
    b.add("my new address is ").ent("ADDRESS", v.address()).add(" and my number is ").ent("PHONE", v.phone())
    b.add(f". My SSN ").ent("US_SSN", v.ssn()).add(" was entered wrong on the form. Thanks, ").ent("PERSON", name).add('"')


def t_secrets_prose(b: _B, v: Values):
    b.add(v.r.choice(["The staging password is ", "temp password: ", "Use password "])).ent("SECRET", v.password())
    b.add(v.r.choice([" and the api key is ", "; api_key=", ", token: "])).ent("SECRET", v.random_key())
    b.add(f". Rotate both before {v.date()} (ticket {v.order_id()}, secret_name=prod/db-creds).")


def t_connection_string(b: _B, v: Values):
    b.add(f"Server=tcp:sql-{v.r.randint(1, 99)}.database.windows.net,1433;Database=orders;User ID=svc_app;Password=")
    b.ent("SECRET", v.password().replace(";", "x")).add(";Encrypt=True;\n")
    b.add("DefaultEndpointsProtocol=https;AccountName=store" + str(v.r.randint(1, 999)) + ";AccountKey=")
    b.ent("SECRET", base64.b64encode(v.r.getrandbits(512).to_bytes(64, "big")).decode()).add(";EndpointSuffix=core.windows.net")


def t_json_metadata(b: _B, v: Values):
    name = v.person()
    b.add('{"event": "signup", "user": {"full_name": "').jent("PERSON", name).add('", "email": "').jent("EMAIL", v.email(name))
    b.add(f'", "ip": "').jent("IP_ADDRESS", v.ip()).add(f'", "user_agent": "sdk/{v.version()}", "session_id": "{v.uuid()}"}}, ')
    b.add('"payment": {"iban": "').jent("IBAN", v.iban()).add(f'", "amount": {v.r.randint(1, 500)}}}, "ts": {v.epoch()}}}')


def t_assigned(b: _B, v: Values):
    name = v.person()
    b.add(f"[{v.r.choice(['SUP', 'OPS'])}-{v.r.randint(100, 9999)}] {v.r.choice(['Login loop', 'Refund', 'Data export'])} - assigned to ")
    b.ent("PERSON", name).add(f", priority P{v.r.randint(1, 4)}. Reporter: ").ent("PERSON", v.person())
    b.add(f". Customer can be reached at ").ent("EMAIL", v.email()).add(f". Affects {v.capitalised_non_names()} on {v.version()}.")


def t_auth_log(b: _B, v: Values):
    """Application logs that name the user (first and last name) beside ids and addresses."""
    for _ in range(v.r.randint(1, 3)):
        name = v.person()
        b.add(f"{v.dt().isoformat()}Z INFO auth ")
        if v.r.random() < 0.5:
            b.add("user ").ent("PERSON", name).add(" (").ent("EMAIL", v.email(name)).add(") signed in from ").ent("IP_ADDRESS", v.ipv4())
        else:
            b.add(f"request_id={v.uuid()} ").add(v.r.choice(["user=\"", "display_name=\""])).ent("PERSON", name)
            b.add(f"\" role={v.r.choice(['admin', 'viewer', 'billing'])} {v.identifier()} ok")
        b.add(f" sdk={v.version()}\n")


def t_transcript(b: _B, v: Values):
    """A chat transcript with speaker labels, a hand-off and a contact line."""
    cust, agent = v.person(), v.person()
    b.add(f"[{v.r.randint(8, 18):02d}:{v.r.randint(0, 59):02d}] ").ent("PERSON", cust)
    b.add(f": {v.r.choice(['my export keeps failing', 'I was billed twice', 'cannot log in since the update'])}\n")
    b.add(f"[{v.r.randint(8, 18):02d}:{v.r.randint(0, 59):02d}] ").ent("PERSON", agent)
    b.add(f": sorry about that, checking order {v.order_id()} now\n")
    b.add(v.r.choice(["Escalated to ", "Handed over to ", "Assigned to "])).ent("PERSON", v.person())
    b.add(f" ({v.capitalised_non_names()}). Contact: ").ent("PERSON", (cust[0].split()[0], cust[1]) if v.r.random() < 0.2 else cust)
    b.add(", ").ent("PHONE", v.phone()).add(".")


def t_signature(b: _B, v: Values):
    """An e-mail body closed by a signature block after "--"."""
    name, rcpt = v.person(), v.person()
    b.add(v.r.choice(["Dear ", "Hi ", "Hello "])).ent("PERSON", (rcpt[0].split()[0], rcpt[1])).add(",\n\n")
    b.add(f"{v.identifier()} shows up again after {v.version()}; logs attached (request {v.uuid()}).\n\n--\n")
    b.ent("PERSON", name).add(f"\n{v.r.choice(['Senior Engineer', 'Head of Support', 'Account Manager'])}, {v.company()}\n")
    b.add("m: ").ent("PHONE", v.phone()).add(" | ").ent("EMAIL", v.email(name))


# ---- contexts held out from development -------------------------------------------------
# Written after the name rules and never used to develop them (their errors were not read):
# recall on these snippets ("ho_" kinds) estimates quality in contexts the rules were not
# shaped on. The benchmark reports it separately.
def ho_calendar(b: _B, v: Values):
    b.add(f"Calendar invite: \"{v.r.choice(['Q3 roadmap', 'Renewal call', 'Incident review'])}\" with ")
    b.ent("PERSON", v.person()).add(" and ").ent("PERSON", v.person())
    b.add(f" on {v.date()} at 15:00 (Room {v.r.randint(1, 40)}B, {v.capitalised_non_names()}). Organizer: ")
    b.ent("EMAIL", v.email()).add(".")


def ho_prose(b: _B, v: Values):
    first, last, tag = v.person_parts()
    b.add("Can you check why ").ent("PERSON", (f"{first} {last}", tag)).add(f"'s account is locked? ")
    b.ent("PERSON", (first, tag)).add(v.r.choice([" says the reset email never arrived", " tried twice already",
                                                   " is stuck on the MFA screen"]))
    b.add(f" and {v.identifier()} shows nothing for request {v.uuid()}.")


def ho_crm(b: _B, v: Values):
    first, last, tag = v.person_parts()
    b.add("Lead: ").ent("PERSON", (f"{first} {last}", tag)).add(f", {v.r.choice(['VP Engineering', 'CTO', 'Procurement'])} at {v.company()}. ")
    b.add(f"Next step: demo on {v.date()}. Notes: ").ent("PERSON", (first, tag))
    b.add(" prefers email (").ent("EMAIL", v.email((f"{first} {last}", tag))).add(f"); budget approved in {v.capitalised_non_names()}.")


def ho_slack_export(b: _B, v: Values):
    first, last, tag = v.person_parts()
    uid = "U" + v._chars(10, string.ascii_uppercase + string.digits)
    b.add('{"type": "message", "user": "' + uid + '", "user_profile": {"real_name": "')
    b.jent("PERSON", (f"{first} {last}", tag)).add('", "display_name": "').jent("PERSON", (first.lower(), tag))
    b.add(f'"}}, "text": "<@{uid}> can you look at order {v.order_id()}? {v.capitalised_non_names()} is down", "ts": "{v.epoch()}.000200"}}')


def ho_git_trailers(b: _B, v: Values):
    a, c = v.person(), v.person()
    b.add(f"Fix retry storm in {v.identifier()}\n\nReviewed-by: ").ent("PERSON", a).add(" <").ent("EMAIL", v.email(a))
    b.add(">\nSigned-off-by: ").ent("PERSON", c).add(" <").ent("EMAIL", v.email(c)).add(f">\nChange-Id: I{v.sha()}")


def ho_narrative(b: _B, v: Values):
    b.add(v.r.choice(["Yesterday ", "This morning ", "On Monday "])).ent("PERSON", v.person())
    b.add(f" from {v.company()} phoned about invoice {v.order_id()}; I promised a refund by {v.date()}. ")
    b.add(v.r.choice(["Loop in ", "Please update ", "Escalate to "])).ent("PERSON", v.person())
    b.add(f" if {v.capitalised_non_names()} is still failing.")


HELD_OUT_CONTEXTS = [ho_calendar, ho_prose, ho_crm, ho_slack_export, ho_git_trailers, ho_narrative]

TEMPLATES = [t_chat_support, t_email, t_tool_call, t_tool_call_escaped, t_log, t_access_log, t_env,
             t_code, t_http, t_payment_ticket, t_hr_form, t_shipping, t_csv, t_stacktrace, t_k8s,
             t_git_log, t_infra_chat, t_pem, t_webhook, t_negatives, t_negatives, t_meeting,
             t_prompt_summarise, t_secrets_prose, t_connection_string, t_json_metadata, t_assigned,
             t_auth_log, t_transcript, t_signature] + HELD_OUT_CONTEXTS


def build_corpus(n: int = 2400, seed: int = 0) -> list[Snippet]:
    rng = random.Random(seed)
    values = Values(rng, seed)
    out = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)] if i < len(TEMPLATES) else rng.choice(TEMPLATES)
        b = _B()
        template(b, values)
        out.append(b.build(template.__name__[2:] if template.__name__.startswith("t_") else template.__name__))
    return out


def one_kb_events(corpus: list[Snippet], count: int, seed: int = 0, size: int = 1024) -> list[str]:
    """~1 KB texts made of consecutive snippets, for throughput runs."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts, total = [], 0
        while total < size:
            s = rng.choice(corpus).text
            parts.append(s)
            total += len(s) + 1
        out.append("\n".join(parts)[:size])
    return out
