"""Durable state of stateful agents (dedupe index, clustering model, metric windows), one blob
per (agent, partition), in the artifact store: a local directory by default, any fsspec URI in
production, so a partition's state follows it to whichever worker is assigned it."""
from __future__ import annotations

import fsspec


class CheckpointStore:
    def __init__(self, artifacts_uri: str):
        self.root = artifacts_uri.rstrip("/") + "/checkpoints"
        self.fs, self.base = fsspec.core.url_to_fs(self.root)

    def _path(self, name: str, partition: int) -> str:
        return f"{self.base}/{name}/p{partition:04d}.bin"

    def load(self, name: str, partition: int) -> bytes | None:
        path = self._path(name, partition)
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as f:
            return f.read()

    def save(self, name: str, partition: int, blob: bytes) -> None:
        """Write then rename, so a crash never leaves a torn checkpoint."""
        path = self._path(name, partition)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = path + ".tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(blob)
        self.fs.mv(tmp, path)
