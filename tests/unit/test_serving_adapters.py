"""Adapter registry: verified hot-load, LRU cap, unload, refusal of tampered adapters."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from schemas import manifest as manifests  # noqa: E402
from serving.adapters import AdapterRefused, AdapterRegistry, AdapterUnavailable, model_name  # noqa: E402
from serving.devtools import build_signed_adapter, default_base_dir, tamper  # noqa: E402

KEY = b"unit-test-signing-key-0123456789"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    base = default_base_dir(root / "base")
    signer = manifests.hmac_signer(KEY)
    uris = {f"ad-{i}": str(build_signed_adapter(base, root / f"ad-{i}", f"ad-{i}", signer, seed=i, weight_std=0.5))
            for i in range(4)}
    return base, uris, root


@pytest.fixture()
def registry(world):
    base, _, root = world
    reg = AdapterRegistry(base, manifests.VerifyKeys(hmac_key=KEY), max_loaded=2, cache_dir=root / "cache")
    reg.start_sync()
    yield reg
    reg.stop()


def test_load_generate_and_lru_eviction(registry, world):
    _, uris, _ = world
    r0 = registry.load_sync("ad-0", uris["ad-0"])
    assert not r0.already_loaded and r0.evicted == ()
    registry.load_sync("ad-1", uris["ad-1"])
    a0 = registry.generate_sync("ad-0", "turn on the lights in the kitchen", 8)
    a1 = registry.generate_sync("ad-1", "turn on the lights in the kitchen", 8)
    assert a0.model == model_name("ad-0") and a0.gpu_seconds is not None and a0.gpu_seconds > 0
    assert a0.completion_tokens >= 1 and a0.prompt_tokens > 0
    assert a0.content != a1.content          # two different adapters really answer differently
    # ad-1 was used last, so loading a third evicts ad-0
    r2 = registry.load_sync("ad-2", uris["ad-2"])
    assert r2.evicted == ("ad-0",)
    assert registry.loaded == ["ad-1", "ad-2"]
    with pytest.raises(AdapterUnavailable):
        registry.generate_sync("ad-0", "hi", 4)
    assert registry.load_sync("ad-2", uris["ad-2"]).already_loaded
    # reloading gives the same answers as before eviction (greedy decoding, same weights)
    registry.load_sync("ad-0", uris["ad-0"])
    assert registry.generate_sync("ad-0", "turn on the lights in the kitchen", 8).content == a0.content


def test_tampered_adapter_is_refused(registry, world, tmp_path):
    base, _, _ = world
    signer = manifests.hmac_signer(KEY)
    uri = build_signed_adapter(base, tmp_path / "bad", "bad", signer, seed=9)
    tamper(tmp_path / "bad")
    with pytest.raises(AdapterRefused) as exc:
        registry.load_sync("bad", str(uri))
    assert exc.value.kind == "integrity" and "adapter_model.safetensors" in exc.value.reason
    assert "bad" in registry.refused and not registry.is_loaded("bad")


def test_wrong_key_and_wrong_id_are_refused(registry, world, tmp_path):
    base, uris, _ = world
    other = build_signed_adapter(base, tmp_path / "other", "other", manifests.hmac_signer(b"another-key-another-key-123"), seed=3)
    with pytest.raises(AdapterRefused) as exc:
        registry.load_sync("other", str(other))
    assert exc.value.kind == "signature"
    with pytest.raises(AdapterRefused) as exc:
        registry.load_sync("not-ad-0", uris["ad-0"])
    assert exc.value.kind == "mismatch"
    with pytest.raises(AdapterRefused) as exc:
        registry.load_sync("ghost", str(tmp_path / "nowhere" / "manifest.json"))
    assert "cannot read manifest" in exc.value.reason


def test_unload_last_adapter_then_load_another(registry, world):
    _, uris, _ = world
    registry.load_sync("ad-0", uris["ad-0"])
    assert registry.worker.call(lambda: registry._unload_sync("ad-0"))
    with pytest.raises(AdapterUnavailable):
        registry.generate_sync("ad-0", "hi", 4)
    registry.load_sync("ad-3", uris["ad-3"])
    assert registry.loaded == ["ad-3"]           # the unloaded one is gone for good now
    registry.generate_sync("ad-3", "hi", 4)
    # and an unloaded-but-resident adapter can be revived
    registry.worker.call(lambda: registry._unload_sync("ad-3"))
    assert registry.load_sync("ad-3", uris["ad-3"]).already_loaded
    registry.generate_sync("ad-3", "hi", 4)


def test_base_mismatch_is_refused(world, tmp_path):
    from serving.devtools import build_random_base

    _, uris, root = world
    other_base = build_random_base(tmp_path / "other-base", seed=5)
    reg = AdapterRegistry(other_base, manifests.VerifyKeys(hmac_key=KEY), max_loaded=2, cache_dir=root / "cache")
    reg.start_sync()
    try:
        with pytest.raises(AdapterRefused) as exc:
            reg.load_sync("ad-0", uris["ad-0"])
        assert exc.value.kind == "base_mismatch"
    finally:
        reg.stop()


def test_remote_uri_is_fetched_into_cache(registry, world):
    _, uris, _ = world
    # any fsspec URI: the memory filesystem stands in for object storage
    import fsspec

    fs = fsspec.filesystem("memory")
    src = Path(uris["ad-1"]).parent
    for p in src.iterdir():
        fs.pipe(f"/store/ad-1/{p.name}", p.read_bytes())
    res = registry.load_sync("ad-1", "memory:///store/ad-1/manifest.json")
    assert not res.already_loaded
    registry.generate_sync("ad-1", "hi", 4)


def test_an_adapter_with_decoding_json_decodes_copy_constrained(world, tmp_path):
    import json

    base, _, root = world
    signer = manifests.hmac_signer(KEY)
    # B = 0: the adapter answers as the base does, {"device":"lights","room":"kitchen","state":"on"};
    # its decoding.json says a room is one of a closed set, and a device is copied from the request
    decoding = {"mode": "copy", "fields": {
        "$.room": {"copied": False, "values": ["garage", "attic"]},
        "$.device": {"copied": True, "values": ["lights"], "constants": []}}}
    plain = build_signed_adapter(base, tmp_path / "plain", "plain", signer, random_weights=False)
    copy = build_signed_adapter(base, tmp_path / "copy", "copy", signer, random_weights=False,
                                extra_files={"decoding.json": json.dumps(decoding)})
    reg = AdapterRegistry(base, manifests.VerifyKeys(hmac_key=KEY), cache_dir=root / "cache2")
    reg.start_sync()
    try:
        reg.load_sync("plain", str(plain))
        reg.load_sync("copy", str(copy))
        free = json.loads(reg.generate_sync("plain", "turn on the lights in the kitchen", 48).content)
        constrained = json.loads(reg.generate_sync("copy", "turn on the lights in the kitchen", 48).content)
        assert free["room"] == "kitchen"
        assert constrained["room"] in ("garage", "attic") and constrained["device"] == "lights"
        # decoding.json is part of what is signed: editing it is tampering
        (tmp_path / "copy" / "decoding.json").write_text(json.dumps({"mode": "free"}))
        with pytest.raises(AdapterRefused):
            reg.verify("copy", str(copy))
    finally:
        reg.stop()
