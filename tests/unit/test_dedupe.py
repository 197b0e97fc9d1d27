"""Near-duplicate removal: normalisation, stable hashing, estimates against exact Jaccard, and
the index's stream guarantees (scoping, in-batch duplicates, idempotency, bounds, checkpoints)."""
from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from streams.dedupe import (UNIQUE, CheckpointError, DedupeIndex, DedupeItem, MinHasher, jaccard,
                            scope_key, shingles, tokens)
from streams.dedupe import densify as densify_module
from streams.dedupe import minhash as minhash_module
from streams.dedupe.buckets import BucketRuns
from streams.dedupe.densify import EMPTY, densify, probe_order
from streams.dedupe.hashing import shingle_hash_reference, shingle_hashes, token_hash_reference, tokenise
from streams.dedupe.lsh import candidate_probability, choose_bands
from streams.dedupe.minhash import estimate, min_agreeing
from streams.dedupe.normalise import encode_batch

WORDS = ("account invoice refund charge payment card balance transfer order shipment delivery address "
         "customer ticket error timeout server database query report summary quarter revenue budget "
         "contract policy claim patient booking hotel password login session deploy release pipeline "
         "build branch merge commit review function latency memory network firewall email phone "
         "message escalate priority urgent pending resolved team manager engineer vendor inventory "
         "price discount subscription plan trial cancel renew region currency monday friday").split()
SCOPE = scope_key("acme", "summarise")


def prompt(rng: random.Random, n_words: int = 150) -> str:
    return "Summarise this ticket for the on-call engineer: " + " ".join(rng.choice(WORDS) for _ in range(n_words)) + "."


def edit(rng: random.Random, text: str, n_edits: int) -> str:
    words = text.split()
    for _ in range(n_edits):
        i = rng.randrange(1, len(words) - 1)
        op = rng.choice(("sub", "ins", "del"))
        if op == "sub":
            words[i] = rng.choice(WORDS) + "x"
        elif op == "ins":
            words.insert(i, rng.choice(WORDS) + "y")
        else:
            del words[i]
    return " ".join(words)


def exact(a: str, b: str) -> float:
    return jaccard(shingles(a, 3), shingles(b, 3))


def item(event_id: str, text: str, ts: int = 0, scope: str = SCOPE) -> DedupeItem:
    return DedupeItem(event_id, scope, text, ts)


# ---- normalisation and hashing ---------------------------------------------------------------
ODD_TEXTS = ["Hello, World! <EMAIL_1> wrote to <PHONE_2> about <IP_ADDRESS_1>.", "", "   \n\t ",
             "Ünïcödé STRASSE straße — ＦＵＬＬ width… café", "a", "one two",
             "x" * 100 + " y " + "z" * 64 + " " + "w" * 65, "abcdefgh abcdefghi " * 3,
             "nul\x00inside", "日本語のテキスト、句読点。", "tabs\tand\nnewlines\r\nmixed"]


def test_placeholders_are_single_tokens_and_case_space_punctuation_do_not_count():
    assert tokens("Send it to <EMAIL_1>, please!") == ["send", "it", "to", "email_1", "please"]
    assert tokens("<IP_ADDRESS_2>") == ["ip_address_2"]
    sigs = MinHasher().signatures(["Hello,   WORLD!! How are you today?", "hello world how are you today",
                                   "hello world how are you tomorrow"])
    assert (sigs[0] == sigs[1]).all()
    assert not (sigs[0] == sigs[2]).all()


def test_vectorised_tokeniser_matches_the_reference():
    token_hash, doc = tokenise(encode_batch(ODD_TEXTS))
    expected, expected_doc = [], []
    for d, text in enumerate(ODD_TEXTS):
        for tok in tokens(text.replace("\x00", " ")):
            expected.append(token_hash_reference(tok))
            expected_doc.append(d)
    assert token_hash.tolist() == expected
    assert doc.tolist() == expected_doc


def test_vectorised_shingles_match_the_reference():
    texts = ODD_TEXTS + ["the quick brown fox jumps over the lazy dog"]
    token_hash, doc = tokenise(encode_batch(texts))
    sh, sh_doc = shingle_hashes(token_hash, doc, len(texts), 3)
    for d, text in enumerate(texts):
        toks = [token_hash_reference(t) for t in tokens(text.replace("\x00", " "))]
        if not toks:
            continue
        windows = [toks] if len(toks) < 3 else [toks[i:i + 3] for i in range(len(toks) - 2)]
        assert sorted(sh[sh_doc == d].tolist()) == sorted(shingle_hash_reference(w, 3) for w in windows)


