"""Slot vocabularies: wide enough that a held-out split holds values a model never saw.

Values are composed from word lists (company x suffix x TLD, label x env x number, ...), so
each slot has thousands of values. Person names used by the PII injector live in pii.py and
are disjoint from the user names here, so canary scans never hit ordinary slot values.
"""
from __future__ import annotations

import random

COMPANY_WORDS = (
    "acme", "globex", "initech", "umbrella", "northwind", "contoso", "fabrikam", "tailspin",
    "wingtip", "adatum", "litware", "proseware", "lamna", "woodgrove", "alpine", "cobalt",
    "ember", "falcon", "granite", "harbor", "iris", "juniper", "kestrel", "lumen", "maple",
    "nimbus", "onyx", "pioneer", "quartz", "redwood", "summit", "tundra", "vertex", "willow",
    "xenon", "zephyr", "aurora", "beacon", "cascade", "dynamo", "evergreen", "fjord", "glacier",
    "horizon", "ironclad", "jasper", "keystone", "lighthouse", "meridian", "nova", "orchid",
    "polaris", "quasar", "raven", "sequoia", "tidal", "ultra", "vanguard", "wavelength", "yarrow",
    "zenith", "birch", "copper", "driftwood", "echo", "foxglove", "garnet", "hemlock", "indigo",
    "jetstream", "kinetic", "larch", "magnolia", "nebula", "oakridge", "pinnacle", "riverbend",
    "saffron", "terra", "upland", "velvet", "westwind", "bluefin", "crimson", "stellar",
)
COMPANY_SUFFIXES = ("", "", "", "-labs", "-corp", "-cloud", "-systems", "-health", "-bank",
                    "-shop", "-media", "-data", "-energy", "-group", "-tech", "hq")
TLDS = ("com", "com", "com", "net", "org", "io", "io", "dev", "cloud", "co.uk", "de", "fr",
        "app", "ai", "eu", "nl")

HOST_LABELS = (
    "api", "www", "mail", "vpn", "git", "ci", "grafana", "kibana", "auth", "sso", "cdn",
    "static", "assets", "blog", "docs", "status", "shop", "pay", "billing", "crm", "erp",
    "wiki", "jira", "chat", "smtp", "imap", "ns1", "ns2", "db", "cache", "queue", "search",
    "metrics", "logs", "backup", "files", "portal", "admin", "dev", "staging", "test", "app",
    "intranet", "hr", "payroll", "gateway", "edge", "proxy", "registry", "vault", "sentry",
    "jenkins", "argo", "minio", "s3", "uploads", "images", "video", "stream", "webhooks",
    "events", "notify", "sms", "push", "ldap", "radius", "ntp", "time", "print", "scan",
    "meet", "calendar", "forms", "survey", "learn", "careers", "partners", "investors",
    "support", "help", "feedback", "beta", "canary", "preview", "sandbox", "demo", "labs",
)
ENVS = ("prod", "staging", "dev", "qa", "uat", "eu", "us", "apac", "eu-west", "us-east", "internal")
WEB_WORDS = ("web", "app", "node", "srv", "host", "worker", "edge", "lb")

DEPARTMENTS = (
    "engineering", "finance", "sales", "marketing", "hr", "legal", "design", "support", "ops",
    "security", "data-science", "platform", "sre", "qa", "product", "research", "procurement",
    "facilities", "it", "compliance", "partnerships", "customer-success", "growth", "analytics",
)
GROUP_EXTRAS = (
    "admins", "vpn-users", "contractors", "interns", "on-call", "release-managers", "auditors",
    "db-readers", "db-writers", "billing-admins", "github-owners", "wiki-editors", "prod-access",
    "exec-staff", "managers", "new-hires", "remote-staff", "emea-team", "apac-team", "us-team",
    "incident-commanders", "payroll-approvers", "travel-bookers", "beta-testers",
)

FIRST_NAMES = (
    "james", "olivia", "liam", "emma", "noah", "ava", "elijah", "sophia", "lucas", "mia",
    "mateo", "amelia", "levi", "harper", "ethan", "evelyn", "aiden", "abigail", "kai", "ella",
    "omar", "fatima", "yuki", "hiro", "priya", "arjun", "chen", "wei", "ingrid", "lars",
    "sven", "astrid", "diego", "lucia", "tomas", "marta", "kofi", "ama", "nia", "tariq",
    "leila", "ravi", "anika", "pavel", "olga", "dmitri", "irina", "felix", "greta", "hugo",
    "chloe", "louis", "camille", "matteo", "giulia", "nico", "sara", "jonas", "lea", "finn",
)
LAST_NAMES = (
    "smith", "johnson", "brown", "garcia", "miller", "davis", "wilson", "anderson", "thomas",
    "moore", "martin", "jackson", "thompson", "white", "harris", "clark", "lewis", "walker",
    "hall", "young", "king", "wright", "scott", "green", "baker", "adams", "nelson", "hill",
    "campbell", "mitchell", "roberts", "carter", "phillips", "evans", "turner", "torres",
    "parker", "collins", "edwards", "stewart", "morris", "murphy", "cook", "rogers", "morgan",
    "cooper", "peterson", "bailey", "reed", "kelly", "howard", "ramos", "kim", "cox", "ward",
    "tanaka", "sato", "nakamura", "patel", "sharma", "singh", "mehta", "nguyen", "tran", "le",
    "schmidt", "fischer", "weber", "wagner", "becker", "hoffmann", "kowalski", "nowak", "wojcik",
    "rossi", "russo", "ferrari", "esposito", "bianchi", "dubois", "moreau", "laurent", "simon",
    "jensen", "nielsen", "hansen", "larsen", "berg", "lindqvist", "okafor", "mensah", "owusu",
)

