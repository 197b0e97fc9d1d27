"""Realistic personal data and secrets, planted in prompts as canaries for leak tests.

Every value is freshly generated (valid Luhn card numbers, valid mod-97 IBANs, public IPs,
provider-shaped API keys), so a test can search every downstream topic, table and file for
the exact strings and know that any hit is a leak. Person names here are disjoint from the
user-name vocabulary, and IPs are from public ranges the DNS family never uses.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass

PERSON_FIRST = (
    "Marisol", "Thaddeus", "Wilhelmina", "Bartholomew", "Esperanza", "Cornelius", "Genevieve",
    "Leopold", "Rosalind", "Ignatius", "Philippa", "Evander", "Ottilie", "Cassius", "Henrietta",
    "Augustin", "Seraphina", "Lysander", "Imogen", "Peregrine", "Zuleika", "Desmond", "Clementine",
)
PERSON_LAST = (
    "Quackenbush", "Abernathy", "Vanterpool", "Okonkwo-Reyes", "Featherstonehaugh", "Montgomery",
    "Delacroix", "Castellanos", "Brightwater", "Oyelaran", "Szczepanski", "Haverford",
    "Lindqvist-Moreau", "Achterberg", "Ravensworth", "Takahashi-Byrne", "Fairweather", "Kowalczyk",
)
MAIL_DOMAINS = ("gmail.com", "outlook.com", "proton.me", "yahoo.co.uk", "fastmail.fm", "web.de")
KINDS = ("email", "phone", "person", "card", "iban", "ip", "api_key")


@dataclass(frozen=True)
class Canary:
    kind: str
    value: str          # the exact string planted in the text


def luhn_check_digit(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:      # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def luhn_valid(number: str) -> bool:
    digits = "".join(ch for ch in number if ch.isdigit())
    return len(digits) >= 12 and luhn_check_digit(digits[:-1]) == int(digits[-1])


def _iban_numeric(rearranged: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in rearranged))


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if len(compact) < 15 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    return _iban_numeric(compact[4:] + compact[:4]) % 97 == 1


def make_iban(country: str, bban: str) -> str:
    check = 98 - _iban_numeric(bban + country + "00") % 97
    return f"{country}{check:02d}{bban}"


def card_number(rng: random.Random) -> str:
    brand = rng.randrange(3)
    if brand == 0:
        body = "4" + "".join(rng.choice(string.digits) for _ in range(14))
    elif brand == 1:
        body = str(rng.randrange(51, 56)) + "".join(rng.choice(string.digits) for _ in range(13))
    else:
        body = rng.choice(("34", "37")) + "".join(rng.choice(string.digits) for _ in range(12))
    number = body + str(luhn_check_digit(body))
    if rng.random() < 0.5:
        if len(number) == 15:
            return f"{number[:4]} {number[4:10]} {number[10:]}"
        return " ".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def iban(rng: random.Random) -> str:
    digits = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    letters = lambda n: "".join(rng.choice(string.ascii_uppercase) for _ in range(n))  # noqa: E731
    country = rng.choice(("DE", "GB", "NL", "ES", "FR"))
    bban = {"DE": lambda: digits(18), "GB": lambda: letters(4) + digits(14),
            "NL": lambda: letters(4) + digits(10), "ES": lambda: digits(20),
            "FR": lambda: digits(10) + digits(11) + digits(2)}[country]()
    value = make_iban(country, bban)
    if rng.random() < 0.5:
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return value


def person(rng: random.Random) -> str:
    return f"{rng.choice(PERSON_FIRST)} {rng.choice(PERSON_LAST)}"


def email(rng: random.Random, name: str | None = None) -> str:
    first, last = (name or person(rng)).lower().split(" ", 1)
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randrange(10, 99)}"))
    return f"{local.replace('-', '')}@{rng.choice(MAIL_DOMAINS)}"


def phone(rng: random.Random) -> str:
    d = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    return rng.choice((
        f"+1 ({rng.randrange(201, 990)}) {rng.randrange(200, 999)}-{d(4)}",
        f"+44 7{d(3)} {d(6)}",
        f"+49 30 {d(8)}",
        f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
        f"({rng.randrange(201, 990)}) {rng.randrange(200, 999)}-{d(4)}",
    ))


def public_ip(rng: random.Random) -> str:
    return f"{rng.choice((81, 85, 91, 95, 145, 185, 213))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def api_key(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    kind = rng.randrange(3)
    if kind == 0:
        return "sk-" + "".join(rng.choice(alnum) for _ in range(48))
    if kind == 1:
        return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))
    return "ghp_" + "".join(rng.choice(alnum) for _ in range(36))


# Neutral carriers: where PII shows up in real agent prompts without changing the request.
_CARRIERS = {
    "email": ("(reply to {v})", "requested by {v}", "cc {v} on this"),
    "phone": ("(call me back on {v})", "my number is {v}", "contact: {v}"),
    "person": ("on behalf of {v}", "approved by {v}", "requester: {v}"),
    "card": ("(card on file {v})", "billing card {v}", "company card: {v}"),
    "iban": ("(refunds go to {v})", "account IBAN {v}", "IBAN for the record: {v}"),
    "ip": ("(from workstation {v})", "my IP is {v}", "source address {v}"),
    "api_key": ("(using key {v})", "token {v}", "auth with {v} if needed"),
}
_MAKERS = {"email": email, "phone": phone, "person": person, "card": card_number, "iban": iban,
           "ip": public_ip, "api_key": api_key}


def make(rng: random.Random, kind: str) -> Canary:
    return Canary(kind, _MAKERS[kind](rng))


def plant(rng: random.Random, prompt: str, kinds: tuple[str, ...] = KINDS,
          max_items: int = 2) -> tuple[str, list[Canary]]:
    """Add 1..max_items PII values to ``prompt`` in neutral phrases before or after it."""
    canaries = [make(rng, rng.choice(kinds)) for _ in range(rng.randint(1, max_items))]
    for c in canaries:
        carrier = rng.choice(_CARRIERS[c.kind]).replace("{v}", c.value)
        if rng.random() < 0.3:
            prompt = f"{carrier}: {prompt}"
        else:
            prompt = f"{prompt}{rng.choice(('. ', ' - ', ' ', '; '))}{carrier}"
    return prompt, canaries