def test_signatures_are_frozen():
    # The checkpoint format depends on these exact values: a change here means existing
    # checkpoints can no longer be compared with new signatures (bump SIGNATURE_SCHEME).
    sigs = MinHasher(128, 3).signatures(
        ["You are a support agent. Classify: <EMAIL_1> wants a refund for order 42.", "", "short"])
    assert sigs.dtype == np.uint8 and sigs.shape == (3, 128)
    assert hashlib.sha256(sigs.tobytes()).hexdigest() == \
        "74a03da7adaeb4c574d934b0f1e8478c7776dcba1b145b57dff89f09ff0a75bc"
    assert token_hash_reference("email_1") == 0x92ACD84613E2A06E


PIN_WORDS = ("account invoice refund charge payment card balance transfer order shipment delivery address "
             "customer ticket error timeout server database query report summary quarter revenue budget").split()
PIN_ODD = ["Ünïcödé STRASSE straße — ＦＵＬＬ width… café", "日本語のテキスト、句読点。", "x" * 70,
           "abcdefghijklmnop" * 3, "<EMAIL_1>", "", " ,. ", "a b", "tabs\tand\nnewlines", "nul\x00inside"]


def pin_corpus(n: int = 400) -> list[str]:
    """Texts of every length from empty to ~3 KB, with odd tokens: what signatures are pinned on."""
    rng = random.Random(20240601)
    out = []
    for _ in range(n):
        words = [rng.choice(PIN_WORDS) if rng.random() < 0.9 else rng.choice(PIN_ODD)
                 for _ in range(int(rng.expovariate(1 / 60)))]
        out.append(" ".join(words))
    return out


@pytest.mark.parametrize("num_perm, shingle_size, digest", [
    (16, 3, "f15e048b8f44da11c9511eb3bad0cfcea37b6a4f5cae609e8292919f966b89c6"),
    (100, 3, "1a2ab7635de8969f63b502382bf245b840f314e2555cb8a388be5c04c14c4afe"),
    (128, 3, "9d0d72a6245696a423b969e683914ae6bc647ceaad3cf999fc48f60a325fffa3"),
    (256, 3, "fbe7326926eec25e15d9ccc0a7d5353659a6af0e9532022b33457dd518331dbf"),
    (512, 3, "b49bd5e63e42880d44c094220db7b0aba496b6f2866cca8d878a57a3b76ca68e"),
    (256, 1, "3c23865627d0af8c6fe0f0e7bbdee8a2d03665b6d3d630093f934dfbe6a45404"),
    (256, 2, "1c1333f5934805dae5f3187fb7d0636146d4180204eb2f1131c99b88e769f026"),
    (256, 5, "958ebcb50c0e73926bab0e82f43607efe5b6244e1e5f059ab75287b763cb0e15"),
])
def test_signatures_are_frozen_over_a_varied_corpus(num_perm, shingle_size, digest):
    # Digests of the first (per-chunk, probe-by-probe) implementation: any rewrite for speed
    # must reproduce them, whatever the text lengths, num_perm (powers of two or not) and
    # shingle size.
    sigs = MinHasher(num_perm, shingle_size).signatures(pin_corpus())
    assert hashlib.sha256(sigs.tobytes()).hexdigest() == digest


def densify_reference(mins: np.ndarray) -> np.ndarray:
    """The definition, one bin at a time: an empty bin copies the first filled bin of its order."""
    order = probe_order(mins.shape[1])
    out = mins.copy()
    for row in range(mins.shape[0]):
        for j in np.flatnonzero(mins[row] == EMPTY):
            first = next(i for i in order[j] if mins[row, i] != EMPTY)
            out[row, j] = mins[row, first]
    return out


@pytest.mark.parametrize("num_perm", [16, 100, 128])
def test_densify_matches_the_definition_at_every_fill_level(num_perm, monkeypatch):
    # Small groups, so one call goes through several groups, each mixing documents with few
    # filled bins (rank method) and with many (probing, whole-group rounds and the tail).
    monkeypatch.setattr(densify_module, "_GROUP_BINS", 24 * num_perm)
    rng = np.random.default_rng(num_perm)
    n = 60
    mins = np.full((n, num_perm), EMPTY, dtype=np.uint32)
    for row, filled in enumerate(np.linspace(1, num_perm, n).astype(int)):
        bins = rng.choice(num_perm, filled, replace=False)
        mins[row, bins] = rng.integers(0, 2**31, filled)
    expected = densify_reference(mins)
    densify(mins)
    assert (mins == expected).all()


