"""`distillery serve`: the OpenAI-compatible serving tier.

    POST /v1/chat/completions   (stream or not)      GET /v1/models
    GET  /healthz                                     GET /metrics (Prometheus text)
    GET  /admin/state           adapters, clusters and shadow counters of this replica
    POST /admin/faults          DEMO/TEST ONLY, when DISTILLERY_SERVE_FAULTS is set
    POST /admin/incidents       report a safety incident on an adapter (demotes it)

Per request: assign the task cluster (newest clusters.snapshot), ask the router, answer with
the cluster's active specialist (peft adapter on the base; GPU-seconds on the event) or the
upstream LLM, escalate a malformed specialist answer to the next model in the chain, publish
the InferenceEvent(s) to `ask`, return the routing decision in `x-distillery-route`, and hand
the request to shadow adapters of the cluster off the critical path.

The replica applies every `promote` command (idempotent by command id), reads
`shadow.results` and `drift`, and publishes the policy's decisions as `promote` commands and
`demotion` events.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from distillery.settings import Settings, Topics
from serving import openai_api
from serving.adapters import (PRIORITY_LIVE, PRIORITY_SHADOW, AdapterRefused, AdapterRegistry, AdapterUnavailable,
                              model_name)
from serving.assignments import Change, ClusterAssignments
from serving.clusters import ClusterAssigner
from serving.metrics import CONTENT_TYPE, ServingMetrics
from serving.promotion import DEMOTE, AdapterState, Decision, PromotionPolicy, PromotionThresholds, decision_id
from serving.quality import AnswerForm, FaultInjector, answer_text, safety_flags, served_format_valid
from serving.routing import ModelStats, RouteDecision, RouteRequest, default_router, route
from serving.shadow import ShadowRunner
from serving.upstream import Answer, Upstream, UpstreamError
from streams.redaction import Redactor, restore

log = logging.getLogger(__name__)

ROUTE_HEADER = "x-distillery-route"
SERVICE_KEY: "web.AppKey[ServingService]" = web.AppKey("service")
SPECIALIST_PREFIX = "distillery/"


def _setting(settings: Settings, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


def _finite(evidence: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in evidence.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class RequestContext:
    event_id: str
    tenant: str
    service: str
    task_hint: str | None
    tenant_tier: str
    safety_level: str
    latency_budget_ms: float | None
    max_cost_usd: float | None
    expects_json: bool


class ServingService:
    """Everything a replica does, independent of the HTTP layer (tests drive it directly too)."""

    def __init__(self, settings: Settings, bus: Any, *, registry: AdapterRegistry | None = None,
                 upstream: Upstream | None = None, assigner: ClusterAssigner | None = None,
                 router: Callable[[RouteRequest], Any] | None = None, upstream_model: str | None = None,
                 replica_id: str | None = None):
        from streams.pricing import PriceTable

        self.settings = settings
        self.bus = bus
        self._redactor = Redactor(ner=_setting(settings, "redaction_ner", True), mode=_setting(settings, "redaction_mode", "placeholder"))
        self._masks: dict[str, tuple[str, dict[str, str]]] = {}   # prompt -> masked(prompt), a small FIFO
        self._masks_lock = threading.Lock()
        self.registry = registry
        self.upstream = upstream
        self.upstream_model = upstream_model or _setting(settings, "upstream_model", "gpt-4o")
        self.assigner = assigner or ClusterAssigner()
        self.router = router or default_router(_setting(settings, "router_quality_sla", None))
        self.served: dict[str, tuple[int, int]] = {}                 # adapter -> (answers, not escalated)
        self.promotion_evidence: dict[str, dict[str, float]] = {}   # adapter -> evidence of its promote command
        self.replica_id = replica_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.metrics = ServingMetrics()
        self.assignments = ClusterAssignments()
        self.policy = PromotionPolicy(PromotionThresholds.parse(_setting(settings, "promotion_thresholds", None)))
        self.faults = FaultInjector.parse(_setting(settings, "serve_faults", None))
        self.max_new_tokens = int(_setting(settings, "serve_max_new_tokens", 128))
        self.prices = PriceTable.load(settings.price_table)
        self.stats = ModelStats()
        self.forms: dict[int, AnswerForm] = {}
        self.shadow = ShadowRunner(
            self._shadow_generate, self.bus.publish, self.price, sample_rate=settings.shadow_sample_rate,
            topic=Topics.SHADOW_RESULTS, max_in_flight=int(_setting(settings, "shadow_max_in_flight", 2)),
            corrupt=self.faults.apply if self.faults.enabled else None,
            on_result=lambda r: self.metrics.shadow_calls.inc(adapter=r["adapter_id"], outcome="ok" if r["format_valid"] else "format_error"),
            on_drop=lambda: self.metrics.shadow_dropped.inc(),
        )
        self._background: set[asyncio.Task] = set()
        # cluster assignment featurises the prompt (MiniLM on CPU): off the event loop
        self._cluster_pool = ThreadPoolExecutor(1, thread_name_prefix="distillery-cluster")
        self.started = False
        self.refusals: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.registry is not None:
            await self.registry.start()
        self.bus.subscribe(Topics.CLUSTER_SNAPSHOT, self.on_snapshot, from_beginning=True)
        self.bus.subscribe(Topics.PROMOTE, self.on_promote, from_beginning=True)
        self.bus.subscribe(Topics.SHADOW_RESULTS, self.on_shadow_result, from_beginning=False)
        self.bus.subscribe(Topics.DRIFT, self.on_drift, from_beginning=False)
        await self.bus.start()
        self.started = True

    async def stop(self) -> None:
        await self.shadow.close()
        for t in list(self._background):
            try:
                await asyncio.wait_for(t, timeout=10)
            except (asyncio.TimeoutError, Exception):
                pass
        await self.bus.stop()
        if self.upstream is not None:
            await self.upstream.close()
        if self.registry is not None:
            self.registry.stop()
        self._cluster_pool.shutdown(wait=False)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def settle(self) -> None:
        """Wait for shadow calls and background publications (tests and benchmarks)."""
        while self._background or self.shadow.in_flight:
            await self.shadow.drain()
            if self._background:
                await asyncio.wait(list(self._background))

    def masked(self, prompt: str) -> tuple[str, dict[str, str]]:
        """The prompt as the pipeline stores it (redacted, with the same rules as the worker),
        and replacement -> original. Clusters were learnt, and specialists trained, on redacted
        traffic: both see a request in that form, and a specialist's answer gets the caller's
        values back (streams.redaction.restore)."""
        with self._masks_lock:   # the cluster thread and the event loop both ask
            hit = self._masks.get(prompt)
        if hit is None:
            hit = self._redactor.pseudonymise(prompt)
            with self._masks_lock:
                if len(self._masks) >= 1024:
                    self._masks.pop(next(iter(self._masks)))
                self._masks[prompt] = hit
        return hit

    async def assign_cluster(self, prompt: str) -> int | None:
        if not self.assigner.ready:
            return None
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._cluster_pool, lambda: self.assigner.assign(self.masked(prompt)[0]))
        except Exception:   # a broken snapshot must not fail requests: unclustered goes to the LLM
            log.exception("cluster assignment failed")
            return None

    # ------------------------------------------------------------------ pricing
    def price(self, answer: Answer) -> float:
        cost, _ = self.prices.cost(answer.model, answer.prompt_tokens, answer.completion_tokens,
                                   answer.latency_ms, answer.gpu_seconds, None)
        return cost

    # ------------------------------------------------------------------ topic handlers
    async def on_snapshot(self, record: dict[str, Any]) -> None:
        if self.assigner.update(record):
            self.metrics.snapshot_version.set(self.assigner.version)

    async def on_promote(self, cmd: dict[str, Any]) -> None:
        try:
            change = self.assignments.apply(cmd)
        except (KeyError, ValueError) as exc:
            log.warning("promote command %s ignored: %s", cmd.get("command_id"), exc)
            self.metrics.commands.inc(action=str(cmd.get("action")), result="invalid")
            return
        if change.duplicate:
            self.metrics.commands.inc(action=change.action, result="duplicate")
            return
        if change.action == "promote":
            self.promotion_evidence[change.adapter_id] = dict(cmd.get("evidence") or {})
            self.served.pop(change.adapter_id, None)   # a new term of office starts a new record
        self._sync_policy(change.cluster_id)
        if change.adapter_id not in self.assignments.adapters or self.assignments.adapters[change.adapter_id].state == "demoted":
            self.policy.untrack(change.adapter_id)
        await self._apply_loads(change)
        self.metrics.commands.inc(action=change.action, result="applied")
        log.info("applied %s %s on cluster %s (%s): now serving %s", change.action, change.adapter_id,
                 change.cluster_id, change.command_id, change.now_serving or self.upstream_model)

    def _sync_policy(self, cluster_id: int) -> None:
        slot = self.assignments.clusters.get(cluster_id)
        if not slot:
            return
        for adapter_id in slot.shadows:
            rec = self.assignments.adapters[adapter_id]
            self.policy.track(AdapterState(adapter_id, cluster_id, "shadow", rec.epoch, None))
        if slot.active:
            rec = self.assignments.adapters[slot.active]
            self.policy.track(AdapterState(slot.active, cluster_id, "active", rec.epoch,
                                           self.assignments.rollback_target(cluster_id, excluding=slot.active)))
        for adapter_id in slot.previous:
            self.policy.untrack(adapter_id)

    async def _apply_loads(self, change: Change) -> None:
        if self.registry is None:
            return
        for adapter_id in change.unload:
            await self.registry.unload(adapter_id)
        for adapter_id in change.load:
            await self._load(adapter_id, change.cluster_id)
        self.metrics.loaded_adapters.set(len(self.registry.loaded))

    async def _load(self, adapter_id: str, cluster_id: int) -> bool:
        assert self.registry is not None
        uri = self.assignments.manifest_uri(adapter_id)
        if not uri:
            await self._refuse(adapter_id, cluster_id, AdapterRefused(adapter_id, "the command carries no manifest_uri", "missing"))
            return False
        t0 = time.perf_counter()
        try:
            result = await self.registry.load(adapter_id, uri)
        except AdapterRefused as exc:
            self.metrics.adapter_loads.inc(result="refused")
            await self._refuse(adapter_id, cluster_id, exc)
            return False
        except Exception as exc:   # unreadable weights, out of memory: refuse rather than crash the replica
            log.exception("loading adapter %s failed", adapter_id)
            self.metrics.adapter_loads.inc(result="error")
            await self._refuse(adapter_id, cluster_id, AdapterRefused(adapter_id, f"load failed: {exc}", "load_error"))
            return False
        if not result.already_loaded:
            self.metrics.adapter_loads.inc(result="loaded")
            self.metrics.adapter_load_seconds.observe(time.perf_counter() - t0)
        self.metrics.loaded_adapters.set(len(self.registry.loaded))
        return True

    async def _refuse(self, adapter_id: str, cluster_id: int, exc: AdapterRefused) -> None:
        """A refused adapter is demoted for everyone: a command plus an event for on-call."""
        rec = self.assignments.adapters.get(adapter_id)
        if rec is None or rec.state == "demoted":
            return
        was_active = self.assignments.active(cluster_id) == adapter_id
        target = self.assignments.rollback_target(cluster_id, excluding=adapter_id) if was_active else None
        security = exc.kind in ("signature", "integrity", "mismatch")
        decision = Decision(
            command_id=decision_id(DEMOTE, adapter_id, cluster_id, rec.epoch, f"refused:{exc.kind}"),
            action=DEMOTE, adapter_id=adapter_id, cluster_id=cluster_id,
            reason=f"refused_{exc.kind}: {exc.reason}", evidence={"refused": 1.0}, rollback_to=target, trigger=f"refused_{exc.kind}",
            what_to_do=(("Treat as a security incident: the adapter's files or manifest no longer match the trainer's "
                         "signature. Check who wrote to the artifact store, keep the files for forensics, retrain or "
                         "re-sign from a trusted run; never re-promote these files.") if security else
                        ("The adapter could not be loaded on this replica (missing files, another base model, out of "
                         "memory). Check the artifact store and DISTILLERY_BASE_MODEL; re-issue the command once fixed.")),
        )
        self.refusals.append({"adapter_id": adapter_id, "kind": exc.kind, "reason": exc.reason})
        await self.publish_decision(decision, actor=f"serving:{self.replica_id}")

    async def on_shadow_result(self, record: dict[str, Any]) -> None:
        for decision in self.policy.learn_shadow(record):
            await self.publish_decision(decision)

    async def on_drift(self, event: dict[str, Any]) -> None:
        for decision in self.policy.learn_drift(event):
            await self.publish_decision(decision)

    # ------------------------------------------------------------------ decisions out
    def command_for(self, d: Decision, actor: str = "policy") -> dict[str, Any]:
        return {"command_id": d.command_id, "ts": _now_ms(), "adapter_id": d.adapter_id, "cluster_id": int(d.cluster_id),
                "action": d.action, "reason": d.reason, "manifest_uri": self.assignments.manifest_uri(d.adapter_id),
                "rollback_to": d.rollback_to, "evidence": _finite(d.evidence), "actor": actor}

    def demotion_event_for(self, d: Decision) -> dict[str, Any]:
        now_serving = model_name(d.rollback_to) if d.rollback_to else self.upstream_model
        detail = {"trigger": d.trigger, "thresholds": {k: v for k, v in self.policy.t.as_dict().items()
                                                        if k.startswith(("demote", "fatal"))},
                  "replica": self.replica_id}
        return {"demotion_id": "dem-" + d.command_id, "ts": _now_ms(), "adapter_id": d.adapter_id,
                "cluster_id": int(d.cluster_id), "what_happened": d.reason, "evidence": _finite(d.evidence),
                "evidence_detail": json.dumps(detail, sort_keys=True),
                "action_taken": (f"{d.action}: adapter {d.adapter_id} no longer answers cluster {d.cluster_id}; "
                                 f"traffic goes to {now_serving} (command {d.command_id})"),
                "now_serving": now_serving, "what_to_do": d.what_to_do or "See ops/runbooks/demotion.md."}

    async def publish_decision(self, d: Decision, actor: str = "policy") -> None:
        # the event first: on-call learns why before the command changes anything
        if d.is_demotion:
            await self.bus.publish(Topics.DEMOTION, d.adapter_id, self.demotion_event_for(d))
        await self.bus.publish(Topics.PROMOTE, str(d.cluster_id), self.command_for(d, actor))
        await self.bus.flush()
        self.metrics.decisions.inc(action=d.action, trigger=d.trigger)

    # ------------------------------------------------------------------ answering
    def evidence(self, adapter_id: str) -> tuple[float | None, int, str]:
        """(success rate, evaluations, source) of a specialist: its served record on this replica
        once it has one, else the shadow gate's evidence, else the trainer's held-out evaluation."""
        calls, ok = self.served.get(adapter_id, (0, 0))
        if calls >= 50:
            return ok / calls, calls, "served"
        ev = self.promotion_evidence.get(adapter_id)
        if ev and ev.get("calls", 0) > 0 and "success_parity" in ev:
            return float(ev["success_parity"]), int(ev["calls"]), "shadow_gate"
        metrics = (self.registry.manifests.get(adapter_id, {}) if self.registry else {}).get("metrics") or {}
        if "adapter_exact_match" in metrics and metrics.get("eval_examples", 0) > 0:
            return float(metrics["adapter_exact_match"]), int(metrics["eval_examples"]), "held_out_eval"
        if calls:
            return ok / calls, calls, "served"
        return None, 0, "none"

    def candidates(self, cluster_id: int | None):
        from serving.routing import Candidate

        out = []
        active = self.assignments.active(cluster_id)
        if active and self.registry is not None and active not in self.registry.refused:
            name = model_name(active)
            rate, n, source = self.evidence(active)
            price = self.prices.lookup(name)
            out.append(Candidate(name, "specialist", active, self.stats.p95_latency_ms(name), self.stats.cost_range(name),
                                 self.stats.calls(name), cluster_id, rate, n, source, self.stats.mean_cost(name),
                                 gpu_second=getattr(price, "gpu_second", None)))
        if self.upstream is not None:
            name = self.upstream_model
            price = self.prices.lookup(name)
            out.append(Candidate(name, "upstream", None, self.stats.p95_latency_ms(name), self.stats.cost_range(name),
                                 self.stats.calls(name), None, None, 0, "status_quo", self.stats.mean_cost(name),
                                 input_per_1k=getattr(price, "input_per_1k", 0.0) or 0.0,
                                 output_per_1k=getattr(price, "output_per_1k", 0.0) or 0.0))
        return tuple(out)

    def _route(self, req: openai_api.ChatRequest, ctx: RequestContext, cluster_id: int | None) -> RouteDecision:
        features = {"prompt_chars": len(req.prompt), "input_tokens": max(1, len(req.prompt) // 4),
                    "max_tokens": min(req.max_tokens or self.max_new_tokens, self.max_new_tokens),
                    "messages": len(req.messages), "has_tools": bool(req.tools),
                    "stream": req.stream, "expects_json": ctx.expects_json, "task_hint": ctx.task_hint,
                    "requested_model": req.model}
        rr = RouteRequest(features, cluster_id, ctx.latency_budget_ms, ctx.max_cost_usd, ctx.safety_level,
                          ctx.tenant_tier, self.candidates(cluster_id))
        return route(rr, self.router)

    async def _specialist(self, adapter_id: str, cluster_id: int | None, prompt: str, max_tokens: int,
                          priority: int = PRIORITY_LIVE) -> Answer:
        assert self.registry is not None
        if not self.registry.is_loaded(adapter_id):
            # evicted by the LRU cap (or refused): reload, verified again
            if cluster_id is None or not await self._load(adapter_id, cluster_id):
                raise AdapterUnavailable(adapter_id)
        text, originals = self.masked(prompt)
        answer = await self.registry.generate(adapter_id, text, max_tokens, priority)
        return dataclasses.replace(answer, content=restore(answer.content, originals)) if originals else answer

    async def _shadow_generate(self, adapter_id: str, prompt: str, max_tokens: int) -> Answer:
        if self.registry is None:
            raise AdapterUnavailable(adapter_id)
        rec = self.assignments.adapters.get(adapter_id)
        return await self._specialist(adapter_id, rec.cluster_id if rec else None, prompt, max_tokens, PRIORITY_SHADOW)

    def _judge(self, answer: Answer, cluster_id: int | None, prompt: str, ctx: RequestContext) -> tuple[bool, list[str]]:
        from streams.metrics.format_errors import is_format_error

        form = self.forms.get(cluster_id) if cluster_id is not None else None
        text = answer_text(answer.content, answer.tool_calls)
        ok = served_format_valid(text, form.exemplar() if form else None)
        ok = ok and not is_format_error(answer.content, openai_api.tool_calls_json(answer.tool_calls),
                                        {"response_format": "json_object"} if ctx.expects_json else {})
        return ok, safety_flags(prompt, text)

    def event_for(self, ctx: RequestContext, prompt: str, answer: Answer, cluster_id: int | None, *,
                  event_id: str, outcome: str = "unknown", parent: str | None = None,
                  extra_meta: dict[str, str] | None = None) -> dict[str, Any]:
        meta = {"served_by": "specialist" if answer.model.startswith(SPECIALIST_PREFIX) else "upstream",
                "replica": self.replica_id, "snapshot_version": str(self.assigner.version)}
        if cluster_id is not None:
            meta["serve_cluster_id"] = str(cluster_id)
        meta.update(extra_meta or {})
        return {
            "event_id": event_id, "ts": _now_ms(), "tenant": ctx.tenant, "service": ctx.service, "model": answer.model,
            "prompt": prompt, "response": answer.content, "latency_ms": float(answer.latency_ms),
            "input_tokens": int(answer.prompt_tokens), "output_tokens": int(answer.completion_tokens),
            "cost_usd": None, "outcome": outcome, "tool_calls": openai_api.tool_calls_json(answer.tool_calls),
            "task_hint": ctx.task_hint, "metadata": meta, "gpu_seconds": answer.gpu_seconds, "parent_event_id": parent,
        }

    async def _publish_event(self, event: dict[str, Any]) -> None:
        try:
            await self.bus.publish(Topics.ASK, event["tenant"], event)
        except Exception:
            self.metrics.publish_errors.inc(topic=Topics.ASK)
            log.exception("could not publish event %s", event["event_id"])

    def _observe_served(self, adapter_id: str, ok: bool, flags: list[str]) -> None:
        calls, good = self.served.get(adapter_id, (0, 0))
        self.served[adapter_id] = (calls + 1, good + int(ok and not flags))
        if not ok:
            self.metrics.format_errors.inc(adapter=adapter_id)
        decisions = self.policy.learn_served(adapter_id, ok, bool(flags),
                                             detail=f"answer holds {', '.join(flags)} absent from the prompt" if flags else "")
        for d in decisions:
            self._spawn(self.publish_decision(d))

    async def answer(self, req: openai_api.ChatRequest, ctx: RequestContext) -> tuple[Answer, RouteDecision, dict[str, Any]]:
        """Non-streaming path (also used by streaming requests that a specialist answers)."""
        t0 = time.perf_counter()
        prompt = req.prompt
        cluster_id = await self.assign_cluster(prompt)
        decision = self._route(req, ctx, cluster_id)
        self.metrics.route_overhead.observe(time.perf_counter() - t0)
        info: dict[str, Any] = {"cluster_id": cluster_id, "event_id": ctx.event_id, "escalated": False,
                                "snapshot_version": self.assigner.version}
        max_tokens = min(req.max_tokens or self.max_new_tokens, self.max_new_tokens)
        chain = [decision.primary_model, *decision.escalation_chain]
        if self.upstream is not None and self.upstream_model not in chain:
            # the last resort for a malformed specialist answer, whatever the router expects
            chain.append(self.upstream_model)
        info["effective_chain"] = chain[1:]
        parent: str | None = None
        last_error: Exception | None = None
        for hop, model in enumerate(chain):
            event_id = ctx.event_id if hop == 0 else f"{ctx.event_id}-esc{hop}"
            if model.startswith(SPECIALIST_PREFIX):
                adapter_id = model[len(SPECIALIST_PREFIX):]
                try:
                    answer = await self._specialist(adapter_id, cluster_id, prompt, max_tokens)
                except AdapterUnavailable as exc:
                    last_error = exc
                    continue
                if self.faults.enabled:
                    content, _ = self.faults.apply(adapter_id, ctx.event_id, answer.content)
                    answer = Answer(content, answer.model, answer.prompt_tokens, answer.completion_tokens,
                                    answer.latency_ms, None, answer.gpu_seconds, answer.finish_reason)
                ok, flags = self._judge(answer, cluster_id, prompt, ctx)
                self._observe_served(adapter_id, ok, flags)
                self.stats.learn_one(answer.model, answer.latency_ms, self.price(answer))
                last_hop = hop == len(chain) - 1
                if (ok and not flags) or last_hop:
                    await self._publish_event(self.event_for(ctx, prompt, answer, cluster_id, event_id=event_id, parent=parent))
                    info["served_event_id"] = event_id
                    return answer, decision, info
                # escalate: the malformed or unsafe answer is logged, never returned
                await self._publish_event(self.event_for(ctx, prompt, answer, cluster_id, event_id=event_id, parent=parent,
                                                         outcome="escalated",
                                                         extra_meta={"escalation_reason": "unsafe" if flags else "format_error"}))
                self.metrics.escalations.inc(adapter=adapter_id)
                info["escalated"] = True
                parent = event_id
                continue
            if self.upstream is None:
                last_error = LookupError("no upstream LLM configured (DISTILLERY_UPSTREAM_URL)")
                continue
            answer = await self.upstream.complete(req.raw, self.upstream_model_for(req))
            self._after_upstream(req, ctx, cluster_id, answer, event_id)
            await self._publish_event(self.event_for(ctx, prompt, answer, cluster_id, event_id=event_id, parent=parent))
            info["served_event_id"] = event_id
            return answer, decision, info
        raise last_error or LookupError("no model in the escalation chain could answer")

    def _after_upstream(self, req: openai_api.ChatRequest, ctx: RequestContext, cluster_id: int | None,
                        answer: Answer, event_id: str) -> None:
        """Learn from a frontier answer and hand the request to the cluster's shadows."""
        cost = self.price(answer)
        self.stats.learn_one(answer.model, answer.latency_ms, cost)
        text = answer_text(answer.content, answer.tool_calls)
        if cluster_id is None:
            return
        self.forms.setdefault(cluster_id, AnswerForm()).learn_one(text)
        shadows = [a for a in self.assignments.shadows(cluster_id) if self.registry is not None and a not in self.registry.refused]
        if shadows:
            self.shadow.offer(event_id=event_id, cluster_id=cluster_id, adapters=shadows, prompt=req.prompt,
                              max_tokens=min(req.max_tokens or self.max_new_tokens, self.max_new_tokens),
                              primary=answer, primary_text=text, primary_cost_usd=cost)

    async def stream_upstream(self, req: openai_api.ChatRequest, ctx: RequestContext, decision: RouteDecision,
                              cluster_id: int | None, write) -> Answer:
        """Relay the upstream's SSE stream to the client, then account for it like any answer."""
        assert self.upstream is not None
        t0 = time.perf_counter()
        acc = openai_api.StreamAccumulator()
        async for piece in self.upstream.stream(req.raw, acc, self.upstream_model_for(req)):
            await write(piece)
        usage = acc.usage or {}
        answer = Answer(acc.text, acc.model or self.upstream_model, int(usage.get("prompt_tokens") or 0),
                        int(usage.get("completion_tokens") or 0), (time.perf_counter() - t0) * 1000.0, acc.calls,
                        None, acc.finish_reason or "stop")
        self._after_upstream(req, ctx, cluster_id, answer, ctx.event_id)
        await self._publish_event(self.event_for(ctx, req.prompt, answer, cluster_id, event_id=ctx.event_id))
        return answer

    def upstream_model_for(self, req: openai_api.ChatRequest) -> str:
        """The client's model when it names an upstream one, else the configured upstream model."""
        asked = (req.model or "").strip()
        if not asked or asked in ("auto", "distillery") or asked.startswith(SPECIALIST_PREFIX):
            return self.upstream_model
        return asked

    def report_incident(self, adapter_id: str, detail: str) -> list[Decision]:
        st = self.policy.state(adapter_id)
        if st is None:
            return []
        if st.state == "active":
            return self.policy.learn_served(adapter_id, True, True, detail=detail)
        return self.policy.learn_shadow({"adapter_id": adapter_id, "cluster_id": st.cluster_id, "event_id": "operator",
                                         "exact_match": False, "field_f1": 0.0, "format_valid": True,
                                         "tool_calls_valid": True, "escalated": False, "safety_incident": True,
                                         "primary_latency_ms": 0.0, "shadow_latency_ms": 0.0,
                                         "primary_cost_usd": 0.0, "shadow_cost_usd": 0.0})


