"""Meeting scheduling -> JSON. Off by default: drift scenarios introduce it as a new task.

Times may be written "14:30", "2:30pm" or "2pm"; the answer always holds 24-hour "HH:MM".
Durations default to 30 minutes when not stated.
"""
from __future__ import annotations

import random

from .. import vocab
from ..template import phrase
from .base import Task, canonical_json

NAME = "calendar"
TITLES = ("design review", "quarterly planning", "1:1", "budget sync", "incident review", "standup",
          "hiring debrief", "roadmap review", "customer call prep", "launch go/no-go", "retro",
          "vendor demo", "security review", "offsite planning", "architecture review")
TEMPLATES = (
    "[schedule|book|set up] a {title} with {who} on {date} at {time}{dur}",
    "[put|add] a {title} [on the calendar|in the calendar] for {date} {time} with {who}{dur}",
    "{who} and I need a {title} on {date} at {time}{dur}",
    "[can you|] [find|book] [a slot|time] on {date} at {time} for a {title} with {who}{dur}",
    "[meeting|invite]: {title}, {who}, {date} {time}{dur}",
    "[arrange|organise|organize] a {title} [with|for] {who}, {date} at {time}{dur}",
    "[send|create] an invite to {who} for a {title} on {date} at {time}{dur}",
    "{title} with {who}: {date}, {time}{dur}",
    "[block|reserve] {date} at {time} for a {title} with {who}{dur}",
    "I'd like to meet {who} on {date} at {time} [for a|about the] {title}{dur}",
    "[get|put] {who} [in|into] a {title} on {date} [at|from] {time}{dur}",
    "[schedule|book] {who} for a {title}, {date}, starting {time}{dur}",
    "[need|want] a {title} on {date} at {time} with {who}{dur}",
    "[calendar|cal]: {title} / {who} / {date} / {time}{dur}",
    "[set up|book] time with {who} on {date} at {time} to do the {title}{dur}",
)


def _time(rng: random.Random) -> tuple[str, str]:
    hour, minute = rng.randrange(8, 19), rng.choice((0, 0, 15, 30, 45))
    canonical = f"{hour:02d}:{minute:02d}"
    h12 = hour % 12 or 12
    suffix = "am" if hour < 12 else "pm"
    forms = [canonical, f"{h12}:{minute:02d}{suffix}", f"{h12}:{minute:02d} {suffix}"]
    if minute == 0:
        forms += [f"{h12}{suffix}", f"{h12} {suffix}"]
    return canonical, rng.choice(forms)


def sample(rng: random.Random, typo_rate: float = 0.02) -> Task:
    who = vocab.username(rng) if rng.random() < 0.6 else f"the {vocab.group(rng)} team"
    iso, human = vocab.date(rng)
    canonical, spoken = _time(rng)
    duration = 30
    dur = ""
    if rng.random() < 0.6:
        duration = rng.choice((15, 30, 45, 60, 90, 120))
        dur = rng.choice((f" for {duration} minutes", f", {duration} min", f" ({duration}m)"))
        if duration % 60 == 0 and rng.random() < 0.5:
            hours = duration // 60
            dur = f" for {hours} hour{'s' if hours > 1 else ''}"
    title = rng.choice(TITLES)
    attendee = who.removeprefix("the ").removesuffix(" team")
    slots = {"title": title, "who": who, "date": human, "time": spoken, "dur": dur}
    answer = {"action": "schedule_meeting", "attendee": attendee, "date": iso, "start": canonical,
              "duration_min": duration, "title": title}
    prompt = phrase(rng, TEMPLATES, slots, typo_rate)
    return Task(NAME, prompt, answer, canonical_json(answer), "calendar.schedule")