def test_signatures_do_not_depend_on_the_batch(monkeypatch):
    rng = random.Random(1)
    texts = [prompt(rng, rng.randint(0, 300)) for _ in range(40)] + ["", "x", "a b"] * 3
    hasher = MinHasher()
    alone = np.vstack([hasher.signatures([t]) for t in texts])
    assert (hasher.signatures(texts) == alone).all()
    # Many chunks, blocks and densify groups in one call.
    monkeypatch.setattr(minhash_module, "CHUNK_CHARS", 2000)
    monkeypatch.setattr(minhash_module, "CHUNK_DOCS", 3)
    monkeypatch.setattr(densify_module, "_GROUP_BINS", 5 * 128)
    assert (hasher.signatures(texts) == alone).all()


def test_estimates_agree_with_exact_jaccard():
    rng = random.Random(2)
    hasher = MinHasher(128, 3)
    errors = []
    for _ in range(150):
        a = prompt(rng, rng.randint(60, 250))
        b = edit(rng, a, rng.randint(0, 40))
        sa, sb = hasher.signatures([a, b])
        errors.append(estimate(int((sa == sb).sum()), 128) - exact(a, b))
    errors = np.array(errors)
    # Standard error of a 128-value estimate is at most 0.044; the mean error must be ~0.
    assert np.sqrt(np.mean(errors ** 2)) < 0.05
    assert abs(errors.mean()) < 0.015


def test_the_decision_rule_inverts_chance_agreement():
    assert estimate(128, 128) == 1.0 and estimate(0, 128) == 0.0
    for threshold in (0.5, 0.85, 0.9, 1.0):
        for num_perm in (64, 128, 256):
            need = min_agreeing(threshold, num_perm)
            assert estimate(need, num_perm) >= threshold > estimate(need - 1, num_perm)


def test_bands_make_pairs_at_the_threshold_candidates():
    for threshold in (0.7, 0.85, 0.95):
        bands, rows = choose_bands(threshold, 128)
        assert bands * rows <= 128
        assert candidate_probability(threshold, bands, rows) >= 0.98
        assert candidate_probability(0.3, bands, rows) < 0.1


# ---- the index ------------------------------------------------------------------------------
def test_identical_and_near_identical_are_caught_and_different_texts_are_not():
    rng = random.Random(3)
    a = prompt(rng, 200)
    near = edit(rng, a, 2)
    assert exact(a, near) >= 0.9
    other = prompt(rng, 200)
    index = DedupeIndex()
    v = index.check_batch([item("a", a)])
    assert v == [UNIQUE]
    same, close, different = index.check_batch([item("b", a.upper()), item("c", near, 1), item("d", other, 2)])
    assert same.duplicate_of == "a" and same.similarity == 1.0
    assert close.duplicate_of == "a" and close.similarity >= 0.85
    assert different == UNIQUE
    assert len(index) == 2


def test_pairs_well_below_the_threshold_are_not_duplicates():
    rng = random.Random(4)
    index = DedupeIndex()
    base = prompt(rng, 150)
    index.check_batch([item("base", base)])
    for k in range(20):
        far = edit(rng, base, 25)            # ~15% of words edited: Jaccard ~0.5-0.7
        assert exact(base, far) < 0.8
        assert index.check_batch([item(f"far{k}", far, k)])[0].duplicate_of != "base"


def test_duplicates_are_only_searched_within_their_scope():
    rng = random.Random(5)
    text = prompt(rng)
    index = DedupeIndex()
    verdicts = index.check_batch([item("a", text, scope=scope_key("acme", "summarise")),
                                  item("b", text, scope=scope_key("globex", "summarise")),
                                  item("c", text, scope=scope_key("acme", "translate")),
                                  item("d", text, scope=scope_key("acme", None))])
    assert verdicts == [UNIQUE] * 4
    later = index.check_batch([item("e", text, 1, scope=scope_key("globex", "summarise"))])
    assert later[0].duplicate_of == "b"


def test_in_batch_duplicates_first_occurrence_wins():
    rng = random.Random(6)
    a, b = prompt(rng), prompt(rng)
    a2, a3 = edit(rng, a, 1), edit(rng, a, 2)
    index = DedupeIndex()
    verdicts = index.check_batch([item("a", a), item("b", b), item("a2", a2), item("b2", b), item("a3", a3)])
    assert [v.duplicate_of for v in verdicts] == [None, None, "a", "b", "a"]
    assert len(index) == 2


