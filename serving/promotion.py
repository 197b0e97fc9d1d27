"""Promotion policy: when a shadow adapter may take over its cluster, and when an active one
must step down. Pure: no I/O, no clock; callers feed observations and receive decisions.

Small composable estimators in river's style (learn_one / a read-out), and one policy object
that turns their read-outs into decisions:

- ShadowScoreboard: rolling evidence about one shadow adapter (shadow.results records).
- ServedFormatMonitor: rolling format-error rate of one active adapter on served traffic.
- PromotionPolicy: per-adapter estimators + the thresholds -> Decision objects.

Every decision carries a deterministic id: the same evidence epoch (the command that put the
adapter into its current state) always yields the same command id, so replicas that reach the
same decision publish the same command and consumers apply it once.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterable, Mapping

from distillery.settings import SettingsError


# ---------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromotionThresholds:
    """Seed defaults from the S6 issue; override any of them with
    DISTILLERY_PROMOTION_THRESHOLDS='min_shadow_calls=500,max_escalation_rate=0.02'."""

    min_shadow_calls: int = 300            # evidence needed before a promotion is considered
    evaluation_window: int = 1000          # promotion looks at the newest N shadow calls
    min_format_compliance: float = 0.98
    min_success_parity: float = 0.95       # share of calls where the shadow agrees with the primary
    equivalent_f1: float = 0.9             # field F1 at which two answers count as the same task result
    max_latency_increase: float = 0.10     # shadow p50 latency may exceed the primary's by at most 10 %
    min_cost_reduction: float = 0.30       # shadow must cost at least 30 % less than the primary
    max_escalation_rate: float = 0.05      # strictly below
    demote_window: int = 50                # rolling window of served calls
    demote_format_error_rate: float = 0.05  # strictly above -> demote
    fatal_drift_severities: tuple[str, ...] = ("fatal",)
    fatal_success_rate_drop: float = 0.25  # a success_rate drift dropping this much (absolute) is fatal too

    def __post_init__(self) -> None:
        for name in ("min_format_compliance", "min_success_parity", "equivalent_f1", "min_cost_reduction",
                     "max_escalation_rate", "demote_format_error_rate", "fatal_success_rate_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SettingsError(f"promotion threshold {name}={value} must be between 0 and 1")
        if self.max_latency_increase < 0:
            raise SettingsError(f"promotion threshold max_latency_increase={self.max_latency_increase} must be >= 0")
        for name in ("min_shadow_calls", "evaluation_window", "demote_window"):
            if getattr(self, name) < 1:
                raise SettingsError(f"promotion threshold {name}={getattr(self, name)} must be >= 1")
        if self.evaluation_window < self.min_shadow_calls:
            raise SettingsError(f"promotion threshold evaluation_window={self.evaluation_window} must be >= min_shadow_calls={self.min_shadow_calls}")

    @classmethod
    def parse(cls, spec: str | None) -> "PromotionThresholds":
        """'name=value,name=value' or a JSON object; unknown names and bad values raise SettingsError."""
        if spec is None or not spec.strip():
            return cls()
        text = spec.strip()
        if text.startswith("{"):
            try:
                pairs = dict(json.loads(text))
            except ValueError as exc:
                raise SettingsError(f"DISTILLERY_PROMOTION_THRESHOLDS is not valid JSON: {exc}") from None
        else:
            pairs = {}
            for part in text.split(","):
                name, sep, value = part.partition("=")
                if not sep:
                    raise SettingsError(f"DISTILLERY_PROMOTION_THRESHOLDS: {part!r} is not name=value")
                pairs[name.strip()] = value.strip()
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, raw in pairs.items():
            if name not in known:
                raise SettingsError(f"DISTILLERY_PROMOTION_THRESHOLDS: unknown threshold {name!r}; known: {', '.join(sorted(known))}")
            default = getattr(cls(), name)
            try:
                if isinstance(default, tuple):
                    values[name] = tuple(x.strip() for x in (raw.split("|") if isinstance(raw, str) else raw) if x.strip())
                elif isinstance(default, int):
                    values[name] = int(raw)
                else:
                    values[name] = float(raw)
            except (TypeError, ValueError):
                raise SettingsError(f"DISTILLERY_PROMOTION_THRESHOLDS: {name}={raw!r} is not a {type(default).__name__}") from None
        return replace(cls(), **values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------
def quantile(values: Iterable[float], q: float) -> float:
    """Linear-interpolated quantile of a finite sample (nan when empty)."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass(frozen=True)
