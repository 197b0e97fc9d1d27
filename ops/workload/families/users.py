"""User management (create, disable, enable, group membership, MFA/password reset) -> JSON."""
from __future__ import annotations

import random

from .. import vocab
from ..template import phrase
from .base import Task, canonical_json

NAME = "user_admin"

TEMPLATES = {
    "create_user": (
        "[create|add|set up|provision] [a new|an|a|] [user|account] [for|called|named] {user} in {dept}",
        "[onboard|provision] {user} [into|to|in] [the|] {dept} [department|team|]",
        "new [hire|joiner|starter]: {user}, [department|dept|team] {dept}, [create the account|set them up]",
        "{user} [joins|is joining|starts in] {dept} [on monday|next week|today], [create|set up] their account",
        "[make|open] an account for {user} ([dept|department]: {dept})",
        "[add|create] user {user} [dept|department|team]={dept}",
        "[we have|there is] a new {dept} [starter|hire] called {user}, [provision|create] [an account|access]",
    ),
    "disable_user": (
        "[disable|deactivate|suspend|lock] [the|] [account|user] {user}",
        "{user} [has left|left the company|is leaving today], [disable|deactivate] their account",
        "[offboard|off-board] {user}",
        "[please|] [block|suspend] [all|] logins for {user}",
        "[turn off|shut off|kill] {user}'s account",
        "[revoke|cut off] access for departing employee {user}",
    ),
    "enable_user": (
        "[re-enable|reactivate|unlock|unsuspend] [the|] [account|user] {user}",
        "{user} is back [from leave|from sabbatical|], [re-enable|reactivate] their account",
        "[restore|turn back on] {user}'s account",
    ),
    "add_to_group": (
        "[add|put] {user} [to|in|into] [the|] {group} group",
        "[make|give] {user} [a member of|membership in] {group}",
        "{user} needs to be in {group}",
        "[grant|give] {group} [group|] membership to {user}",
        "[add|enroll] user {user} [to|in] group {group}",
        "{group}: [please|] add {user}",
    ),
    "remove_from_group": (
        "[remove|take|drop] {user} [from|out of] [the|] {group} group",
        "{user} [should no longer be|shouldn't be|must not be] in {group}",
        "[revoke|strip] {group} [group|] membership [for|from] {user}",
        "[kick|remove] user {user} [from|out of] group {group}",
    ),
    "reset_mfa": (
        "reset [the|] mfa for {user}",
        "{user} [lost|broke|replaced] their [phone|authenticator|yubikey|security key], reset [their|the] [2fa|mfa]",
        "[clear|wipe|reset] [the|] [2fa|two-factor|mfa] [device|enrollment|] [of|for] {user}",
        "[please|] re-enroll {user} in mfa",
        "{user} can't [pass|get past] the mfa prompt, [reset|clear] it",
    ),
    "reset_password": (
        "reset [the|] password [for|of] {user}",
        "{user} [forgot|is locked out of] their password, [send|issue] a reset",
        "[force|trigger] a password reset for {user}",
        "[new|temporary] password for {user} [please|]",
    ),
}
WEIGHTS = {"create_user": 20, "disable_user": 15, "enable_user": 5, "add_to_group": 25,
           "remove_from_group": 10, "reset_mfa": 15, "reset_password": 10}


def sample(rng: random.Random, typo_rate: float = 0.02) -> Task:
    action = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    slots = {"user": vocab.username(rng), "dept": rng.choice(vocab.DEPARTMENTS), "group": vocab.group(rng)}
    answer: dict = {"action": action, "username": slots["user"]}
    if action == "create_user":
        answer["department"] = slots["dept"]
    elif action in ("add_to_group", "remove_from_group"):
        answer["group"] = slots["group"]
    prompt = phrase(rng, TEMPLATES[action], slots, typo_rate)
    return Task(NAME, prompt, answer, canonical_json(answer), f"iam.{action}")
