"""Adapter registry: one base model per process, LoRA adapters hot-loaded onto it with peft,
an LRU cap on how many are resident, and the signed manifest checked before any load.

All model work (verify+load, unload, generate) runs on one worker thread: peft's active
adapter is process-wide state, and on a CPU two generations at once only slow each other.
Live requests jump ahead of shadow calls in that thread's queue (priority), so shadow
evaluation never waits in front of a user.

A refused adapter (bad signature, changed or missing file, other base) is remembered with its
reason and never served; the caller turns the refusal into a demotion.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import queue
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from schemas import manifest as manifests
from serving.upstream import Answer

log = logging.getLogger(__name__)

PRIORITY_LIVE, PRIORITY_SHADOW, PRIORITY_ADMIN = 0, 2, 1


class AdapterRefused(RuntimeError):
    """The adapter failed verification; `reason` says how (for the demotion event)."""

    def __init__(self, adapter_id: str, reason: str, kind: str = "integrity"):
        super().__init__(f"adapter {adapter_id} refused: {reason}")
        self.adapter_id, self.reason, self.kind = adapter_id, reason, kind


class AdapterUnavailable(RuntimeError):
    """Asked to answer with an adapter that is not loaded and cannot be loaded now."""


def model_name(adapter_id: str) -> str:
    """How a specialist appears in events and the price table (pattern distillery/*)."""
    return f"distillery/{adapter_id}"


def _module_key(adapter_id: str) -> str:
    # peft keeps adapters in ModuleDicts: the name may not contain '.'; ids are free-form
    return "a_" + hashlib.sha1(adapter_id.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# The one model thread
# ---------------------------------------------------------------------------------------
class ModelWorker:
    """A single thread running model jobs by priority, then arrival."""

    def __init__(self, name: str = "distillery-model"):
        self._q: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.busy_seconds = 0.0

    def _run(self) -> None:
        while True:
            _, _, job = self._q.get()
            if job is None:
                return
            fn, loop, fut = job
            t0 = time.perf_counter()
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(_set_exception, fut, exc)
            else:
                loop.call_soon_threadsafe(_set_result, fut, result)
            finally:
                self.busy_seconds += time.perf_counter() - t0

    def pending(self) -> int:
        return self._q.qsize()

    async def run(self, fn: Callable[[], Any], priority: int = PRIORITY_LIVE) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put((priority, next(self._seq), (fn, loop, fut)))
        return await fut

    def call(self, fn: Callable[[], Any], priority: int = PRIORITY_ADMIN) -> Any:
        """Blocking form for code without an event loop (CLI, benchmarks)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def job():
            try:
                box["r"] = fn()
            except BaseException as exc:
                box["e"] = exc
            finally:
                done.set()
        self._q.put((priority, next(self._seq), (job, _NullLoop(), None)))
        done.wait()
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def stop(self) -> None:
        self._q.put((-1, next(self._seq), None))
        self._thread.join(timeout=10)


class _NullLoop:
    @staticmethod
    def call_soon_threadsafe(*_: Any) -> None:
        return None


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


# ---------------------------------------------------------------------------------------
# Fetching adapter files
# ---------------------------------------------------------------------------------------
def locate(manifest_uri: str, cache_dir: Path, adapter_id: str) -> tuple[Path, Path]:
    """(manifest path, adapter dir) on local disk. Local paths and file:// are used in place;
    any other fsspec URI is copied into the cache first (and verified there)."""
    parsed = urlparse(manifest_uri)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else manifest_uri).expanduser()
        if path.is_dir():
            path = path / manifests.MANIFEST_NAME
        return path, path.parent
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(manifest_uri)
    remote_manifest = paths[0]
    remote_dir = remote_manifest.rsplit("/", 1)[0]
    local_dir = cache_dir / _module_key(adapter_id)
    if local_dir.exists():
        shutil.rmtree(local_dir)
    local_dir.mkdir(parents=True)
    fs.get(remote_dir.rstrip("/") + "/", str(local_dir), recursive=True)
    return local_dir / manifests.MANIFEST_NAME, local_dir


# ---------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadResult:
    adapter_id: str
    seconds: float
    verify_seconds: float
    evicted: tuple[str, ...]
    already_loaded: bool = False


class AdapterRegistry:
    def __init__(self, base_dir: Path, keys: manifests.VerifyKeys, *, max_loaded: int = 8,
                 cache_dir: Path | None = None, check_base: bool = True, worker: ModelWorker | None = None):
        self.base_dir = Path(base_dir)
        self.keys = keys
        self.max_loaded = max(1, max_loaded)
        self.cache_dir = Path(cache_dir) if cache_dir else Path("/tmp/distillery-adapter-cache")
        self.check_base = check_base
        self.worker = worker or ModelWorker()
        self.base_weights_sha256: str | None = None
        self.tokenizer: Any = None
        self._base: Any = None
        self._model: Any = None                               # PeftModel once an adapter is loaded
        self._resident: OrderedDict[str, str] = OrderedDict()  # adapter_id -> module key, LRU order
        self._zombies: set[str] = set()                        # unloaded but kept: peft cannot drop its last adapter
        self.refused: dict[str, str] = {}                      # adapter_id -> reason
        self.manifests: dict[str, dict[str, Any]] = {}
        self.decoding: dict[str, Any] = {}                    # adapter_id -> CopyVocabulary (copy decoding)
        self.loads = 0
        self.evictions = 0

    # -- setup -------------------------------------------------------------------------------
    def _load_base_sync(self) -> None:
        import torch  # noqa: F401  (import cost paid here, in the worker)
        from transformers import AutoModelForCausalLM

        from trainers.base_models import weights_sha256
        from trainers.lora import load_tokenizer

        self.tokenizer = load_tokenizer(self.base_dir)
        self._base = AutoModelForCausalLM.from_pretrained(str(self.base_dir), local_files_only=True)
        self._base.eval()
        self.base_weights_sha256 = weights_sha256(self.base_dir)

    async def start(self) -> None:
        await self.worker.run(self._load_base_sync, PRIORITY_ADMIN)

    def start_sync(self) -> None:
        self.worker.call(self._load_base_sync)

    def stop(self) -> None:
        self.worker.stop()

    # -- queries ------------------------------------------------------------------------------
    def is_loaded(self, adapter_id: str) -> bool:
        return adapter_id in self._resident

    @property
    def loaded(self) -> list[str]:
        """Resident adapters, least recently used first."""
        return list(self._resident)

    # -- verify and load ----------------------------------------------------------------------
    def verify(self, adapter_id: str, manifest_uri: str) -> tuple[dict[str, Any], Path]:
        """Signature, file hashes, adapter id and base model; raises AdapterRefused."""
        try:
            manifest_path, adapter_dir = locate(manifest_uri, self.cache_dir, adapter_id)
        except (OSError, ValueError) as exc:
            raise AdapterRefused(adapter_id, f"cannot fetch {manifest_uri}: {exc}", "missing") from None
        try:
            manifest = manifests.verify(manifest_path, adapter_dir, self.keys)
        except manifests.SignatureError as exc:
            raise AdapterRefused(adapter_id, str(exc), "signature") from None
        except manifests.ManifestError as exc:
            raise AdapterRefused(adapter_id, str(exc), "integrity") from None
        if manifest.get("adapter_id") != adapter_id:
            raise AdapterRefused(adapter_id, f"the manifest is for adapter {manifest.get('adapter_id')!r}", "mismatch")
        base = (manifest.get("base_model") or {}).get("weights_sha256")
        if self.check_base and self.base_weights_sha256 and base != self.base_weights_sha256:
            raise AdapterRefused(adapter_id, f"trained on base weights {str(base)[:12]}..., this replica serves "
                                             f"{self.base_weights_sha256[:12]}... ({self.base_dir})", "base_mismatch")
        return manifest, adapter_dir

    def _load_sync(self, adapter_id: str, manifest_uri: str) -> LoadResult:
        if adapter_id in self._resident and adapter_id not in self._zombies:
            self._resident.move_to_end(adapter_id)
            return LoadResult(adapter_id, 0.0, 0.0, (), already_loaded=True)
        t0 = time.perf_counter()
        try:
            manifest, adapter_dir = self.verify(adapter_id, manifest_uri)
        except AdapterRefused as exc:
            self.refused[adapter_id] = exc.reason
            raise
        verify_s = time.perf_counter() - t0
        key = _module_key(adapter_id + "|" + manifests.manifest_sha256(manifest))
        stale = self._resident.get(adapter_id)
        if stale == key:                      # unloaded earlier but still resident: revive it
            self._zombies.discard(adapter_id)
            self._resident.move_to_end(adapter_id)
            return LoadResult(adapter_id, time.perf_counter() - t0, verify_s, (), already_loaded=True)
        if self._model is None:
            from peft import PeftModel

            self._model = PeftModel.from_pretrained(self._base, str(adapter_dir), adapter_name=key, is_trainable=False)
            self._model.eval()
        else:
            self._model.load_adapter(str(adapter_dir), adapter_name=key, is_trainable=False)
        if stale is not None:                 # a new build under the same id replaces the old one
            del self._resident[adapter_id]
            self._zombies.discard(adapter_id)
            self._model.delete_adapter(stale)
        from trainers.copy_decoding import load_decoding

        self._resident[adapter_id] = key
        self.refused.pop(adapter_id, None)
        self.manifests[adapter_id] = manifest
        # the trainer chose copy-constrained decoding for it on held-out data (decoding.json,
        # whose hash the signed manifest covers)
        vocabulary = load_decoding(adapter_dir)
        if vocabulary is not None:
            self.decoding[adapter_id] = vocabulary
        else:
            self.decoding.pop(adapter_id, None)
        self.loads += 1
        evicted = self._evict_over_cap(keep=adapter_id)
        return LoadResult(adapter_id, time.perf_counter() - t0, verify_s, tuple(evicted))

    def _evict_over_cap(self, keep: str) -> list[str]:
        evicted = []
        for zombie in [z for z in self._zombies if z != keep]:
            if len(self._resident) > 1:
                self._delete(zombie)
        while len(self._resident) > self.max_loaded:
            victim = next(a for a in self._resident if a != keep)
            self._delete(victim)
            self.evictions += 1
            evicted.append(victim)
        return evicted

    def _delete(self, adapter_id: str) -> None:
        key = self._resident.pop(adapter_id)
        self._zombies.discard(adapter_id)
        self._model.delete_adapter(key)

    def _unload_sync(self, adapter_id: str) -> bool:
        if adapter_id not in self._resident:
            return False
        if len(self._resident) == 1:
            self._zombies.add(adapter_id)   # peft needs one adapter; it goes at the next load
        else:
            self._delete(adapter_id)
        return True

    async def load(self, adapter_id: str, manifest_uri: str) -> LoadResult:
        return await self.worker.run(lambda: self._load_sync(adapter_id, manifest_uri), PRIORITY_ADMIN)

    def load_sync(self, adapter_id: str, manifest_uri: str) -> LoadResult:
        return self.worker.call(lambda: self._load_sync(adapter_id, manifest_uri))

    async def unload(self, adapter_id: str) -> bool:
        return await self.worker.run(lambda: self._unload_sync(adapter_id), PRIORITY_ADMIN)

    # -- answering ----------------------------------------------------------------------------
    def _generate_sync(self, adapter_id: str, prompt: str, max_new_tokens: int) -> Answer:
        import torch

        from transformers import LogitsProcessorList

        from trainers.copy_decoding import logits_processor
        from trainers.prompting import encode_prompt

        key = self._resident.get(adapter_id)
        if key is None or adapter_id in self._zombies:
            raise AdapterUnavailable(f"adapter {adapter_id} is not loaded")
        self._resident.move_to_end(adapter_id)
        tok = self.tokenizer
        ids = encode_prompt(tok, prompt)
        limit = getattr(self._model.config, "max_position_embeddings", 2048) - max_new_tokens
        ids = ids[-max(1, limit):]
        extra = {}
        vocabulary = self.decoding.get(adapter_id)
        if vocabulary is not None:
            extra["logits_processor"] = LogitsProcessorList([logits_processor(tok, [vocabulary.rule(prompt)], len(ids))])
        t0 = time.perf_counter()
        with torch.inference_mode():
            self._model.set_adapter(key)
            input_ids = torch.tensor([ids])
            out = self._model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                       max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **extra)
        seconds = time.perf_counter() - t0
        new = out[0, len(ids):]
        text = tok.decode(new, skip_special_tokens=True).strip()
        finished = bool(len(new)) and int(new[-1]) == tok.eos_token_id
        return Answer(content=text, model=model_name(adapter_id), prompt_tokens=len(ids),
                      completion_tokens=int(len(new)), latency_ms=seconds * 1000.0,
                      gpu_seconds=seconds, finish_reason="stop" if finished else "length")

    async def generate(self, adapter_id: str, prompt: str, max_new_tokens: int = 128,
                       priority: int = PRIORITY_LIVE) -> Answer:
        t0 = time.perf_counter()
        answer = await self.worker.run(lambda: self._generate_sync(adapter_id, prompt, max_new_tokens), priority)
        # the caller waited for the queue too: report its latency, keep compute as gpu_seconds
        return Answer(answer.content, answer.model, answer.prompt_tokens, answer.completion_tokens,
                      (time.perf_counter() - t0) * 1000.0, None, answer.gpu_seconds, answer.finish_reason)

    def generate_sync(self, adapter_id: str, prompt: str, max_new_tokens: int = 128) -> Answer:
        return self.worker.call(lambda: self._generate_sync(adapter_id, prompt, max_new_tokens), PRIORITY_LIVE)
