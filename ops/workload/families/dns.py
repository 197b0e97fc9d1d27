"""DNS management in natural language -> a JSON command.

Rules the answer follows (so it is a deterministic function of the prompt):
- ``name`` is relative to ``zone``; the apex is ``@``.
- create_record without a stated TTL gets ttl 3600; update_record carries ttl only if stated.
- MX records carry ``priority`` (10 when not stated).
- TTLs may be stated in seconds or as minutes/hours ("5 minutes" -> 300).
"""
from __future__ import annotations

import random

from .. import vocab
from ..template import phrase
from .base import Task, canonical_json

NAME = "dns"
DEFAULT_TTL = 3600
TTLS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 86400)

CREATE = (
    "[add|create|make|set up] [an|a new|] {type} record for {fqdn} [pointing to|->|to|with value|that points at|resolving to] {value}{ttl}",
    "{fqdn} [should|needs to] [point to|resolve to] {value} ({type} record){ttl}",
    "new {type} record: {fqdn} -> {value}{ttl}",
    "[add|create] {type} {fqdn} {value}{ttl}",
    "in [the|] {zone} zone [add|create] [a|an] {type} record [named|called|for] {name} with value {value}{ttl}",
    "[register|publish] {fqdn} as [a|an] {type} record [for|pointing at] {value}{ttl}",
    "I need {fqdn} to resolve to {value}, [please add|add|create] the {type} record{ttl}",
    "[add|create] [a|an] {type} entry [in|under] {zone}: {name} -> {value}{ttl}",
    "[set up|configure] DNS so that {fqdn} [points to|goes to] {value} [via|using] [a|an] {type} record{ttl}",
    "{type} record [please|]: name {name}, zone {zone}, value {value}{ttl}",
    "[can we get|we need] [a|an] {type} record for {fqdn} [at|->] {value}{ttl}",
    "[point|map] {fqdn} [to|at] {value} with [a|an] {type} record{ttl}",
)
UPDATE = (
    "[change|update|modify] the {type} record [for|of] {fqdn} to {value}{ttl}",
    "{fqdn} {type} [should now point|now needs to point|must point] to {value}{ttl}",
    "[repoint|move] {fqdn} ({type}) to {value}{ttl}",
    "update {type} {fqdn} -> {value}{ttl}",
    "in {zone}, [change|update] the {type} record {name} to {value}{ttl}",
    "[the|our] {type} record for {fqdn} is [stale|wrong|outdated], set it to {value}{ttl}",
)
DELETE = (
    "[delete|remove|drop] the {type} record [for|of] {fqdn}",
    "[get rid of|remove] {fqdn} ({type} record)",
    "{fqdn} {type} record [is no longer needed|can go|should be deleted], [remove|delete] it",
    "[delete|remove] {type} {fqdn}",
    "in [the|] {zone} zone [delete|remove] the {type} record [named|called] {name}",
    "[please tear down|decommission|clean up] the {type} record {fqdn}",
)
LIST = (
    "[list|show|show me] [all|the|] {type} records [in|for|under] {zone}",
    "which {type} records [does|do we have in] {zone} [have|]?",
    "[give me|print] [the|a] list of {type} records for [the|] {zone} zone",
    "[what|which] {type} records exist [in|under] {zone}",
)
TTL_FORMS = (" with ttl {s}", " ttl {s}", ", ttl={s}", " (ttl {s}s)", " and a TTL of {s} seconds",
             " with a {s} second ttl", ", TTL {s}")


def _ttl_phrase(rng: random.Random, ttl: int) -> str:
    if ttl % 3600 == 0 and rng.random() < 0.4:
        hours = ttl // 3600
        return rng.choice((f" with a ttl of {hours} hour{'s' if hours > 1 else ''}",
                           f", ttl {hours}h", f" ttl {hours} hour{'s' if hours > 1 else ''}"))
    if ttl % 60 == 0 and ttl < 3600 and rng.random() < 0.4:
        minutes = ttl // 60
        return rng.choice((f" with a ttl of {minutes} minute{'s' if minutes > 1 else ''}",
                           f", ttl {minutes}m", f" ttl {minutes} min"))
    return rng.choice(TTL_FORMS).replace("{s}", str(ttl))


def _record(rng: random.Random) -> tuple[str, str, dict]:
    """(type, value, extra answer fields) for a random record."""
    rtype = rng.choices(("A", "AAAA", "CNAME", "MX", "TXT"), weights=(50, 10, 20, 10, 10))[0]
    if rtype == "A":
        return rtype, vocab.private_ipv4(rng), {}
    if rtype == "AAAA":
        return rtype, vocab.ipv6(rng), {}
    if rtype == "CNAME":
        return rtype, f"{vocab.host_label(rng)}.{vocab.zone(rng)}", {}
    if rtype == "MX":
        return rtype, f"mx{rng.randrange(1, 4)}.{vocab.zone(rng)}", {"priority": 10}
    txt = rng.choice(("v=spf1 include:_spf.{z} ~all", "google-site-verification={h}",
                      "v=DMARC1; p=quarantine", "ms={h}", "verify={h}"))
    # Letters at every other position: a token no PII detector can mistake for a card number.
    token = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") + rng.choice("0123456789abcdef") for _ in range(10))
    return rtype, txt.replace("{z}", vocab.zone(rng)).replace("{h}", token), {}


def sample(rng: random.Random, typo_rate: float = 0.02) -> Task:
    action = rng.choices(("create_record", "update_record", "delete_record", "list_records"),
                         weights=(50, 20, 20, 10))[0]
    zone = vocab.zone(rng)
    apex = rng.random() < 0.06
    name = "@" if apex else vocab.host_label(rng)
    fqdn = zone if apex else f"{name}.{zone}"
    rtype, value, extra = _record(rng)
    if apex and rtype == "CNAME":
        rtype, value, extra = "A", vocab.private_ipv4(rng), {}
    slots = {"zone": zone, "name": name, "fqdn": fqdn, "type": rtype, "value": value, "ttl": ""}
    answer: dict = {"action": action, "zone": zone}
    if action == "list_records":
        templates = LIST
        answer["type"] = rtype
    elif action == "delete_record":
        templates = DELETE
        answer.update(name=name, type=rtype)
    else:
        templates = CREATE if action == "create_record" else UPDATE
        answer.update(name=name, type=rtype, value=value, **extra)
        stated = rng.random() < (0.6 if action == "create_record" else 0.3)
        if stated:
            ttl = rng.choice(TTLS)
            slots["ttl"] = _ttl_phrase(rng, ttl)
            answer["ttl"] = ttl
        elif action == "create_record":
            answer["ttl"] = DEFAULT_TTL
        if rtype == "MX" and rng.random() < 0.5:
            prio = rng.choice((5, 10, 20, 30, 50))
            slots["ttl"] += f" priority {prio}" if rng.random() < 0.5 else f", preference {prio}"
            answer["priority"] = prio
    if apex:
        templates = [t for t in templates if "{name}" not in t]
    prompt = phrase(rng, templates, slots, typo_rate)
    return Task(NAME, prompt, answer, canonical_json(answer), f"dns.{action}")