# ---------------------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------------------
def _context(request: web.Request, req: openai_api.ChatRequest) -> RequestContext:
    h, meta = request.headers, req.metadata

    def pick(name: str, default: str | None = None) -> str | None:
        return h.get(f"x-distillery-{name.replace('_', '-')}") or meta.get(name) or default

    def number(name: str) -> float | None:
        raw = pick(name)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            raise openai_api.BadRequest(f"{name} must be a number, got {raw!r}") from None

    fmt = (req.raw.get("response_format") or {}).get("type") if isinstance(req.raw.get("response_format"), dict) else None
    return RequestContext(
        event_id=h.get("x-distillery-event-id") or uuid.uuid4().hex,
        tenant=pick("tenant", req.user or "default") or "default",
        service=pick("service", "distillery-serve") or "distillery-serve",
        task_hint=pick("task_hint"),
        tenant_tier=pick("tenant_tier", "standard") or "standard",
        safety_level=pick("safety_level", "standard") or "standard",
        latency_budget_ms=number("latency_budget_ms"),
        max_cost_usd=number("max_cost_usd"),
        expects_json=fmt in ("json_object", "json_schema"),
    )


def _route_header(decision: RouteDecision, info: dict[str, Any], served_by: str) -> str:
    return json.dumps(decision.header(served_by=served_by, **info), separators=(",", ":"), default=str)


