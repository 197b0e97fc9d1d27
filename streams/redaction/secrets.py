"""Credentials: provider tokens with a known prefix, JWTs, PEM private keys, passwords inside
URLs and connection strings, and values that follow a key/secret/token/password word.

A provider prefix alone is strong evidence. A value after a context word is a secret when the
word says password (any value that is not a placeholder), or when the word says key/token and
the value looks random; "max_tokens": 512 or "key": "user_profile" stay as they are.
"""
from __future__ import annotations

import re

from .checksums import looks_random
from .lexicon import load
from .patterns import merge_windows, substring_windows
from .wordtrie import occurrences, occurrences_pattern
from .spans import SECRET, Span

_TOKEN_PATTERNS = [
    r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}(?![A-Za-z0-9])",   # AWS key id (real ids are base32; accept any A-Z0-9 so look-alikes are not let through)
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d{2}-)?[A-Za-z0-9_-]{20,}",   # OpenAI, Anthropic
    r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}",                                # GitHub
    r"github_pat_[A-Za-z0-9_]{22,255}",
    r"glpat-[A-Za-z0-9_-]{20,}",                                                   # GitLab
    r"xox[abposr]-[A-Za-z0-9-]{10,}",                                              # Slack
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",                                   # Stripe
    r"whsec_[A-Za-z0-9]{24,}",
    r"AIza[0-9A-Za-z_-]{35}",                                                      # Google API key
    r"GOCSPX-[A-Za-z0-9_-]{20,}",                                                  # Google OAuth
    r"ya29\.[0-9A-Za-z_-]{20,}",
    r"hf_[A-Za-z0-9]{30,}",                                                        # Hugging Face
    r"npm_[A-Za-z0-9]{36}",
    r"pypi-AgE[A-Za-z0-9_-]{50,}",
    r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,64}",                             # SendGrid
    r"SK[0-9a-f]{32}",                                                             # Twilio
    r"dop_v1_[a-f0-9]{64}",                                                        # DigitalOcean
    r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",                                         # Shopify
    r"\d{8,10}:AA[A-Za-z0-9_-]{33}",                                               # Telegram bot
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",              # JWT
    r"T[A-Z0-9]{8,}/B[A-Z0-9]{8,}/[A-Za-z0-9]{20,}",                               # Slack webhook path
]
_TOKENS = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(_TOKEN_PATTERNS) + r")(?![A-Za-z0-9_])")
# Literal pieces one of which any provider token must contain: a fast skip for plain text.
_TOKEN_HINTS = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "AIPA", "ABIA", "ACCA", "ANVA",
                "APKA", "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox",
                "_live_", "_test_", "whsec_", "AIza", "GOCSPX-", "ya29.", "hf_", "npm_", "pypi-", "SG.",
                "SK", "dop_v1_", "shp", ":AA", "/B")
_HINT_SCAN = occurrences_pattern(_TOKEN_HINTS)        # every occurrence of every hint, one scan

_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                  r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")

# scheme://user:PASSWORD@host
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"'<>]+:([^\s@/\"'<>]+)@")
# Password=...; in ADO.NET / JDBC / Azure connection strings.
_CONN_PASSWORD = re.compile(
    r"(?i)(?<![\w])(?:password|pwd|passwd|accountkey|sharedaccesskey|sharedaccesssignature)"
    r"\s*=\s*([^;\s\"'&]+)")

_SECRET_WORDS = r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth|credentials?|key|bearer|session|cookie|signature|sig)"
# key: value, key=value, "key": "value", \"key\": \"value\", --key value, KEY=value,
# "the password is hunter2". Found by locating the secret word first (cheap), then reading
# the identifier around it and the value after it.
_WORD_HIT = re.compile(r"(?i)pass|pwd|secret|token|key|auth|credential|bearer|session|cookie|sig")
# The same words in the lower-cased text: without (?i) the engine skips to their first letters
# fast. Case-insensitive matching also equates ı and İ with i and ſ with s, which lower() does
# not: a text holding one of those takes the (?i) pattern.
_WORD_HIT_LOW = re.compile(r"pass|pwd|secret|token|key|auth|credential|bearer|session|cookie|sig")
_KEY_END = re.compile(r"(?i)" + _SECRET_WORDS + r"$")
_IDENT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_AFTER_KEY = re.compile(
    r"(?:\\?[\"'])?"
    r"(?:(?P<assign>[ \t]*[:=][ \t]*)|(?P<prose>[ \t]+(?:is|was)[ \t]*:?[ \t]+)|(?P<space>[ \t]+))"
    r"(?:\\?[\"'])?(?P<value>[^\s\"',;}{\\<>)\]]{3,300})", re.I)


def _key_values(text: str, low: str | None = None):
    """(key, value start, value, separator kind, has --flag) for each key=value-like pair.
    `low`: text.lower(), when the caller has it."""
    pos = 0
    n = len(text)
    low = text.lower() if low is None else low
    if len(low) == len(text) and "\u0130" not in text and "\u0131" not in text and "\u017f" not in text:
        hits, scanned = _WORD_HIT_LOW, low
    else:
        hits, scanned = _WORD_HIT, text
    while True:
        m = hits.search(scanned, pos)
        if m is None:
            return
        a, b = m.start(), m.end()
        while a > 0 and text[a - 1] in _IDENT:
            a -= 1
        while b < n and text[b] in _IDENT:
            b += 1
        pos = b
        key = text[a:b].strip(".-")
        if not key or not _KEY_END.search(key):
            continue
        after = _AFTER_KEY.match(text, b)
        if after is None:
            continue
        kind = "assign" if after.group("assign") is not None else (
            "prose" if after.group("prose") is not None else "space")
        flag = text[max(0, a - 2):a].endswith("-")
        yield key, after.start("value"), after.group("value"), kind, flag