FOLDER_WORDS = (
    "reports", "contracts", "invoices", "designs", "roadmap", "planning", "onboarding", "audits",
    "payroll", "brand-assets", "campaigns", "budgets", "research", "archive", "templates",
    "board-decks", "vendor-docs", "hiring", "offsites", "legal-review", "pricing", "forecasts",
    "releases", "postmortems", "runbooks", "training", "benchmarks", "customer-data", "press",
    "photos", "recordings", "specs", "proposals", "tax", "expenses", "okrs", "interviews",
)
QUARTERS = ("q1", "q2", "q3", "q4")

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def zone(rng: random.Random) -> str:
    """A registrable domain such as ``cobalt-labs.io`` or ``meridian.co.uk``."""
    return f"{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_SUFFIXES)}.{rng.choice(TLDS)}"


def host_label(rng: random.Random) -> str:
    """A relative record name: ``api``, ``api-eu``, ``web07``, ``grafana.staging``..."""
    r = rng.random()
    if r < 0.5:
        return rng.choice(HOST_LABELS)
    if r < 0.7:
        return f"{rng.choice(HOST_LABELS)}-{rng.choice(ENVS)}"
    if r < 0.85:
        return f"{rng.choice(WEB_WORDS)}{rng.randrange(1, 40):02d}"
    return f"{rng.choice(HOST_LABELS)}.{rng.choice(ENVS)}"


def private_ipv4(rng: random.Random) -> str:
    """Addresses a DNS task points at: private and documentation ranges only (the PII
    injector uses other, public ranges, so canaries never collide with record values)."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if kind == 1:
        return f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if kind == 2:
        return f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if kind == 3:
        return f"100.{rng.randrange(64, 128)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"{rng.choice(('198.51.100', '203.0.113', '192.0.2'))}.{rng.randrange(1, 255)}"


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randrange(1, 0xffff):x}" for _ in range(rng.choice((2, 3, 4)))]
    return "2001:db8:" + ":".join(groups[:-1]) + "::" + groups[-1]


def username(rng: random.Random) -> str:
    """A login such as ``jsmith``, ``olivia.kim`` or ``tanaka_h2``."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    form = rng.randrange(5)
    if form == 0:
        name = first[0] + last
    elif form == 1:
        name = f"{first}.{last}"
    elif form == 2:
        name = f"{last}_{first[0]}"
    elif form == 3:
        name = f"{first}{last[0]}"
    else:
        name = f"{first[0]}.{last}"
    if rng.random() < 0.2:
        name += str(rng.randrange(2, 30))
    return name


def group(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(DEPARTMENTS)
    if r < 0.8:
        return rng.choice(GROUP_EXTRAS)
    return f"{rng.choice(DEPARTMENTS)}-{rng.choice(('leads', 'admins', 'readers', 'emea', 'us', 'apac'))}"


def folder_path(rng: random.Random) -> str:
    """A share path such as ``/finance/invoices/2024`` or ``/design/q3-roadmap``."""
    parts = [rng.choice(DEPARTMENTS)]
    r = rng.random()
    if r < 0.4:
        parts.append(rng.choice(FOLDER_WORDS))
    elif r < 0.7:
        parts += [rng.choice(FOLDER_WORDS), str(rng.randrange(2019, 2027))]
    elif r < 0.85:
        parts.append(f"{rng.choice(QUARTERS)}-{rng.choice(FOLDER_WORDS)}")
    else:
        parts += [rng.choice(FOLDER_WORDS), rng.choice(FOLDER_WORDS)]
    return "/" + "/".join(parts)


def date(rng: random.Random) -> tuple[str, str]:
    """A date in 2025-2027 as (ISO form, a human form that names the same day)."""
    year = rng.randrange(2025, 2028)
    month = rng.randrange(1, 13)
    day = rng.randrange(1, MONTH_DAYS[month - 1] + 1)
    iso = f"{year:04d}-{month:02d}-{day:02d}"
    name = MONTHS[month - 1]
    human = rng.choice((iso, f"{name} {day}, {year}", f"{day} {name} {year}", f"{name[:3]} {day} {year}"))
    return iso, human