class ShadowEvidence:
    """What the newest shadow calls of one adapter say; the names are the evidence map keys."""

    calls: int
    format_compliance: float
    success_parity: float
    exact_match_rate: float
    mean_field_f1: float
    tool_call_validity: float
    escalation_rate: float
    safety_incidents: int
    primary_latency_p50_ms: float
    shadow_latency_p50_ms: float
    latency_increase: float        # shadow p50 / primary p50 - 1
    primary_cost_usd: float
    shadow_cost_usd: float
    cost_reduction: float          # 1 - shadow cost / primary cost

    def as_map(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


class ShadowScoreboard:
    """Rolling window over one shadow adapter's comparisons (learn_one per shadow result)."""

    def __init__(self, window: int = 1000, equivalent_f1: float = 0.9):
        self.window = window
        self.equivalent_f1 = equivalent_f1
        self._rows: deque[tuple[bool, bool, float, bool, bool, bool, float, float, float, float]] = deque(maxlen=window)
        self.safety_incidents = 0  # over the whole epoch, never forgotten by the window

    def learn_one(self, result: Mapping[str, Any]) -> "ShadowScoreboard":
        agrees = bool(result["exact_match"]) or float(result["field_f1"]) >= self.equivalent_f1
        self._rows.append((
            bool(result["format_valid"]), agrees, float(result["field_f1"]), bool(result["exact_match"]),
            bool(result["tool_calls_valid"]), bool(result.get("escalated", False)),
            float(result["primary_latency_ms"]), float(result["shadow_latency_ms"]),
            float(result["primary_cost_usd"]), float(result["shadow_cost_usd"]),
        ))
        if result.get("safety_incident"):
            self.safety_incidents += 1
        return self

    @property
    def calls(self) -> int:
        return len(self._rows)

    def evidence(self) -> ShadowEvidence:
        rows = self._rows
        n = len(rows)
        if n == 0:
            nan = math.nan
            return ShadowEvidence(0, nan, nan, nan, nan, nan, nan, self.safety_incidents, nan, nan, nan, 0.0, 0.0, nan)
        share = lambda i: sum(1 for r in rows if r[i]) / n  # noqa: E731
        p_lat = quantile((r[6] for r in rows), 0.5)
        s_lat = quantile((r[7] for r in rows), 0.5)
        p_cost = sum(r[8] for r in rows)
        s_cost = sum(r[9] for r in rows)
        return ShadowEvidence(
            calls=n,
            format_compliance=share(0),
            success_parity=share(1),
            exact_match_rate=share(3),
            mean_field_f1=sum(r[2] for r in rows) / n,
            tool_call_validity=share(4),
            escalation_rate=share(5),
            safety_incidents=self.safety_incidents,
            primary_latency_p50_ms=p_lat,
            shadow_latency_p50_ms=s_lat,
            latency_increase=(s_lat / p_lat - 1.0) if p_lat > 0 else (0.0 if s_lat <= 0 else math.inf),
            primary_cost_usd=p_cost,
            shadow_cost_usd=s_cost,
            cost_reduction=(1.0 - s_cost / p_cost) if p_cost > 0 else (0.0 if s_cost <= 0 else -math.inf),
        )


class ServedFormatMonitor:
    """Rolling format-error rate of an active adapter over its newest `window` served calls.

    The rate is errors / window even before the window is full: a lower bound of the rate the
    full window will show, so a burst of errors demotes at once and a few early errors do not."""

    def __init__(self, window: int = 50):
        self.window = window
        self._valid: deque[bool] = deque(maxlen=window)
        self.calls = 0

    def learn_one(self, format_valid: bool) -> "ServedFormatMonitor":
        self._valid.append(bool(format_valid))
        self.calls += 1
        return self

    @property
    def errors(self) -> int:
        return sum(1 for v in self._valid if not v)

    @property
    def error_rate(self) -> float:
        return self.errors / self.window


# ---------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------
PROMOTE, DEMOTE, ROLLBACK = "promote", "demote", "rollback"


@dataclass(frozen=True)
class Decision:
    """One lifecycle change the policy wants; serving turns it into a PromoteCommand and, for
    demotions and rollbacks, a DemotionEvent."""

    command_id: str
    action: str                       # promote | demote | rollback
    adapter_id: str
    cluster_id: int
    reason: str                       # one line, machine-greppable prefix (e.g. "format_errors: ...")
    evidence: dict[str, float] = field(default_factory=dict)
    rollback_to: str | None = None    # adapter reactivated; None = the upstream LLM
    trigger: str = ""                 # shadow_gate | format_errors | safety_incident | fatal_drift
    what_to_do: str = ""

    @property
    def is_demotion(self) -> bool:
        return self.action in (DEMOTE, ROLLBACK)


def decision_id(action: str, adapter_id: str, cluster_id: int, epoch: str, trigger: str) -> str:
    """Deterministic: one decision per (adapter, cluster, lifecycle epoch, trigger)."""
    digest = hashlib.sha256(f"{action}|{adapter_id}|{cluster_id}|{epoch}|{trigger}".encode()).hexdigest()
    return f"{action}-{digest[:24]}"


def evaluate_shadow(ev: ShadowEvidence, t: PromotionThresholds) -> tuple[bool, list[str]]:
    """(passes, the failed criteria as readable strings; empty when it passes)."""
    failed: list[str] = []
    if ev.calls < t.min_shadow_calls:
        failed.append(f"calls {ev.calls} < {t.min_shadow_calls}")
    if not ev.format_compliance >= t.min_format_compliance:
        failed.append(f"format_compliance {ev.format_compliance:.3f} < {t.min_format_compliance}")
    if not ev.success_parity >= t.min_success_parity:
        failed.append(f"success_parity {ev.success_parity:.3f} < {t.min_success_parity}")
    if not ev.latency_increase <= t.max_latency_increase:
        failed.append(f"latency_increase {ev.latency_increase:+.3f} > +{t.max_latency_increase}")
    if not ev.cost_reduction >= t.min_cost_reduction:
        failed.append(f"cost_reduction {ev.cost_reduction:.3f} < {t.min_cost_reduction}")
    if not ev.escalation_rate < t.max_escalation_rate:
        failed.append(f"escalation_rate {ev.escalation_rate:.3f} >= {t.max_escalation_rate}")
    if ev.safety_incidents:
        failed.append(f"safety_incidents {ev.safety_incidents} > 0")
    return (not failed), failed


def is_fatal_drift(event: Mapping[str, Any], t: PromotionThresholds) -> bool:
    """Fatal when the detector says so, or when the cluster's success rate fell off a cliff."""
    if str(event.get("severity", "warning")) in t.fatal_drift_severities:
        return True
    if event.get("metric") == "success_rate":
        return float(event.get("before", 0.0)) - float(event.get("after", 0.0)) >= t.fatal_success_rate_drop
    return False


@dataclass(frozen=True)
class AdapterState:
    """What the policy needs to know about an adapter's place in its cluster."""

    adapter_id: str
    cluster_id: int
    state: str                 # shadow | active
    epoch: str                 # command id that put it in this state
    rollback_to: str | None    # where a demotion would send the cluster (active adapters only)


class PromotionPolicy:
    """Per-adapter estimators and the thresholds. The caller tells it which adapters are in
    shadow or active (track/untrack, from the applied promote commands) and feeds observations;
    each learn_* returns the decisions to publish (at most one per adapter epoch and trigger)."""

    def __init__(self, thresholds: PromotionThresholds | None = None):
        self.t = thresholds or PromotionThresholds()
        self._states: dict[str, AdapterState] = {}
        self._scoreboards: dict[str, ShadowScoreboard] = {}
        self._monitors: dict[str, ServedFormatMonitor] = {}
        self._decided: set[str] = set()   # decision ids already returned

    # -- lifecycle, mirrored from the applied promote commands ---------------------------
    def track(self, state: AdapterState) -> None:
        old = self._states.get(state.adapter_id)
        self._states[state.adapter_id] = state
        if old is None or old.epoch != state.epoch:
            # a new epoch starts with fresh evidence
            self._scoreboards.pop(state.adapter_id, None)
            self._monitors.pop(state.adapter_id, None)

    def untrack(self, adapter_id: str) -> None:
        self._states.pop(adapter_id, None)
        self._scoreboards.pop(adapter_id, None)
        self._monitors.pop(adapter_id, None)

    def state(self, adapter_id: str) -> AdapterState | None:
        return self._states.get(adapter_id)

    def scoreboard(self, adapter_id: str) -> ShadowScoreboard:
        board = self._scoreboards.get(adapter_id)
        if board is None:
            board = self._scoreboards[adapter_id] = ShadowScoreboard(self.t.evaluation_window, self.t.equivalent_f1)
        return board

    def monitor(self, adapter_id: str) -> ServedFormatMonitor:
        mon = self._monitors.get(adapter_id)
        if mon is None:
            mon = self._monitors[adapter_id] = ServedFormatMonitor(self.t.demote_window)
        return mon

    # -- observations ---------------------------------------------------------------------
    def learn_shadow(self, result: Mapping[str, Any]) -> list[Decision]:
        """One shadow.results record. May promote the adapter, or demote it on a safety incident."""
        st = self._states.get(result["adapter_id"])
        if st is None or st.state != "shadow" or st.cluster_id != int(result["cluster_id"]):
            return []
        board = self.scoreboard(st.adapter_id).learn_one(result)
        ev = board.evidence()
        if result.get("safety_incident"):
            return self._emit(Decision(
                command_id=decision_id(DEMOTE, st.adapter_id, st.cluster_id, st.epoch, "safety_incident"),
                action=DEMOTE, adapter_id=st.adapter_id, cluster_id=st.cluster_id,
                reason=f"safety_incident: shadow answer to event {result.get('event_id')} was flagged unsafe",
                evidence=ev.as_map(), rollback_to=None, trigger="safety_incident",
                what_to_do="The shadow adapter was withdrawn before serving anyone. Inspect the flagged answer "
                           "(shadow_results where safety_incident), fix the training data of the cluster, retrain.",
            ))
        passes, _ = evaluate_shadow(ev, self.t)
        if not passes:
            return []
        return self._emit(Decision(
            command_id=decision_id(PROMOTE, st.adapter_id, st.cluster_id, st.epoch, "shadow_gate"),
            action=PROMOTE, adapter_id=st.adapter_id, cluster_id=st.cluster_id,
            reason=(f"shadow_gate: {ev.calls} shadow calls, format {ev.format_compliance:.1%}, parity "
                    f"{ev.success_parity:.1%}, latency {ev.latency_increase:+.1%}, cost {-ev.cost_reduction:+.1%}, "
                    f"escalations {ev.escalation_rate:.1%}"),
            evidence=ev.as_map(), trigger="shadow_gate",
        ))

    def learn_served(self, adapter_id: str, format_valid: bool, safety_incident: bool = False,
                     detail: str = "") -> list[Decision]:
        """One answer an active adapter served. May demote it (format errors, safety)."""
        st = self._states.get(adapter_id)
        if st is None or st.state != "active":
            return []
        mon = self.monitor(adapter_id).learn_one(format_valid)
        evidence = {"window": float(mon.window), "format_errors": float(mon.errors),
                    "format_error_rate": mon.error_rate, "served_calls": float(mon.calls),
                    "threshold": self.t.demote_format_error_rate}
        target = st.rollback_to or "the upstream LLM"
        if safety_incident:
            return self._emit(Decision(
                command_id=decision_id(ROLLBACK, adapter_id, st.cluster_id, st.epoch, "safety_incident"),
                action=ROLLBACK, adapter_id=adapter_id, cluster_id=st.cluster_id,
                reason=f"safety_incident: {detail or 'a served answer was flagged unsafe'}",
                evidence={**evidence, "safety_incidents": 1.0}, rollback_to=st.rollback_to, trigger="safety_incident",
                what_to_do=(f"Traffic went back to {target}. Review the flagged answer and the adapter's training "
                            "data (promotion_audit_log -> training_runs -> dataset); do not re-promote before a retrain."),
            ))
        if mon.error_rate > self.t.demote_format_error_rate:
            return self._emit(Decision(
                command_id=decision_id(ROLLBACK, adapter_id, st.cluster_id, st.epoch, "format_errors"),
                action=ROLLBACK, adapter_id=adapter_id, cluster_id=st.cluster_id,
                reason=(f"format_errors: {mon.errors} malformed answers in the last {mon.window} served calls "
                        f"({mon.error_rate:.1%} > {self.t.demote_format_error_rate:.0%})"),
                evidence=evidence, rollback_to=st.rollback_to, trigger="format_errors",
                what_to_do=(f"Traffic went back to {target}. Compare the adapter's recent answers with its shadow "
                            "evidence (shadow_results) and check for prompt-format drift in the cluster; retrain "
                            "on fresh data, it will be shadow-tested again before serving."),
            ))
        return []

    def learn_drift(self, event: Mapping[str, Any]) -> list[Decision]:
        """A drift event. Fatal drift hands the cluster back to the upstream LLM and resets the
        shadow evidence of its candidates (it was gathered on traffic that no longer exists)."""
        if not is_fatal_drift(event, self.t):
            return []
        cluster = int(event["cluster_id"])
        out: list[Decision] = []
        for st in list(self._states.values()):
            if st.cluster_id != cluster:
                continue
            if st.state == "shadow":
                self._scoreboards.pop(st.adapter_id, None)
                continue
            out += self._emit(Decision(
                command_id=decision_id(ROLLBACK, st.adapter_id, cluster, st.epoch, f"fatal_drift:{event.get('drift_id', '')}"),
                action=ROLLBACK, adapter_id=st.adapter_id, cluster_id=cluster,
                reason=(f"fatal_drift: {event.get('metric')} moved from {float(event.get('before', 0)):.4g} to "
                        f"{float(event.get('after', 0)):.4g} ({event.get('severity', 'warning')})"),
                evidence={"before": float(event.get("before", 0.0)), "after": float(event.get("after", 0.0))},
                rollback_to=None, trigger="fatal_drift",
                what_to_do=("The cluster's traffic changed beyond what the specialist was trained on; the upstream "
                            "LLM serves it now. Check the drift evidence (drift_events), let the decision agent "
                            "retrain on post-drift data, and shadow-test the new adapter."),
            ))
        return out

    def _emit(self, decision: Decision) -> list[Decision]:
        if decision.command_id in self._decided:
            return []
        self._decided.add(decision.command_id)
        return [decision]
