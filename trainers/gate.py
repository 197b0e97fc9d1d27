"""The promotion gate: does an adapter deserve a shadow trial? Pure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str


@dataclass(frozen=True)
class Gate:
    """Pass when the adapter beats the base's exact match by min_gain, reaches min_exact_match,
    and its answers have the right form (format validity) at least min_format of the time."""

    min_gain: float = 0.10
    min_format: float = 0.90
    min_exact_match: float = 0.0

    def check(self, adapter: Mapping[str, float], base: Mapping[str, float]) -> GateResult:
        em, base_em = adapter.get("exact_match", 0.0), base.get("exact_match", 0.0)
        fmt = adapter.get("format_valid", 0.0)
        gain = em - base_em
        facts = f"exact match {em:.3f} vs base {base_em:.3f} (gain {gain:+.3f}, need >= {self.min_gain:.3f}); format validity {fmt:.3f} (need >= {self.min_format:.3f})"
        failures = []
        if gain < self.min_gain:
            failures.append("too little gain over the base")
        if fmt < self.min_format:
            failures.append("too many malformed answers")
        if em < self.min_exact_match:
            failures.append(f"exact match below {self.min_exact_match:.3f}")
        if failures:
            return GateResult(False, f"gate failed ({'; '.join(failures)}): {facts}")
        return GateResult(True, f"gate passed: {facts}")
