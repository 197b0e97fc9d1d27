"""A tiny phrasing language for prompts, so one template stands for many surface forms.

``[a|b|]`` picks one alternative (an empty one makes the part optional) and ``{slot}`` is
filled with a slot value. Noise (typos) touches only the literal words of a template, never
slot values: the ground-truth answer stays a deterministic function of the prompt.
"""
from __future__ import annotations

import random
import re
from typing import Mapping, Sequence

_CHOICE = re.compile(r"\[([^\[\]]*)\]")
_SLOT = re.compile(r"(\{[a-z_0-9]+\})")
_WORD = re.compile(r"[A-Za-z]{4,}")
_SPACES = re.compile(r"[ ]{2,}")


def expand_choices(rng: random.Random, template: str) -> str:
    """Replace every ``[a|b|c]`` with one alternative chosen by ``rng``."""
    return _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def typo(rng: random.Random, word: str) -> str:
    """One keyboard slip: swap two neighbours, drop a letter or double one."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def add_typos(rng: random.Random, text: str, rate: float) -> str:
    """Apply `typo` to each literal word of 4+ letters with probability ``rate``."""
    if rate <= 0:
        return text
    return _WORD.sub(lambda m: typo(rng, m.group(0)) if rng.random() < rate else m.group(0), text)


def render(rng: random.Random, template: str, slots: Mapping[str, object], typo_rate: float = 0.0,
           capitalise: bool = False) -> str:
    """Expand choices, add typos to literal text only, then fill slots and tidy spaces.

    ``capitalise`` upper-cases the first letter only when it belongs to literal text, so a
    slot value (a host name, a user name) is never altered."""
    expanded = expand_choices(rng, template).lstrip()
    parts = _SLOT.split(expanded)
    out = []
    for i, part in enumerate(parts):
        if _SLOT.fullmatch(part):
            out.append(str(slots[part[1:-1]]))
        else:
            part = add_typos(rng, part, typo_rate)
            if capitalise and i == 0 and part:
                part = part[0].upper() + part[1:]
            out.append(part)
    text = _SPACES.sub(" ", "".join(out)).strip()
    return text.replace(" ,", ",").replace(" .", ".").replace(" ?", "?").replace(" :", ":")


# Politeness wrappers: they change the surface, never the meaning. Requests like "could
# you" only fit in front of an imperative, so they are kept apart from neutral greetings.
NEUTRAL_PREFIXES: Sequence[str] = ("", "", "", "", "", "", "hey, ", "hi, ", "quick one: ", "hello! ", "hi team, ")
REQUEST_PREFIXES: Sequence[str] = (
    "please ", "please, ", "could you ", "can you ", "pls ", "i need you to ", "kindly ",
    "would you ", "go ahead and ", "can you please ", "could you please ",
)
SUFFIXES: Sequence[str] = (
    "", "", "", "", " please", " thanks", " thank you", ", thx", ".", " - thanks!", " cheers",
    " ty", "!", ", much appreciated",
)
IMPERATIVES = frozenset("""add create make set register publish point map change update modify repoint move
delete remove drop get decommission clean list show give print disable deactivate suspend lock offboard
off-board block turn shut kill revoke cut re-enable reactivate unlock unsuspend restore put grant enroll
take kick strip reset clear wipe re-enroll force trigger send share open let allow unshare stop expire end
triage classify categorise categorize assign route explain compare write outline sketch summarise
summarize help draft schedule book find arrange organise organize onboard provision configure cancel
tear reserve""".split())


def is_imperative(template: str) -> bool:
    first = template.lstrip().split(" ", 1)[0].lower()
    return first in IMPERATIVES


def phrase(rng: random.Random, templates: Sequence[str], slots: Mapping[str, object],
           typo_rate: float, prefixes: Sequence[str] | None = None,
           suffixes: Sequence[str] = SUFFIXES) -> str:
    """The usual pipeline: pick a template, wrap it in a greeting that fits (a request
    prefix only before an imperative), render it with noise, maybe capitalise it."""
    template = expand_choices(rng, rng.choice(templates))
    if prefixes is None:
        prefixes = NEUTRAL_PREFIXES
        if is_imperative(template) and rng.random() < 0.5:
            prefixes = REQUEST_PREFIXES
    template = rng.choice(prefixes) + template + rng.choice(suffixes)
    return render(rng, template, slots, typo_rate, capitalise=rng.random() < 0.5)
