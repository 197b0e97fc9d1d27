"""The artifact store (DISTILLERY_ARTIFACTS: a directory or any fsspec URI such as s3://...):
adapters under adapters/<adapter_id>/ and the trainer's durable command ledger."""
from __future__ import annotations

import json
import posixpath
import uuid
from pathlib import Path
from typing import Any

import fsspec

from schemas.manifest import MANIFEST_NAME


class ArtifactStore:
    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.uri)

    def _path(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def url(self, rel: str) -> str:
        """A URI for rel that fsspec.open understands (a plain path for local stores)."""
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        path = self._path(rel)
        return path if protocol in ("file", "local") else f"{protocol}://{path}"

    @staticmethod
    def adapter_prefix(adapter_id: str) -> str:
        return f"adapters/{adapter_id}"

    def manifest_uri(self, adapter_id: str) -> str:
        return self.url(f"{self.adapter_prefix(adapter_id)}/{MANIFEST_NAME}")

    def put_adapter(self, local_dir: Path, adapter_id: str) -> str:
        """Upload every file, the manifest last, so a visible manifest means a complete adapter.
        Returns the manifest URI."""
        prefix = self.adapter_prefix(adapter_id)
        files = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())
        for p in sorted(files, key=lambda p: p.name == MANIFEST_NAME):
            dest = self._path(f"{prefix}/{p.relative_to(local_dir).as_posix()}")
            self.fs.makedirs(posixpath.dirname(dest), exist_ok=True)
            self.fs.put_file(str(p), dest)
        return self.manifest_uri(adapter_id)

    def fetch_adapter(self, adapter_id: str, dest: Path) -> Path:
        """Download adapters/<adapter_id>/ into dest (for serving); verify it before loading."""
        prefix = self._path(self.adapter_prefix(adapter_id))
        if not self.fs.exists(posixpath.join(prefix, MANIFEST_NAME)):
            raise FileNotFoundError(f"no manifest for adapter {adapter_id} in {self.uri}")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for remote in self.fs.find(prefix):
            rel = posixpath.relpath(remote, prefix)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(target))
        return dest

    # ---- small JSON documents (the ledger) ----------------------------------------------------
    def read_json(self, rel: str) -> dict[str, Any] | None:
        path = self._path(rel)
        try:
            with self.fs.open(path, "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a torn write from a crash: treated as absent, the job reruns

    def write_json(self, rel: str, doc: dict[str, Any]) -> None:
        """Write to a temporary name, then move, so readers never see half a document."""
        path = self._path(rel)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(json.dumps(doc, sort_keys=True).encode())
        self.fs.mv(tmp, path)