def test_in_batch_copies_of_a_duplicate_point_to_the_remembered_event():
    rng = random.Random(7)
    a = prompt(rng)
    index = DedupeIndex()
    index.check_batch([item("a", a)])
    verdicts = index.check_batch([item("x", a, 1), item("y", a, 1), item("z", edit(rng, a, 1), 1)])
    assert [v.duplicate_of for v in verdicts] == ["a", "a", "a"]


def test_many_copies_in_one_batch():
    rng = random.Random(8)
    a = prompt(rng)
    index = DedupeIndex()
    verdicts = index.check_batch([item(f"e{i}", edit(rng, a, i % 3), i) for i in range(300)])
    assert verdicts[0] == UNIQUE
    assert all(v.is_duplicate for v in verdicts[1:])
    assert len(index) == 1


def test_replays_get_the_first_answer():
    rng = random.Random(9)
    a, b = prompt(rng), prompt(rng)
    batch = [item("a", a), item("a-copy", edit(rng, a, 1), 1), item("b", b, 2)]
    index = DedupeIndex()
    first = index.check_batch(batch)
    assert [v.duplicate_of for v in first] == [None, "a", None]
    state = index.to_bytes()
    again = index.check_batch(batch)                     # a replay after a crash
    assert again == first
    assert index.check_batch([batch[1], batch[0]]) == [first[1], first[0]]
    assert len(index) == 2
    # The replay changed nothing but the replay counters.
    restored, replayed = DedupeIndex.from_bytes(state), DedupeIndex.from_bytes(index.to_bytes())
    assert len(restored) == len(replayed) and restored._verdicts == replayed._verdicts
    # The same event twice in one batch: one answer.
    fresh = DedupeIndex()
    twice = fresh.check_batch([item("c", b), item("c", b)])
    assert twice == [UNIQUE, UNIQUE] and len(fresh) == 1


def test_a_replayed_duplicate_keeps_its_answer_after_its_match_is_evicted():
    rng = random.Random(10)
    a, c = prompt(rng), prompt(rng)
    b = edit(rng, a, 1)
    index = DedupeIndex(max_signatures=1)
    index.check_batch([item("a", a)])
    vb = index.check_batch([item("b", b, 1)])[0]
    assert vb.duplicate_of == "a"
    index.check_batch([item("c", c, 2)])                 # evicts "a"
    assert index.check_one(item("b-new-event", b, 3)) == UNIQUE
    assert index.check_one(item("b", b, 3)) == vb        # the replay: its first answer