_AUTH_HEADER = re.compile(r"(?i)\b(?:authorization|proxy-authorization)\s*[:=]\s*[\"']?(?:bearer|basic|token|digest)\s+([A-Za-z0-9._~+/=-]{8,})")
_BEARER = re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{16,})")

_PASSWORD_PARTS = {"password", "passwd", "pass", "passphrase", "pwd", "secret"}
_TOKEN_PARTS = {"token", "key", "apikey", "secret", "auth", "credential", "credentials",
                "bearer", "session", "cookie", "signature", "sig"}
_PLACEHOLDERS = {"null", "none", "true", "false", "undefined", "redacted", "required", "optional",
                 "string", "example", "changeme?", "xxx", "xxxx", "****", "********", "env", "str",
                 "[redacted]", "<redacted>", "hidden", "masked", "secret", "password", "token"}
_SPLIT_KEY = re.compile(r"[_.\-]+|(?<=[a-z])(?=[A-Z])")


def _last_part(key: str) -> tuple[str, str]:
    parts = [p.lower() for p in _SPLIT_KEY.split(key) if p]
    if not parts:
        return "", ""
    last = parts[-1]
    # "api_key", "access-key", "private_key" end in "key"; "apikey" is one part.
    return last, (parts[-2] if len(parts) > 1 else "")


def _is_placeholder(value: str) -> bool:
    low = value.lower().strip("\"'")
    return (low in _PLACEHOLDERS or low.startswith(("${", "{{", "<", "%(", "$(", "process.env", "os.environ"))
            or set(low) <= {"*", "x", "•", "."} or low.startswith("env:"))


_ALPHA_RUN = re.compile(r"[a-z]{4,}")


def _wordy(value: str) -> bool:
    """Mostly English words ("user_profile:42", "reset"): a name, not a credential."""
    common = load().common
    low = value.lower()
    covered = sum(len(w) for w in _ALPHA_RUN.findall(low) if w in common or w.rstrip("s") in common)
    return covered >= 0.4 * len(value)


def secret_value_ok(key: str, value: str) -> bool:
    """Whether `value`, written after the key word `key`, should be treated as a secret."""
    last, _ = _last_part(key)
    if _is_placeholder(value):
        return False
    if last in _PASSWORD_PARTS:
        return len(value) >= 4 and not value.isdigit() or len(value) >= 6
    if last in _TOKEN_PARTS or last.endswith(("token", "apikey", "secret")):
        return (looks_random(value) or (len(value) >= 32 and value.isalnum())) and not _wordy(value)
    return False


def find_secrets(text: str, low: str | None = None) -> list[Span]:
    """`low`: text.lower(), when the caller has it."""
    out: list[Span] = []
    # Each pattern runs only near a literal it cannot match without (the provider hints found
    # by one scan, the others by str.find).
    # Tokens start at (or, for Telegram and Slack webhook paths, shortly before) their hint;
    # JWTs can be long.
    n = len(text)
    windows = [(max(0, a - 24), min(n, b + 300)) for a, b in occurrences(_HINT_SCAN, text)] \
        + substring_windows(text, ("eyJ",), 2, 8000)
    for lo, hi in merge_windows(windows):
        out += [Span(m.start(), m.end(), SECRET) for m in _TOKENS.finditer(text, lo, hi)]
    if "PRIVATE KEY" in text:
        out += [Span(m.start(), m.end(), SECRET) for m in _PEM.finditer(text)]
    for lo, hi in substring_windows(text, ("://",), 24, 300):
        out += [Span(m.start(1), m.end(1), SECRET) for m in _URL_PASSWORD.finditer(text, lo, hi)
                if not _is_placeholder(m.group(1))]
    low = text.lower() if low is None else low
    if "=" in text:
        for lo, hi in substring_windows(low, ("password", "pwd", "passwd", "accountkey", "sharedaccess"), 2, 300):
            out += [Span(m.start(1), m.end(1), SECRET) for m in _CONN_PASSWORD.finditer(text, lo, hi)
                    if not _is_placeholder(m.group(1))]
    if any(w in low for w in ("pass", "pwd", "secret", "token", "key", "auth", "credential",
                              "bearer", "session", "cookie", "sig")):
        for lo, hi in substring_windows(low, ("authorization",), 2, 600):
            out += [Span(m.start(1), m.end(1), SECRET) for m in _AUTH_HEADER.finditer(text, lo, hi)]
        for lo, hi in substring_windows(low, ("bearer",), 2, 600):
            out += [Span(m.start(1), m.end(1), SECRET) for m in _BEARER.finditer(text, lo, hi)]
        for key, start, value, kind, flag in _key_values(text, low):
            value = value.rstrip(".")
            if "=" in value.rstrip("="):
                continue                                   # "Cookie: session=...": the inner pair counts
            if kind == "space" and not flag and (value.isalpha() or len(value) < 6):
                continue                                   # "password reset": prose, not a value
            if kind == "prose" and value.isalpha() and _wordy(value):
                continue                                   # "the password was reset"
            if secret_value_ok(key, value):
                out.append(Span(start, start + len(value), SECRET))
    return out


def secret_for_key(key: str, value: str) -> bool:
    """Metadata: a value stored under a key such as "api_key" or "db_password"."""
    return bool(value) and " " not in value.strip() and secret_value_ok(key, value.strip())
