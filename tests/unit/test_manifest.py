import json
import os
import stat
from types import SimpleNamespace

import pytest

from schemas.manifest import (IntegrityError, ManifestError, SignatureError, build_manifest, ed25519_signer,
                              generate_ed25519_keypair, hmac_signer, local_hmac_key, load_ed25519_public,
                              sign_manifest, signer_from_settings, verify, verify_keys_from_settings, write_manifest)

KEY = b"0123456789abcdef0123456789abcdef"


def make_adapter(tmp_path, signer):
    d = tmp_path / "adapter"
    d.mkdir()
    (d / "adapter_model.safetensors").write_bytes(os.urandom(256))
    (d / "adapter_config.json").write_text('{"r": 8}')
    m = build_manifest(adapter_id="c1-abc", adapter_dir=d, base_model_id="tiny", base_weights_sha256="b" * 64,
                       dataset_uri="/data.jsonl", dataset_sha256="d" * 64, config={"r": 8}, metrics={"em": 0.9},
                       code_version="test", created_at_ms=1)
    path = write_manifest(sign_manifest(m, signer), d)
    return d, path


def test_hmac_roundtrip_and_contents(tmp_path):
    d, path = make_adapter(tmp_path, hmac_signer(KEY))
    m = verify(path, d, hmac_key=KEY)
    assert m["signature"]["alg"] == "hmac-sha256"
    assert set(m["files"]) == {"adapter_model.safetensors", "adapter_config.json"}
    assert m["dataset"]["sha256"] == "d" * 64 and m["base_model"]["weights_sha256"] == "b" * 64
    assert len(m["adapter_weights_sha256"]) == 64


def test_tampered_weights_are_refused(tmp_path):
    d, path = make_adapter(tmp_path, hmac_signer(KEY))
    w = d / "adapter_model.safetensors"
    w.write_bytes(w.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match="changed: adapter_model.safetensors"):
        verify(path, d, hmac_key=KEY)


def test_extra_and_missing_files_are_refused(tmp_path):
    d, path = make_adapter(tmp_path, hmac_signer(KEY))
    (d / "evil.safetensors").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="not in the manifest: evil.safetensors"):
        verify(path, d, hmac_key=KEY)
    (d / "evil.safetensors").unlink()
    (d / "adapter_config.json").unlink()
    with pytest.raises(IntegrityError, match="missing: adapter_config.json"):
        verify(path, d, hmac_key=KEY)


def test_edited_manifest_and_wrong_key_are_refused(tmp_path):
    d, path = make_adapter(tmp_path, hmac_signer(KEY))
    with pytest.raises(SignatureError, match="different key"):
        verify(path, d, hmac_key=b"another-key-another-key-another!!")
    doc = json.loads(path.read_text())
    doc["metrics"]["em"] = 1.0
    path.write_text(json.dumps(doc))
    with pytest.raises(SignatureError, match="edited after signing"):
        verify(path, d, hmac_key=KEY)
    doc.pop("signature")
    path.write_text(json.dumps(doc))
    with pytest.raises(SignatureError, match="not signed"):
        verify(path, d, hmac_key=KEY)
    path.write_text("{nope")
    with pytest.raises(ManifestError, match="not JSON"):
        verify(path, d, hmac_key=KEY)


def test_ed25519_roundtrip_and_wrong_public_key(tmp_path):
    priv, pub = generate_ed25519_keypair(tmp_path / "keys" / "signing.pem")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    d, path = make_adapter(tmp_path, ed25519_signer(priv))
    assert verify(path, d, ed25519_public_key=pub)["signature"]["alg"] == "ed25519"
    _, other = generate_ed25519_keypair(tmp_path / "other.pem")
    with pytest.raises(SignatureError, match="different key"):
        verify(path, d, ed25519_public_key=load_ed25519_public(other))
    with pytest.raises(SignatureError, match="no Ed25519 public key"):
        verify(path, d, hmac_key=KEY)


def test_keys_from_settings(tmp_path):
    s = SimpleNamespace(home=tmp_path, signing_key=None, ed25519_private_key=None)
    key = local_hmac_key(tmp_path)
    assert key == local_hmac_key(tmp_path) and len(key) >= 32  # generated once, then reused
    assert stat.S_IMODE((tmp_path / "keys" / "manifest-hmac.key").stat().st_mode) == 0o600
    d, path = make_adapter(tmp_path, signer_from_settings(s))
    verify(path, d, verify_keys_from_settings(s))
    s2 = SimpleNamespace(home=tmp_path, signing_key="a-shared-cluster-secret", ed25519_private_key=None)
    with pytest.raises(SignatureError):
        verify(path, d, verify_keys_from_settings(s2))
    priv, _ = generate_ed25519_keypair(tmp_path / "ed.pem")
    s3 = SimpleNamespace(home=tmp_path, signing_key=None, ed25519_private_key=priv)
    assert signer_from_settings(s3).alg == "ed25519"
    with pytest.raises(ManifestError, match="at least 16 bytes"):
        hmac_signer(b"short")