def test_eviction_by_age():
    rng = random.Random(11)
    old, recent = prompt(rng), prompt(rng)
    day = 86_400_000
    index = DedupeIndex(max_age_s=86_400)
    index.check_batch([item("old", old, 0), item("recent", recent, day // 2)])
    assert index.check_batch([item("old-copy", old, day // 2 + 1)])[0].duplicate_of == "old"
    # A day and a bit after "old": it is forgotten, "recent" is not.
    verdicts = index.check_batch([item("old-again", old, day + 10), item("recent-copy", recent, day + 10)])
    assert verdicts[0] == UNIQUE
    assert verdicts[1].duplicate_of == "recent"
    assert index.stats()["evicted_by_age"] == 1
    assert len(index) == 2               # "recent" and "old-again"


def test_eviction_by_size_drops_the_oldest_by_event_time():
    rng = random.Random(12)
    texts = [prompt(rng) for _ in range(5)]
    index = DedupeIndex(max_signatures=3)
    # Arrival order differs from event-time order: t3 and t4 are the oldest events.
    index.check_batch([item(f"t{i}", t, ts) for i, (t, ts) in enumerate(zip(texts, [50, 40, 30, 10, 20]))])
    assert len(index) == 3
    assert index.stats()["evicted_by_size"] == 2
    verdicts = index.check_batch([item(f"c{i}", t, 60) for i, t in enumerate(texts)])
    assert [v.duplicate_of for v in verdicts] == ["t0", "t1", "t2", None, None]
    assert len(index) == 3


def test_memory_is_bounded_under_a_long_stream():
    rng = random.Random(13)
    index = DedupeIndex(max_signatures=200, max_age_s=1000)
    for b in range(15):
        batch = [item(f"{b}-{i}", prompt(rng, 30), b * 100 + i) for i in range(100)]
        batch += [item(f"{b}-{i}-dup", batch[i].text, b * 100 + i) for i in range(20)]
        index.check_batch(batch)
        assert len(index) <= 200
        assert len(index._verdicts) <= 200
        assert len(index._buckets) == len(index) * index.bands


def test_checkpoint_round_trip_gives_identical_verdicts():
    rng = random.Random(14)
    bases = [prompt(rng, rng.randint(20, 200)) for _ in range(60)]
    scopes = [scope_key(t, h) for t in ("acme", "globex") for h in ("a", None)]

    def batch(start: int, n: int) -> list[DedupeItem]:
        out = []
        for i in range(start, start + n):
            text = bases[rng.randrange(len(bases))]
            out.append(DedupeItem(f"e{i}", scopes[i % len(scopes)], edit(rng, text, rng.randint(0, 6)), i * 1000))
        return out

    index = DedupeIndex(max_signatures=80, max_age_s=150)
    for start in range(0, 300, 50):
        index.check_batch(batch(start, 50))
    blob = index.to_bytes()
    restored = DedupeIndex.from_bytes(blob)
    assert restored.to_bytes() == blob
    layout = ("array_bytes", "bucket_runs")          # how arrays are allocated, not what they hold
    assert {k: v for k, v in restored.stats().items() if k not in layout} == \
        {k: v for k, v in index.stats().items() if k not in layout}
    for start in range(300, 500, 50):
        b = batch(start, 50)
        assert restored.check_batch(b) == index.check_batch(b)
    assert restored.to_bytes() == index.to_bytes()


def test_checkpoint_is_validated_and_settings_can_change_on_restore():
    index = DedupeIndex(threshold=0.9, max_signatures=10)
    index.check_batch([item("a", "some prompt text here for the checkpoint")])
    blob = index.to_bytes()
    with pytest.raises(CheckpointError):
        DedupeIndex.from_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        DedupeIndex.from_bytes(blob[:-5] + bytes([blob[-5] ^ 1]) + blob[-4:])
    with pytest.raises(ValueError):
        DedupeIndex.from_bytes(blob, num_perm=64)
    restored = DedupeIndex.from_bytes(blob, threshold=0.8, max_signatures=5, max_age_s=60)
    assert (restored.threshold, restored.max_signatures, restored.max_age_s) == (0.8, 5, 60)
    assert restored.check_one(item("b", "some prompt text here for the checkpoint", 1)).duplicate_of == "a"


def test_short_and_empty_texts():
    index = DedupeIndex()
    verdicts = index.check_batch([item("e1", ""), item("e2", "  ?! "), item("w1", "hi"), item("w2", "HI!"),
                                  item("w3", "hello")])
    assert [v.duplicate_of for v in verdicts] == [None, "e1", None, "w1", None]


def test_bucket_runs_lookup_and_remove():
    runs = BucketRuns()
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 50, 2000).astype(np.uint32)
    slots = np.arange(2000, dtype=np.uint32)
    for i in range(0, 2000, 100):
        runs.add(keys[i:i + 100], slots[i:i + 100])
    assert runs.runs < 10 and len(runs) == 2000
    owner, found = runs.lookup(np.array([7, 1000], dtype=np.uint32), max_per_key=10_000)
    assert sorted(found[owner == 0].tolist()) == np.flatnonzero(keys == 7).tolist()
    assert not (owner == 1).any()
    gone = np.flatnonzero(keys == 7)[:5]
    runs.remove(keys[gone], slots[gone])
    owner, found = runs.lookup(np.array([7], dtype=np.uint32), max_per_key=10_000)
    assert sorted(found.tolist()) == np.flatnonzero(keys == 7)[5:].tolist()
    assert len(runs) == 1995
    # Sorted query keys (what the index passes), presorted runs, and runs left empty by
    # removals: the same answers.
    queries = np.sort(rng.integers(0, 60, 300).astype(np.uint32))
    owner, found = runs.lookup(queries, max_per_key=10_000)
    live = np.ones(2000, dtype=bool)
    live[gone] = False
    expected = sorted((q, s) for q, key in enumerate(queries.tolist())
                      for s in np.flatnonzero((keys == key) & live).tolist())
    assert sorted(zip(owner.tolist(), found.tolist())) == expected
    fresh = BucketRuns()
    fresh.add(np.array([3, 3, 9], dtype=np.uint32), np.array([5, 1, 2], dtype=np.uint32), presorted=True)
    fresh.remove(np.array([3, 3, 9], dtype=np.uint32), np.array([5, 1, 2], dtype=np.uint32))
    fresh.add(np.array([9], dtype=np.uint32), np.array([7], dtype=np.uint32))
    owner, found = fresh.lookup(np.array([3, 9], dtype=np.uint32), max_per_key=10)
    assert owner.tolist() == [1] and found.tolist() == [7] and len(fresh) == 1
