"""The serving tier (S6): `distillery serve`, see docs/serving.md.

app (HTTP + ServingService) · routing (contract with router.py) · adapters (verified peft
hot-load, LRU) · assignments (promote-command fold) · shadow · promotion (pure policy) ·
quality (answer checks, demo fault injection) · clusters (snapshot assignment) · bus (Kafka /
in-process) · upstream (OpenAI-compatible client) · replay_upstream · metrics · devtools.
"""
