import json

from trainers.augment import AugmentPolicy, augment, swappable_fields
from trainers.dataset import Example


def _examples(n=20):
    out = []
    for i in range(n):
        user = f"user{i:02d}x"
        group = ("sre", "ops")[i % 2]
        out.append(Example(f"please add {user} to {group}", json.dumps({"action": "add_to_group", "username": user, "group": group}), "train", {}))
    return out


def test_swaps_copied_identifiers_in_prompt_and_answer_together():
    train = _examples()
    grown = augment(train, seed=3, policy=AugmentPolicy(target_examples=100, min_field_count=5))
    assert grown[:len(train)] == train and 40 <= len(grown) <= 100   # repeats of known pairs are dropped
    for ex in grown[len(train):]:
        answer = json.loads(ex.response)
        assert f"add {answer['username']} to {answer['group']}" in ex.prompt   # still consistent
        assert ex.meta["augmented"]


def test_enum_fields_and_prose_are_left_alone():
    train = _examples()
    fields = swappable_fields([(e.prompt, json.loads(e.response)) for e in train], AugmentPolicy(min_field_count=5))
    assert "$.username" in fields and "$.group" not in fields and "$.action" not in fields
    prose = [Example(f"how do I do thing {i}?", f"You do it like {i}.", "train", {}) for i in range(10)]
    assert augment(prose) == prose


def test_is_deterministic_per_seed():
    train = _examples()
    assert augment(train, seed=1) == augment(train, seed=1)
    assert augment(train, seed=1) != augment(train, seed=2)
