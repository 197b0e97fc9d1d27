"""Open-ended questions (explain, advise, compare, design) with long free-text answers.

These are the calls that should stay on the frontier model: wide topics, no fixed answer
shape. The reference answer is composed from sentence banks around the prompt's topics, so
it is long (~150-450 words), varied and deterministic.
"""
from __future__ import annotations

import random

from ..template import phrase
from .base import Task

NAME = "open_question"

TOPICS = (
    "Kubernetes autoscaling", "zero-trust networking", "event sourcing", "OAuth 2.0 with PKCE",
    "database sharding", "feature flags", "blue-green deployments", "vector databases",
    "GDPR data retention", "SOC 2 audits", "chaos engineering", "service meshes", "CQRS",
    "rate limiting", "idempotent APIs", "consistent hashing", "write-ahead logging",
    "columnar storage", "stream processing", "exactly-once delivery", "RAG pipelines",
    "prompt injection", "LoRA fine-tuning", "model quantisation", "on-call rotations",
    "postmortem culture", "technical debt", "monorepos", "semantic versioning",
    "infrastructure as code", "secrets management", "SSO with SAML", "TLS certificate rotation",
    "cost allocation in the cloud", "FinOps", "data contracts", "schema evolution", "CAP theorem",
    "Raft consensus", "backpressure", "circuit breakers", "canary releases", "load shedding",
    "observability", "distributed tracing", "SLOs and error budgets", "hiring senior engineers",
    "running effective 1:1s", "remote onboarding", "quarterly planning", "vendor risk reviews",
    "incident communication", "capacity planning", "multi-region failover", "edge caching",
    "GraphQL federation", "WebAssembly on the server", "Rust adoption", "Python packaging",
)
CONTEXTS = (
    "a 20-person startup", "a regulated bank", "a team of five backend engineers", "an e-commerce site at peak season",
    "a healthcare provider", "a B2B SaaS product", "our internal platform team", "a mobile game backend",
    "a data team moving off spreadsheets", "a company with offices in three countries",
)
AUDIENCES = ("a new engineer", "our CFO", "a product manager", "a junior developer", "the board",
             "a non-technical stakeholder", "a security auditor")
