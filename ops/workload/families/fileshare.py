"""File-share management (share with read/write, revoke, set expiry) -> JSON.

``principal_type`` is "group" when the prompt names a team/group, else "user"; share_folder
carries ``expires`` (ISO date) only when the prompt states one.
"""
from __future__ import annotations

import random

from .. import vocab
from ..template import phrase
from .base import Task, canonical_json

NAME = "file_share"

READ = ("read", "read-only", "view", "read only", "viewer")
WRITE = ("write", "read/write", "edit", "read-write", "editor", "full edit")

SHARE = (
    "share {path} with {who} [with|as|] {perm} [access|permissions|rights|]{expiry}",
    "[give|grant] {who} {perm} access to {path}{expiry}",
    "{who} [needs|should get|should have] {perm} access [to|on] {path}{expiry}",
    "[open up|share] [the folder|the share|folder|] {path} to {who} ({perm}){expiry}",
    "[set|make] {path} [shared|available] to {who} [with|as] {perm}{expiry}",
    "{perm} access [on|to] {path} for {who}{expiry}",
    "[let|allow] {who} [to|] [access|use] {path} with {perm} [rights|permissions]{expiry}",
    "[add|grant] {who} [to|on] {path} as {perm}{expiry}",
)
REVOKE = (
    "[revoke|remove|take away] {who}'s access to {path}",
    "{who} [should no longer|must not|shouldn't] [see|access|have access to] {path}",
    "[unshare|stop sharing] {path} [with|from] {who}",
    "[remove|drop] {who} from the share {path}",
    "[revoke|cancel] access [to|on] {path} for {who}",
)
EXPIRE = (
    "[set|put] an expiry [of|on] {date} on {who}'s access to {path}",
    "{who}'s access to {path} [should|must] [expire|end|stop] on {date}",
    "[make|let] {who}'s [access|share] on {path} expire [on|at] {date}",
    "[expire|end] {who} [on|from] {path} [on|by] {date}",
    "access to {path} for {who} [ends|expires] {date}, [set that|configure it]",
)
EXPIRY_FORMS = (" until {d}", ", expiring {d}", " (expires {d})", " until {d} only", ", valid until {d}")


def _principal(rng: random.Random) -> tuple[str, str, str]:
    """(surface form, principal id, principal type)."""
    if rng.random() < 0.55:
        user = vocab.username(rng)
        return rng.choice((user, f"user {user}", f"@{user}")), user, "user"
    grp = vocab.group(rng)
    return rng.choice((f"the {grp} team", f"group {grp}", f"the {grp} group", f"{grp} team")), grp, "group"


def sample(rng: random.Random, typo_rate: float = 0.02) -> Task:
    action = rng.choices(("share_folder", "revoke_access", "set_expiry"), weights=(60, 25, 15))[0]
    path = vocab.folder_path(rng)
    who, principal, ptype = _principal(rng)
    iso, human = vocab.date(rng)
    answer: dict = {"action": action, "path": path, "principal": principal, "principal_type": ptype}
    slots = {"path": path, "who": who, "date": human, "expiry": "", "perm": ""}
    if action == "share_folder":
        write = rng.random() < 0.4
        slots["perm"] = rng.choice(WRITE if write else READ)
        answer["permission"] = "write" if write else "read"
        if rng.random() < 0.3:
            slots["expiry"] = rng.choice(EXPIRY_FORMS).replace("{d}", human)
            answer["expires"] = iso
        templates = SHARE
    elif action == "revoke_access":
        templates = REVOKE
    else:
        answer["expires"] = iso
        templates = EXPIRE
    prompt = phrase(rng, templates, slots, typo_rate)
    return Task(NAME, prompt, answer, canonical_json(answer), f"files.{action}")