def build_app(service: ServingService) -> web.Application:
    app = web.Application(client_max_size=int(service.settings.max_prompt_bytes) * 4 + 65536)
    app[SERVICE_KEY] = service
    m = service.metrics

    async def on_startup(_: web.Application) -> None:
        if not service.started:
            await service.start()

    async def on_cleanup(_: web.Application) -> None:
        await service.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)

    async def chat(request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(openai_api.error_body("the body is not JSON"), status=400)
        try:
            req = openai_api.parse_chat_request(body)
            ctx = _context(request, req)
        except openai_api.BadRequest as exc:
            m.requests.inc(route="none", status="400")
            return web.json_response(openai_api.error_body(str(exc)), status=400)
        try:
            if req.stream:
                return await _chat_stream(request, req, ctx, t0)
            answer, decision, info = await service.answer(req, ctx)
        except UpstreamError as exc:
            m.requests.inc(route="upstream", status="502")
            return web.json_response(openai_api.error_body(str(exc), "upstream_error"), status=502)
        except (LookupError, AdapterUnavailable) as exc:
            m.requests.inc(route="none", status="503")
            return web.json_response(openai_api.error_body(str(exc), "unavailable"), status=503)
        served_by = "specialist" if answer.model.startswith(SPECIALIST_PREFIX) else "upstream"
        m.requests.inc(route=served_by, status="200")
        m.latency.observe(time.perf_counter() - t0, route=served_by)
        body = openai_api.completion(f"chatcmpl-{ctx.event_id}", answer.model, answer.content, answer.prompt_tokens,
                                     answer.completion_tokens, answer.tool_calls, finish_reason=answer.finish_reason)
        return web.json_response(body, headers={ROUTE_HEADER: _route_header(decision, info, served_by)})

    async def _chat_stream(request: web.Request, req: openai_api.ChatRequest, ctx: RequestContext, t0: float) -> web.StreamResponse:
        prompt = req.prompt
        cluster_id = await service.assign_cluster(prompt)
        decision = service._route(req, ctx, cluster_id)
        m.route_overhead.observe(time.perf_counter() - t0)
        info = {"cluster_id": cluster_id, "event_id": ctx.event_id, "snapshot_version": service.assigner.version}
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if decision.primary_model.startswith(SPECIALIST_PREFIX) or service.upstream is None:
            # a specialist answers whole (it is fast, and escalation must be decided before the
            # first byte); the answer is then streamed in pieces
            answer, decision, info = await service.answer(req, ctx)
            served_by = "specialist" if answer.model.startswith(SPECIALIST_PREFIX) else "upstream"
            resp = web.StreamResponse(headers={**headers, ROUTE_HEADER: _route_header(decision, info, served_by)})
            await resp.prepare(request)
            for piece in openai_api.stream_chunks(f"chatcmpl-{ctx.event_id}", answer.model, answer.content,
                                                  answer.prompt_tokens, answer.completion_tokens, answer.tool_calls):
                await resp.write(piece)
        else:
            served_by = "upstream"
            resp = web.StreamResponse(headers={**headers, ROUTE_HEADER: _route_header(decision, info, served_by)})
            await resp.prepare(request)
            await service.stream_upstream(req, ctx, decision, cluster_id, resp.write)
        await resp.write_eof()
        m.requests.inc(route=served_by, status="200")
        m.latency.observe(time.perf_counter() - t0, route=served_by)
        return resp

    async def models(_: web.Request) -> web.Response:
        data = []
        if service.upstream is not None:
            data.append({"id": service.upstream_model, "object": "model", "owned_by": "upstream"})
        for adapter_id, rec in sorted(service.assignments.adapters.items()):
            if rec.state in ("active", "shadow"):
                data.append({"id": model_name(adapter_id), "object": "model", "owned_by": "distillery",
                             "cluster_id": rec.cluster_id, "state": rec.state,
                             "loaded": bool(service.registry and service.registry.is_loaded(adapter_id))})
        return web.json_response({"object": "list", "data": data})

    async def healthz(_: web.Request) -> web.Response:
        ok = service.started and (service.registry is None or service.registry.tokenizer is not None)
        body = {"status": "ok" if ok else "starting", "replica": service.replica_id,
                "cluster_snapshot_version": service.assigner.version,
                "loaded_adapters": service.registry.loaded if service.registry else [],
                "upstream": bool(service.upstream)}
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=service.metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def state(_: web.Request) -> web.Response:
        return web.json_response({**service.assignments.snapshot(), "refusals": service.refusals,
                                  "shadow": {"completed": service.shadow.completed, "dropped": service.shadow.dropped,
                                             "failed": service.shadow.failed},
                                  "faults": service.faults.rates if service.faults.enabled else None})

    async def faults(request: web.Request) -> web.Response:
        if not service.faults.enabled:
            return web.json_response(openai_api.error_body("fault injection is off (set DISTILLERY_SERVE_FAULTS=on; demo/test only)"), status=403)
        body = await request.json()
        try:
            service.faults.set_rate(str(body["adapter_id"]), float(body["format_error_rate"]))
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response(openai_api.error_body(f"need adapter_id and format_error_rate in [0, 1]: {exc}"), status=400)
        return web.json_response({"faults": service.faults.rates})

    async def incidents(request: web.Request) -> web.Response:
        body = await request.json()
        adapter_id = str(body.get("adapter_id", ""))
        decisions = service.report_incident(adapter_id, str(body.get("detail") or "reported by an operator"))
        for d in decisions:
            await service.publish_decision(d, actor="operator")
        return web.json_response({"decisions": [d.command_id for d in decisions]}, status=200 if decisions else 404)

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/state", state)
    app.router.add_post("/admin/faults", faults)
    app.router.add_post("/admin/incidents", incidents)
    return app


# ---------------------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------------------
def base_model_dir(settings: Settings) -> Path:
    from trainers.fixture import TINY_BASE_DIR

    return Path(settings.base_model_path) if settings.base_model_path else TINY_BASE_DIR


def make_registry(settings: Settings) -> AdapterRegistry:
    from schemas.manifest import verify_keys_from_settings

    return AdapterRegistry(base_model_dir(settings), verify_keys_from_settings(settings),
                           max_loaded=settings.max_loaded_adapters, cache_dir=settings.home / "serving" / "adapter-cache")


def create_app(settings: Settings, *, bus: Any = None, registry: AdapterRegistry | None | bool = True,
               upstream: Upstream | None | bool = True, assigner: ClusterAssigner | None = None,
               router: Callable[[RouteRequest], Any] | None = None, replica_id: str | None = None) -> web.Application:
    """The app factory. Defaults build the production wiring from settings (Kafka bus, registry
    on the configured base, upstream from DISTILLERY_UPSTREAM_URL); tests pass their own parts,
    or registry=None / upstream=None to run without them."""
    if bus is None:
        from schemas.codec import default_codec
        from serving.bus import KafkaBus

        bus = KafkaBus(settings.broker(), default_codec(settings.schema_registry_url),
                       consumer_options=settings.kafka_consumer_options(),
                       catch_up=(Topics.CLUSTER_SNAPSHOT, Topics.PROMOTE), client_id=f"distillery-serve-{os.getpid()}")
    if registry is True:
        registry = make_registry(settings)
    if upstream is True:
        upstream = Upstream(settings.upstream_url, settings.upstream_api_key) if settings.upstream_url else None
    service = ServingService(settings, bus, registry=registry or None, upstream=upstream or None,
                             assigner=assigner, router=router, replica_id=replica_id)
    if getattr(bus, "on_publish_error", False) is None:
        bus.on_publish_error = lambda topic, exc: service.metrics.publish_errors.inc(topic=topic)
    return build_app(service)


def run_server(settings: Settings, host: str = "0.0.0.0") -> None:
    """`distillery serve`: blocks until interrupted."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    print(f"distillery serve on http://{host}:{settings.serve_port}/v1 (upstream: {settings.upstream_url or 'none'})", flush=True)
    web.run_app(app, host=host, port=settings.serve_port, print=None)
