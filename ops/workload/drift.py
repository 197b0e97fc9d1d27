"""Streams whose task mix or quality changes at a known point, for drift benchmarks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

from .generator import DEFAULT_SUCCESS, FamilySpec, Workload, family_weights, generate_workload


@dataclass
class DriftScenario:
    workload: Workload
    change_at: int            # index of the first event generated under the new regime
    kind: str                 # "new_family" or "success_drop"
    family: str               # the family that appeared or degraded

    @property
    def events(self) -> list[dict]:
        return self.workload.events

    @property
    def labels(self) -> list[str]:
        return self.workload.labels


def shifted_stream(
    n_before: int,
    n_after: int,
    seed: int | str = 0,
    kind: Literal["new_family", "success_drop"] = "new_family",
    family: str | None = None,
    families: FamilySpec = None,
    new_family_share: float = 0.2,
    success_before: float = DEFAULT_SUCCESS,
    success_after: float = 0.6,
    **kwargs,
) -> DriftScenario:
    """``n_before`` events of the usual mix, then ``n_after`` events in which either a new
    family (default "calendar") takes ``new_family_share`` of traffic, or ``family`` (default
    "dns") succeeds with ``success_after`` instead of ``success_before``. Time runs on
    without a gap. Other keyword arguments go to `generate_workload`."""
    if kind not in ("new_family", "success_drop"):
        raise ValueError(f"kind={kind!r}: use 'new_family' or 'success_drop'")
    before_mix = family_weights(families)
    if kind == "new_family":
        family = family or "calendar"
        if family in before_mix:
            raise ValueError(f"{family!r} is already in the mix before the change; pick a family outside {sorted(before_mix)}")
        total = sum(before_mix.values())
        after_mix: Mapping[str, float] = dict(before_mix, **{family: total * new_family_share / (1 - new_family_share)})
        rates_before = rates_after = kwargs.pop("success_rates", None)
    else:
        family = family or "dns"
        if family not in before_mix:
            raise ValueError(f"{family!r} is not in the mix {sorted(before_mix)}")
        after_mix = before_mix
        base = dict(kwargs.pop("success_rates", None) or {})
        rates_before = dict(base, **{family: success_before})
        rates_after = dict(base, **{family: success_after})
    first = generate_workload(n_before, f"{seed}/before", families=before_mix, success_rates=rates_before, **kwargs)
    start = kwargs.pop("start_ts", None)
    if first.events:
        start = first.events[-1]["ts"]
    second = generate_workload(n_after, f"{seed}/after", families=after_mix, success_rates=rates_after,
                               start_ts=start, **kwargs)
    first.extend(second)
    return DriftScenario(first, n_before, kind, family)
