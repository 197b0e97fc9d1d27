"""Adapter manifests: what an adapter is made of, signed, and checked before anything loads it.

A manifest (manifest.json beside the adapter files) records the base model id and weights
hash, the dataset sha256, the training config, the evaluation metrics, the sha256 of every
adapter file and the code version. It is signed over its canonical JSON (sorted keys, compact,
without the "signature" member):

- HMAC-SHA256 (default) with DISTILLERY_SIGNING_KEY, else a 32-byte key file generated once
  under DISTILLERY_HOME/keys/ (trainer and serving on one machine share it; a cluster sets
  DISTILLERY_SIGNING_KEY everywhere);
- Ed25519 when DISTILLERY_ED25519_KEY names a PEM private key: serving then needs only the
  public key (PEM, default <private>.pub).

verify() raises ManifestError (SignatureError or IntegrityError) on any mismatch: a changed,
missing or extra adapter file, a changed manifest, a wrong key.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

FORMAT = "distillery.adapter-manifest/v1"
MANIFEST_NAME = "manifest.json"
HMAC_KEY_FILE = "keys/manifest-hmac.key"


class ManifestError(ValueError):
    """The manifest or the adapter it describes cannot be trusted."""


class SignatureError(ManifestError):
    """The signature is missing, of an unknown kind, or does not match (wrong key or edited)."""


class IntegrityError(ManifestError):
    """An adapter file differs from what the manifest records (tampered, missing or extra)."""


# ---- hashing -----------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(adapter_dir: Path) -> dict[str, str]:
    """relative path -> sha256 for every file in the adapter directory except the manifest."""
    adapter_dir = Path(adapter_dir)
    return {p.relative_to(adapter_dir).as_posix(): sha256_file(p)
            for p in sorted(adapter_dir.rglob("*")) if p.is_file() and p.name != MANIFEST_NAME}


def weights_digest(files: Mapping[str, str]) -> str:
    """One sha256 over the weight files' names and hashes (the 'adapter weights sha256')."""
    h = hashlib.sha256()
    for name in sorted(files):
        if name.endswith((".safetensors", ".bin")):
            h.update(f"{name}:{files[name]}\n".encode())
    return h.hexdigest()


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    """Hash of the whole signed manifest (signature included): what events carry."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


# ---- keys and signers ----------------------------------------------------------------------
@dataclass(frozen=True)
class Signer:
    alg: str                       # "hmac-sha256" | "ed25519"
    key_id: str
    sign: Callable[[bytes], bytes]


@dataclass(frozen=True)
class VerifyKeys:
    """Whatever the verifier holds: an HMAC key, an Ed25519 public key, or both."""

    hmac_key: bytes | None = None
    ed25519_public: Any = None     # cryptography Ed25519PublicKey


def _key_id(material: bytes) -> str:
    return hashlib.sha256(b"distillery-key-id\0" + material).hexdigest()[:16]


def hmac_signer(key: bytes) -> Signer:
    if len(key) < 16:
        raise ManifestError("the HMAC signing key must be at least 16 bytes (set DISTILLERY_SIGNING_KEY to a long random string)")
    return Signer("hmac-sha256", _key_id(key), lambda payload: hmac.new(key, payload, hashlib.sha256).digest())


def _ed25519():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pinned in pyproject; this only helps a broken install
        raise ManifestError("Ed25519 signing needs the 'cryptography' package (pip install cryptography)") from exc
    return serialization, ed25519


def _raw_public(public_key: Any) -> bytes:
    serialization, _ = _ed25519()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_ed25519_private(path: Path) -> Any:
    serialization, ed25519 = _ed25519()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ManifestError(f"cannot read the Ed25519 private key {path}: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ManifestError(f"{path} is not an Ed25519 private key")
    return key


def load_ed25519_public(path: Path) -> Any:
    serialization, ed25519 = _ed25519()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the Ed25519 public key {path}: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ManifestError(f"{path} is not an Ed25519 public key")
    return key


def ed25519_signer(private_key_path: Path) -> Signer:
    key = load_ed25519_private(private_key_path)
    return Signer("ed25519", _key_id(_raw_public(key.public_key())), key.sign)


def generate_ed25519_keypair(private_path: Path) -> tuple[Path, Path]:
    """Write a new PEM key pair: private_path (0600) and private_path + '.pub'."""
    serialization, ed25519 = _ed25519()
    key = ed25519.Ed25519PrivateKey.generate()
    private_path = Path(private_path)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path = Path(str(private_path) + ".pub")
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def local_hmac_key(home: Path) -> bytes:
    """The key file under DISTILLERY_HOME, created (0600, 32 random bytes) on first use."""
    path = Path(home) / HMAC_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode())
    key = path.read_bytes().strip()
    if not key:
        raise ManifestError(f"the signing key file {path} is empty; delete it to generate a new one")
    return key


def signer_from_settings(settings: Any) -> Signer:
    """Ed25519 when settings.ed25519_private_key is set, else HMAC with settings.signing_key,
    else HMAC with the local key file."""
    if getattr(settings, "ed25519_private_key", None):
        return ed25519_signer(settings.ed25519_private_key)
    if getattr(settings, "signing_key", None):
        return hmac_signer(settings.signing_key.encode("utf-8"))
    return hmac_signer(local_hmac_key(settings.home))


def verify_keys_from_settings(settings: Any, ed25519_public_key: Path | None = None) -> VerifyKeys:
    """What serving holds: the HMAC key (setting or local file) and, when configured, the
    Ed25519 public key (given, else <DISTILLERY_ED25519_KEY>.pub, else derived from the
    private key)."""
    public = None
    priv = getattr(settings, "ed25519_private_key", None)
    if ed25519_public_key is not None:
        public = load_ed25519_public(ed25519_public_key)
    elif priv:
        pub_path = Path(str(priv) + ".pub")
        public = load_ed25519_public(pub_path) if pub_path.exists() else load_ed25519_private(priv).public_key()
    key = settings.signing_key.encode("utf-8") if getattr(settings, "signing_key", None) else local_hmac_key(settings.home)
    return VerifyKeys(hmac_key=key, ed25519_public=public)


# ---- build, sign, write, verify -----------------------------------------------------------
def build_manifest(
    *, adapter_id: str, adapter_dir: Path, base_model_id: str, base_weights_sha256: str,
    dataset_uri: str, dataset_sha256: str, config: Mapping[str, Any], metrics: Mapping[str, float],
    code_version: str, created_at_ms: int, extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    files = file_hashes(adapter_dir)
    if not any(name.endswith((".safetensors", ".bin")) for name in files):
        raise ManifestError(f"{adapter_dir} holds no adapter weights")
    return {
        "format": FORMAT,
        "adapter_id": adapter_id,
        "created_at_ms": int(created_at_ms),
        "base_model": {"id": base_model_id, "weights_sha256": base_weights_sha256},
        "dataset": {"uri": dataset_uri, "sha256": dataset_sha256},
        "config": dict(config),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "files": files,
        "adapter_weights_sha256": weights_digest(files),
        "code_version": code_version,
        **({"extra": dict(extra)} if extra else {}),
    }


def sign_manifest(manifest: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    sig = signer.sign(canonical_bytes(body))
    return {**body, "signature": {"alg": signer.alg, "key_id": signer.key_id, "value": base64.b64encode(sig).decode()}}


def write_manifest(manifest: Mapping[str, Any], adapter_dir: Path) -> Path:
    path = Path(adapter_dir) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def check_signature(manifest: Mapping[str, Any], keys: VerifyKeys) -> None:
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("value"), str):
        raise SignatureError("the manifest is not signed")
    try:
        value = base64.b64decode(sig["value"], validate=True)
    except ValueError:
        raise SignatureError("the signature is not valid base64") from None
    payload = canonical_bytes(manifest)
    alg = sig.get("alg")
    if alg == "hmac-sha256":
        if keys.hmac_key is None:
            raise SignatureError("the manifest is HMAC-signed but no HMAC key was given to verify it")
        expected = hmac.new(keys.hmac_key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, value):
            hint = " (signed with a different key)" if sig.get("key_id") != _key_id(keys.hmac_key) else " (the manifest was edited after signing)"
            raise SignatureError(f"HMAC signature mismatch{hint}")
    elif alg == "ed25519":
        if keys.ed25519_public is None:
            raise SignatureError("the manifest is Ed25519-signed but no Ed25519 public key was given to verify it")
        from cryptography.exceptions import InvalidSignature

        try:
            keys.ed25519_public.verify(value, payload)
        except InvalidSignature:
            hint = " (signed with a different key)" if sig.get("key_id") != _key_id(_raw_public(keys.ed25519_public)) else " (the manifest was edited after signing)"
            raise SignatureError(f"Ed25519 signature mismatch{hint}") from None
    else:
        raise SignatureError(f"unknown signature algorithm {alg!r}")


def check_files(manifest: Mapping[str, Any], adapter_dir: Path) -> None:
    recorded = manifest.get("files")
    if not isinstance(recorded, dict) or not recorded:
        raise IntegrityError("the manifest lists no adapter files")
    actual = file_hashes(adapter_dir)
    missing = sorted(set(recorded) - set(actual))
    extra = sorted(set(actual) - set(recorded))
    changed = sorted(n for n in set(recorded) & set(actual) if recorded[n] != actual[n])
    problems = []
    if changed:
        problems.append(f"changed: {', '.join(changed)}")
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if extra:
        problems.append(f"not in the manifest: {', '.join(extra)}")
    if problems:
        raise IntegrityError(f"adapter {manifest.get('adapter_id')!r} in {adapter_dir} does not match its manifest ({'; '.join(problems)})")
    if manifest.get("adapter_weights_sha256") != weights_digest(actual):
        raise IntegrityError("adapter_weights_sha256 does not match the adapter files")


def verify(manifest_path: Path | str, adapter_dir: Path | str, keys: VerifyKeys | None = None, *,
           hmac_key: bytes | str | None = None, ed25519_public_key: Any = None) -> dict[str, Any]:
    """Check the signature, then every adapter file; return the manifest. Raises ManifestError.

    Keys: a VerifyKeys, or hmac_key (bytes/str) and/or ed25519_public_key (a key object or a
    PEM path)."""
    if keys is None:
        if isinstance(hmac_key, str):
            hmac_key = hmac_key.encode("utf-8")
        if isinstance(ed25519_public_key, (str, Path)):
            ed25519_public_key = load_ed25519_public(Path(ed25519_public_key))
        keys = VerifyKeys(hmac_key=hmac_key, ed25519_public=ed25519_public_key)
    try:
        manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {manifest_path}: {exc}") from None
    except ValueError as exc:
        raise ManifestError(f"manifest {manifest_path} is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{manifest_path} is not a {FORMAT} manifest")
    check_signature(manifest, keys)
    check_files(manifest, Path(adapter_dir))
    return manifest