TEMPLATES = (
    "explain {a} to {audience}",
    "[can you|] explain [how|why] {a} [works|matters] [in simple terms|in detail|]",
    "what are the trade-offs between {a} and {b} for {context}?",
    "compare {a} [and|with|versus] {b} [for|in the context of] {context}",
    "{a} vs {b}: which [should we pick|would you choose] for {context}, and why?",
    "how would you introduce {a} at {context}?",
    "give me [advice|practical advice|your best advice] on {a} for {context}",
    "what [are|would be] the [main|biggest] risks of {a}, and how do we mitigate them?",
    "write a short memo for {audience} about {a}",
    "what mistakes do teams usually make with {a}?",
    "[outline|sketch] a [rollout|migration|adoption] plan for {a} at {context}",
    "[summarise|summarize] the [state of the art|best practices] in {a}",
    "is {a} worth it for {context}? [be honest|give me the pros and cons|]",
    "what questions should {audience} ask about {a}?",
    "help me [think through|reason about] {a} [versus|or] {b}",
    "[draft|write] a [one-page|short] [proposal|rationale] for adopting {a}",
    "why does {a} [fail|go wrong] in practice, and what [helps|works]?",
)
OPENERS = (
    "Good question. {A} is easiest to understand through the problem it solves.",
    "Short answer: it depends on your constraints, but there is a clear way to decide.",
    "Here is how I would think about {a}.",
    "Let me break this down into the parts that matter most.",
    "{A} comes up often, and most of the confusion is about scope rather than mechanics.",
    "There are three things to weigh here: risk, cost and the skills your team already has.",
    "I'll answer in two parts: the concept, then what I would do in your position.",
    "Before the details, a framing: {a} solves a coordination problem as much as a technical one.",
    "This is a judgement call, so here is the reasoning rather than a single verdict.",
)
BODY = (
    "The core idea behind {a} is to make failure cheap and visible instead of rare and catastrophic.",
    "In practice, the hardest part of {a} is rarely the technology; it is agreeing on ownership and on what 'done' means.",
    "For {context}, start with the smallest version that gives you a measurable signal, then iterate.",
    "Compared with {b}, {a} trades some operational simplicity for flexibility later on.",
    "Teams that succeed with {a} write down their assumptions and revisit them every quarter.",
    "A common mistake is to adopt {a} everywhere at once; pick one workflow and prove the value first.",
    "Measure before and after: latency, error rate, cost per request and the time engineers spend on toil.",
    "If {audience} is your audience, lead with the business outcome and keep the mechanics in an appendix.",
    "Security and compliance reviews should happen early, because retrofitting controls onto {a} is expensive.",
    "{B} is the better fit when your load is predictable and your team is small.",
    "Document the failure modes explicitly: what happens when a dependency is slow, when it is down, and when it lies.",
    "Budget for the migration period, when you will run both the old and the new approach side by side.",
    "Automate the boring checks so that reviews can focus on design rather than formatting.",
    "The cost model matters: fixed costs dominate at small scale, marginal costs dominate later.",
    "Be explicit about the rollback plan; a change you cannot undo deserves more scrutiny.",
    "Training and runbooks are part of the deliverable, not an afterthought.",
    "Expect the first iteration to surface data-quality problems you did not know you had.",
    "Keep an eye on the tail: p99 behaviour is where users notice problems with {a}.",
    "Write the decision down as a short record with the options you rejected and why.",
    "Finally, revisit the decision when the team or the traffic doubles; the right answer changes with scale.",
    "A useful first step with {a} is an inventory: what do you run today, who owns it and what does it cost?",
    "People often conflate {a} with {b}; they overlap, but they answer different questions.",
    "For {context}, I would timebox a two-week spike on {a} with a written success criterion.",
    "The vendor landscape around {a} changes quickly, so prefer open interfaces over a single product.",
    "Ask who gets paged when {a} misbehaves at 3 a.m.; if nobody can answer, you are not ready.",
    "Most of the value of {a} comes from the discipline it forces, not from the tooling itself.",
    "Pair the rollout with a dashboard that {audience} can read without a glossary.",
    "Keep the blast radius small: one region, one service, one customer segment at a time.",
    "Where {a} meets legacy systems, expect adapters and translation layers to dominate the effort.",
    "A good heuristic: if a change to {a} needs a meeting, it needs a runbook entry too.",
    "Test the unhappy paths deliberately; {a} tends to fail in ways staging never shows.",
    "Costs scale with data volume more than with request count, so watch storage growth early.",
    "Resist the urge to build a platform around {a} before three teams actually need it.",
    "If {b} is already working for you, the bar for switching should be a measured, not a felt, improvement.",
    "Make ownership explicit in the service catalogue; orphaned {a} setups rot fastest.",
    "Regulators and auditors care less about the tool than about evidence that the control ran.",
    "Latency budgets should be set end to end; {a} only gets a slice of the total.",
    "Start with defaults, change one knob at a time, and record why each change was made.",
    "Consider the people side: who needs training, whose job changes, and who loses a veto.",
    "Plan for deprecation from day one, including how you will migrate off {a} if it disappoints.",
    "Benchmark with your own traffic; published numbers rarely match a real workload.",
    "Security defaults matter more than options: make the safe path the easy path.",
    "In my experience, small teams do best with the boring, well-documented variant of {a}.",
    "Compliance requirements such as audit trails and retention periods shape the design more than throughput.",
    "Write a glossary; half of the arguments about {a} are about words, not architecture.",
    "Track adoption as a metric: a tool nobody uses costs money and gives false confidence.",
    "Where possible, make the migration reversible with a feature flag or a dual-write period.",
    "Capacity headroom of about thirty percent is a sane starting point for {context}.",
    "Do not underestimate data migration; it is usually the longest pole in the tent.",
    "Celebrate the first small win publicly; it buys patience for the harder parts.",
)
CLOSERS = (
    "In summary: start small, measure, and expand {a} only where it pays for itself.",
    "If you share more about your constraints, I can make this more concrete.",
    "Happy to turn this into a checklist or a one-page plan if that helps.",
    "The short version: {a} is a tool, not a goal; tie it to an outcome you can measure.",
    "Bottom line: for {context}, favour the option your team can operate confidently today.",
    "Next step: write a one-page decision record and circulate it to {audience} for comments.",
    "If it helps, I can compare concrete products or sketch the first sprint.",
)


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def sample(rng: random.Random, typo_rate: float = 0.02) -> Task:
    a, b = rng.sample(TOPICS, 2)
    slots = {"a": a, "b": b, "context": rng.choice(CONTEXTS), "audience": rng.choice(AUDIENCES)}
    prompt = phrase(rng, TEMPLATES, slots, typo_rate)
    fill = dict(slots, A=_cap(a), B=_cap(b))
    paragraphs = [rng.choice(OPENERS)]
    body = rng.sample(BODY, rng.randrange(7, 17))
    while body:
        k = rng.randrange(2, 5)
        paragraphs.append(" ".join(body[:k]))
        body = body[k:]
    paragraphs.append(rng.choice(CLOSERS))
    text = "\n\n".join(paragraphs)
    for key, value in fill.items():
        text = text.replace("{" + key + "}", value)
    return Task(NAME, prompt, None, text, None)
