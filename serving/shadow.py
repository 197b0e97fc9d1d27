"""Shadow evaluation: adapters in `shadow` state answer a sample of their cluster's live
requests silently, after the primary has answered, and the two answers are compared
(schemas/scoring.py) with latency and cost deltas. Results go to `shadow.results`.

Off the critical path: the request handler only calls ShadowRunner.offer(), which samples and
schedules background tasks; a bounded number run at once and the rest are dropped (counted),
never queued behind live traffic.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from schemas import scoring
from serving.quality import safety_flags
from serving.upstream import Answer

log = logging.getLogger(__name__)

GenerateFn = Callable[[str, str, int], Awaitable[Answer]]          # (adapter_id, prompt, max_tokens)
PublishFn = Callable[[str, str, dict[str, Any]], Awaitable[None]]  # (topic, key, record)
PriceFn = Callable[[Answer], float]


def sampled(event_id: str, adapter_id: str, rate: float) -> bool:
    """Deterministic sampling: the same request is shadowed (or not) on every replay."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    h = int.from_bytes(hashlib.sha256(f"shadow|{adapter_id}|{event_id}".encode()).digest()[:8], "big")
    return h / 2**64 < rate


def compare(prompt: str, shadow_text: str, primary_text: str) -> dict[str, Any]:
    """The comparison fields of a ShadowResult. The primary's answer is the reference."""
    fmt = scoring.format_valid(shadow_text, primary_text)
    tools = scoring.tool_call_valid(shadow_text, primary_text)
    tools_ok = True if tools is None else bool(tools)   # not a tool-call task: the check does not apply
    flags = safety_flags(prompt, shadow_text)
    return {
        "exact_match": scoring.exact_match(shadow_text, primary_text),
        "field_f1": float(scoring.field_f1(shadow_text, primary_text)),
        "format_valid": bool(fmt),
        "tool_calls_valid": tools_ok,
        # what serving's escalation rule would have done with this answer, had it served it
        "escalated": not (fmt and tools_ok) or bool(flags),
        "safety_incident": bool(flags),
        "safety_flags": flags,
    }


def result_id(event_id: str, adapter_id: str) -> str:
    return "shadow-" + hashlib.sha256(f"{event_id}|{adapter_id}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ShadowJob:
    event_id: str
    adapter_id: str
    cluster_id: int
    prompt: str
    max_tokens: int
    primary: Answer
    primary_text: str
    primary_cost_usd: float


def service_ms(answer: Answer) -> float:
    """The specialist's own answering time. A shadow call waits behind live requests and other
    shadows (it runs at the lowest priority, on purpose); that wait says nothing about the
    latency the specialist would give the cluster's requests once it serves them."""
    if answer.gpu_seconds is not None:
        return float(answer.gpu_seconds) * 1000.0
    return float(answer.latency_ms)


def shadow_record(job: ShadowJob, shadow: Answer, shadow_text: str, shadow_cost_usd: float, ts_ms: int) -> dict[str, Any]:
    cmp = compare(job.prompt, shadow_text, job.primary_text)
    return {
        "result_id": result_id(job.event_id, job.adapter_id), "ts": ts_ms, "event_id": job.event_id,
        "adapter_id": job.adapter_id, "cluster_id": job.cluster_id, "primary_model": job.primary.model,
        "exact_match": cmp["exact_match"], "field_f1": cmp["field_f1"], "format_valid": cmp["format_valid"],
        "tool_calls_valid": cmp["tool_calls_valid"], "escalated": cmp["escalated"],
        "safety_incident": cmp["safety_incident"],
        "primary_latency_ms": float(job.primary.latency_ms), "shadow_latency_ms": service_ms(shadow),
        "primary_cost_usd": float(job.primary_cost_usd), "shadow_cost_usd": float(shadow_cost_usd),
    }


class ShadowRunner:
    def __init__(self, generate: GenerateFn, publish: PublishFn, price: PriceFn, *, sample_rate: float,
                 topic: str = "shadow.results", max_in_flight: int = 2,
                 corrupt: Callable[[str, str, str], tuple[str, bool]] | None = None,
                 on_result: Callable[[dict[str, Any]], None] | None = None,
                 on_drop: Callable[[], None] | None = None):
        self.generate, self.publish, self.price = generate, publish, price
        self.sample_rate = sample_rate
        self.topic = topic
        self.max_in_flight = max_in_flight
        self.corrupt = corrupt
        self.on_result, self.on_drop = on_result, on_drop
        self._tasks: set[asyncio.Task] = set()
        self.completed = 0
        self.dropped = 0
        self.failed = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def offer(self, *, event_id: str, cluster_id: int | None, adapters: list[str], prompt: str, max_tokens: int,
              primary: Answer, primary_text: str, primary_cost_usd: float) -> int:
        """Schedule the sampled shadow calls of one answered request; returns how many started."""
        if cluster_id is None or not adapters:
            return 0
        started = 0
        for adapter_id in adapters:
            if not sampled(event_id, adapter_id, self.sample_rate):
                continue
            if len(self._tasks) >= self.max_in_flight:
                self.dropped += 1
                if self.on_drop:
                    self.on_drop()
                continue
            job = ShadowJob(event_id, adapter_id, cluster_id, prompt, max_tokens, primary, primary_text, primary_cost_usd)
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _run(self, job: ShadowJob) -> None:
        try:
            answer = await self.generate(job.adapter_id, job.prompt, job.max_tokens)
            text = answer.content
            if self.corrupt is not None:
                text, _ = self.corrupt(job.adapter_id, job.event_id, text)
            record = shadow_record(job, answer, text, self.price(answer), int(time.time() * 1000))
            await self.publish(self.topic, job.adapter_id, record)
            self.completed += 1
            if self.on_result:
                self.on_result(record)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed += 1
            log.exception("shadow call of %s on event %s failed", job.adapter_id, job.event_id)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the shadow calls in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.drain(timeout=5)
