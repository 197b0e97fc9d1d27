"""Support-ticket triage -> {"category", "priority", "product"}.

The category follows from the complaint's wording, the priority only from explicit urgency
cues (none means "medium"), and ``product`` is the product name exactly as written.
Cue phrases of one priority never appear in another's, and complaint texts hold no cues.
"""
from __future__ import annotations

import random

from ..template import phrase, render
from .base import Task, canonical_json

NAME = "ticket_triage"

SOFTWARE = (
    "Outlook", "Salesforce", "Jira", "Slack", "Zoom", "GitLab", "Confluence", "Workday", "SAP",
    "the HR portal", "the expense app", "the billing portal", "the mobile app", "Tableau",
    "the data warehouse", "ServiceNow", "Okta", "Teams", "Figma", "Notion", "the intranet",
    "the CRM", "Datadog", "the payroll system", "DocuSign", "Zendesk", "HubSpot", "Snowflake",
)
HARDWARE = (
    "laptop", "monitor", "docking station", "printer", "headset", "keyboard", "badge reader",
    "desk phone", "webcam", "MacBook", "ThinkPad", "office printer", "conference room screen",
)
NETWORK = ("VPN", "wifi", "guest wifi", "office network", "VPN client", "ethernet port", "proxy")

COMPLAINTS = {
    "access": (SOFTWARE, (
        "I can't log in to {product}", "my {product} account is locked", "I need access to {product}",
        "{product} says my permissions are insufficient", "{product} keeps rejecting my password",
        "I was removed from {product} by mistake", "can't see the shared workspace in {product}",
    )),
    "billing": (SOFTWARE, (
        "we were charged twice for {product}", "the invoice for {product} looks wrong",
        "please refund the duplicate {product} subscription", "our {product} renewal price doubled",
        "{product} billed us for seats we cancelled", "need a copy of the {product} invoice for March",
    )),
    "bug": (SOFTWARE, (
        "{product} crashes when I open a report", "{product} shows error 500 on save",
        "export in {product} produces an empty file", "{product} freezes after the latest update",
        "search in {product} returns wrong results", "{product} drops my changes randomly",
        "the dashboard in {product} shows yesterday's numbers",
    )),
    "hardware": (HARDWARE, (
        "my {product} won't turn on", "the {product} screen flickers", "{product} battery drains in an hour",
        "the {product} is making a grinding noise", "need a replacement {product}", "my {product} is cracked",
    )),
    "network": (NETWORK, (
        "the {product} keeps disconnecting", "{product} is very slow on the 3rd floor",
        "can't connect to the {product}", "{product} drops every few minutes",
        "{product} connects but nothing loads",
    )),
    "feature_request": (SOFTWARE, (
        "it would be great if {product} could export to CSV", "can {product} get a dark mode",
        "please add SSO to {product}", "could {product} support bulk edits",
        "suggestion: let {product} schedule reports", "we'd love an API for {product}",
    )),
    "security": (SOFTWARE, (
        "I got a phishing email pretending to be {product}", "suspicious login alert on my {product} account",
        "someone shared a {product} link publicly that has customer data", "I clicked a fake {product} link",
        "unknown device added to my {product} account",
    )),
}
CUES = {
    "urgent": ("production is down", "all customers are affected right now", "URGENT", "this is a P1 outage",
               "the whole company is stopped", "revenue impacting, right now"),
    "high": ("this is blocking my work today", "need this fixed today", "our deadline is tomorrow",
             "my whole team is stuck", "important, please prioritise"),
    "medium": ("", "", "", ""),
    "low": ("no rush", "whenever you have time", "low priority", "not urgent at all", "at your convenience"),
}
TEMPLATES = (
    "triage [this|the following] ticket: {text}",
    "[classify|categorise|categorize] this support ticket: {text}",
    "ticket [from a user|from staff|#{num}]: {text}",
    "[new|incoming] ticket - {text}",
    "{text}",
    "[user|employee|customer] [writes|reports|says]: {text}",
    "[please|] [triage|route] [this|]: {text}",
    "[assign a category and priority|set category and priority] [for|to] this: {text}",
    "helpdesk ticket #{num}: {text}",
    "[what category and priority is|how should we triage] this ticket? {text}",
)


def sample(rng: random.Random, typo_rate: float = 0.02) -> Task:
    category = rng.choice(tuple(COMPLAINTS))
    products, texts = COMPLAINTS[category]
    product = rng.choice(products)
    # Nobody files an urgent feature request; everything else can be any priority.
    weights = (0, 5, 55, 40) if category == "feature_request" else (10, 25, 45, 20)
    priority = rng.choices(("urgent", "high", "medium", "low"), weights=weights)[0]
    # Users' own slips land in the complaint's words; the product name stays exact.
    complaint = render(rng, rng.choice(texts), {"product": product}, typo_rate)
    cue = rng.choice(CUES[priority])
    if cue:
        text = f"{cue}: {complaint}" if rng.random() < 0.4 else f"{complaint}, {cue}"
    else:
        text = complaint
    slots = {"text": text, "num": rng.randrange(1000, 99999)}
    prompt = phrase(rng, TEMPLATES, slots, typo_rate, prefixes=("",), suffixes=("", "", "."))
    answer = {"category": category, "priority": priority,
              "product": product.removeprefix("the ").removeprefix("The ")}
    return Task(NAME, prompt, answer, canonical_json(answer), "support.triage")
