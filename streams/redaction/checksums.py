"""Check digits and shape tests that turn a regex candidate into a confident hit.

Each function takes the matched text and answers one question; none raises on odd input.
"""
from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter


_NOT_ASCII_DIGIT = re.compile(r"[^0-9]")


def digits_of(text: str) -> str:
    return _NOT_ASCII_DIGIT.sub("", text)


def luhn_ok(number: str) -> bool:
    """Luhn (mod 10) check over a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Issuer prefixes (IIN ranges) and lengths of the card networks we recognise. A Luhn-valid
# number outside these is far more likely an order id than a card.
def card_network(number: str) -> str | None:
    n = len(number)
    p2, p4 = int(number[:2]), int(number[:4])
    if number[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p4 == 6011 or p2 == 65 or 644 <= int(number[:3]) <= 649) and n in (16, 19):
        return "discover"
    if p2 == 35 and 16 <= n <= 19:          # JCB (3528-3589; test generators use all of 35xx)
        return "jcb"
    if (300 <= int(number[:3]) <= 305 or p2 in (36, 38, 39)) and 14 <= n <= 19:
        return "diners"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (p2 == 50 or 56 <= p2 <= 69 or number.startswith("0604")) and 12 <= n <= 19:   # 0604: Maestro UK
        return "maestro"
    return None


def card_ok(number: str) -> bool:
    return 13 <= len(number) <= 19 and card_network(number) is not None and luhn_ok(number)


# Lengths of IBANs by country (ISO 13616 registry); the check digits are mod-97.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def iban_ok(text: str) -> bool:
    iban = "".join(text.split()).replace("-", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def ssn_ok(text: str) -> bool:
    """US SSN rules: area not 000, 666 or 900-999; group not 00; serial not 0000; and not
    one of the famous published numbers."""
    d = digits_of(text)
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return d not in ("078051120", "219099999", "123456789")


def ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def shannon_bits(text: str) -> float:
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def looks_random(token: str, min_len: int = 16) -> bool:
    """A credential-looking string: long, several character classes, high per-char entropy.
    Words joined by underscores ("user_profile_cache") fail on the class test."""
    if len(token) < min_len:
        return False
    classes = (any(c.islower() for c in token) + any(c.isupper() for c in token)
               + any(c.isdigit() for c in token))
    if classes < 2:
        return False
    return shannon_bits(token) >= 3.0
