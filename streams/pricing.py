"""Cost at ingest (pure): events without cost_usd are priced from the model price table.
API models pay per token; self-hosted models (specialists, local bases) per GPU-second, so a
specialist never shows as free. Unknown models are priced 0 and marked `unpriced` so analysts
can find them (the $0-for-self-hosted complaint of peers)."""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PriceTableError(ValueError):
    pass


@dataclass(frozen=True)
class Price:
    input_per_1k: float = 0.0
    output_per_1k: float = 0.0
    gpu_second: float | None = None

    @property
    def self_hosted(self) -> bool:
        return self.gpu_second is not None


def _price(where: str, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise PriceTableError(f"{where}: expected an object with input_per_1k/output_per_1k or gpu_second")
    known = {"input_per_1k", "output_per_1k", "gpu_second", "match"}
    unknown = set(entry) - known
    if unknown:
        raise PriceTableError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: input_per_1k, output_per_1k, gpu_second")
    values = {}
    for key in ("input_per_1k", "output_per_1k", "gpu_second"):
        if key in entry:
            v = entry[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise PriceTableError(f"{where}.{key}: must be a non-negative number, got {v!r}")
            values[key] = float(v)
    if not values:
        raise PriceTableError(f"{where}: give token prices (input_per_1k, output_per_1k) or gpu_second")
    if "gpu_second" in values and ("input_per_1k" in values or "output_per_1k" in values):
        raise PriceTableError(f"{where}: a model is priced per token or per GPU-second, not both")
    return Price(**values)


class PriceTable:
    def __init__(self, models: dict[str, Price], patterns: list[tuple[str, Price]]):
        self.models = models
        self.patterns = patterns
        self._cache: dict[str, Price | None] = {}

    @classmethod
    def load(cls, path: Path) -> "PriceTable":
        try:
            raw = json.loads(Path(path).read_text())
        except OSError as exc:
            raise PriceTableError(f"cannot read price table {path}: {exc}") from None
        except ValueError as exc:
            raise PriceTableError(f"price table {path} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("models", {}), dict):
            raise PriceTableError(f"price table {path}: expected {{\"models\": {{name: price}}, \"patterns\": [...]}}")
        models = {name: _price(f"{path}: models[{name!r}]", e) for name, e in raw.get("models", {}).items()}
        patterns = []
        for i, e in enumerate(raw.get("patterns", [])):
            if not isinstance(e, dict) or not isinstance(e.get("match"), str):
                raise PriceTableError(f"{path}: patterns[{i}] needs a string 'match' glob")
            patterns.append((e["match"], _price(f"{path}: patterns[{i}]", e)))
        return cls(models, patterns)

    def lookup(self, model: str) -> Price | None:
        if model in self._cache:
            return self._cache[model]
        price = self.models.get(model)
        if price is None:
            price = next((p for glob, p in self.patterns if fnmatch.fnmatchcase(model, glob)), None)
        self._cache[model] = price
        return price

    def cost(self, model: str, input_tokens: int, output_tokens: int, latency_ms: float,
             gpu_seconds: float | None, reported: float | None) -> tuple[float, str]:
        """(cost_usd, source): source is reported | tokens | gpu_seconds | unpriced."""
        if reported is not None:
            return reported, "reported"
        price = self.lookup(model)
        if price is None:
            return 0.0, "unpriced"
        if price.self_hosted:
            seconds = gpu_seconds if gpu_seconds is not None else latency_ms / 1000.0
            return round(seconds * price.gpu_second, 10), "gpu_seconds"
        return round(input_tokens / 1000.0 * price.input_per_1k + output_tokens / 1000.0 * price.output_per_1k, 10), "tokens"
