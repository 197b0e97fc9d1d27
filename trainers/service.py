"""`distillery trainer`: the S5 service. Consumes RetrainCommands from `retrain` (group
distillery-trainer), trains and evaluates an adapter per command, writes it with a signed
manifest to the artifact store, and publishes the outcome: `trained`, a `registry` candidate
and, when the gate passes, a `shadow` PromoteCommand on `promote`; progress on
`training.progress`.

Exactly-once effect on at-least-once delivery: every command's fate is kept in the durable
ledger (trainers/ledger.py, in the artifact store, shared by every trainer node), the outcome
is recorded before it is published, and the offset is committed only after publication. A
redelivered or replayed command trains nothing; a job whose trainer died is retried up to
DISTILLERY_TRAINER_MAX_ATTEMPTS times, then failed with its reason.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

from distillery.settings import Settings, Topics
from schemas.codec import Codec, CodecError, default_codec
from schemas.manifest import signer_from_settings
from trainers import events
from trainers.artifacts import ArtifactStore
from trainers.gate import Gate
from trainers.job import PERMANENT_ERRORS, JobContext, adapter_id_for, run_job
from trainers.ledger import FAILED, SUCCEEDED, Ledger, decide
from trainers.loop import Progress

log = logging.getLogger("distillery.trainer")

GROUP_ID = "distillery-trainer"
SUBJECTS = {Topics.TRAINED: "trained-value", Topics.REGISTRY: "registry-value", Topics.PROMOTE: "promote-value",
            Topics.TRAINING_PROGRESS: "training.progress-value"}
HEARTBEAT_EVERY_S = 10.0


class Interrupted(Exception):
    """The service is stopping: the job is abandoned, uncommitted, and resumed by the next
    trainer to receive the command (as a new attempt)."""


def now_ms() -> int:
    return int(time.time() * 1000)


def _setting(settings: Settings, name: str, default: Any) -> Any:
    return getattr(settings, name, default)


class TrainerService:
    def __init__(self, settings: Settings, *, node_id: str | None = None, gate: Gate | None = None,
                 lease_s: float = 120.0, request_overrides: dict[str, Any] | None = None):
        self.settings = settings
        self.node_id = node_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store = ArtifactStore(settings.artifacts_uri)
        self.ledger = Ledger(self.store)
        self.codec: Codec = default_codec(settings.schema_registry_url)
        self.gate = gate or Gate(min_gain=_setting(settings, "gate_min_gain", 0.10),
                                 min_format=_setting(settings, "gate_min_format", 0.90))
        self.max_attempts = int(_setting(settings, "trainer_max_attempts", 3))
        self.lease_ms = int(lease_s * 1000)
        self.request_overrides = request_overrides or {}
        self.stats = {"trained": 0, "skipped": 0, "republished": 0, "failed": 0, "bad_messages": 0}
        self._producer: Any = None
        self._signer = None
        self._stopping = threading.Event()   # read by the training thread at every progress report

    # ---- publishing --------------------------------------------------------------------------
    async def _send(self, topic: str, key: str, record: dict[str, Any], wait: bool = True) -> None:
        data = self.codec.encode(SUBJECTS[topic], record)
        if wait:
            await self._producer.send_and_wait(topic, data, key=key.encode())
        else:
            await self._producer.send(topic, data, key=key.encode())

    async def _publish_outcome(self, command_id: str, outcome: dict[str, Any]) -> None:
        for item in outcome.get("events", []):
            await self._send(item["topic"], item["key"], item["record"])
        self.ledger.mark_published(command_id)

    # ---- one command -------------------------------------------------------------------------
    async def handle(self, command: dict[str, Any]) -> str:
        """Bring one command to a published outcome; returns what was done."""
        cid = command["command_id"]
        while True:
            decision = decide(self.ledger.get(cid), node_id=self.node_id, now_ms=now_ms(),
                              max_attempts=self.max_attempts, lease_ms=self.lease_ms)
            if decision.action != "wait":
                break
            if self._stopping.is_set():
                return "interrupted"
            log.info("command %s is running on another trainer; waiting for it to finish or its lease to expire", cid)
            await asyncio.sleep(min(5.0, self.lease_ms / 1000 / 4))
        if decision.action == "skip":
            self.stats["skipped"] += 1
            log.info("command %s already done (attempt %d): nothing to train", cid, decision.attempt)
            return "skip"
        if decision.action == "publish":
            self.stats["republished"] += 1
            log.info("command %s finished earlier but its outcome was not published: publishing it", cid)
            await self._publish_outcome(cid, self.ledger.get(cid)["outcome"])
            return "publish"
        if decision.action == "fail":
            await self._fail(command, decision.reason, decision.attempt)
            return "fail"
        return await self._train(command, decision.attempt)

    async def _fail(self, command: dict[str, Any], reason: str, attempt: int) -> None:
        cid = command["command_id"]
        self.stats["failed"] += 1
        log.error("command %s failed: %s", cid, reason)
        ts = now_ms()
        evs = [{"topic": Topics.TRAINED, "key": cid, "record": events.trained_failed(command, reason, attempt, ts)},
               {"topic": Topics.REGISTRY, "key": adapter_id_for(command), "record": {
                   "model_id": adapter_id_for(command), "ts": ts, "kind": "adapter", "state": "failed",
                   "cluster_id": int(command["cluster_id"]), "base_model": str(command.get("base_model", "")),
                   "manifest_uri": None, "manifest_sha256": None, "eval_scores": {}, "attributes": {"command_id": cid},
                   "reason": reason[:2000]}}]
        outcome = {"events": evs}
        self.ledger.finish(cid, FAILED, outcome, reason, ts)
        await self._send(Topics.TRAINING_PROGRESS, cid, events.progress_event(command, "failed", ts), wait=False)
        await self._publish_outcome(cid, outcome)

    async def _train(self, command: dict[str, Any], first_attempt: int) -> str:
        cid = command["command_id"]
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        last_beat = [0.0]

        def on_phase(phase: str, p: Progress | None) -> None:  # runs in the training thread
            if self._stopping.is_set():
                raise Interrupted(f"trainer {self.node_id} stopped during {phase}")
            t = time.monotonic()
            if t - last_beat[0] >= HEARTBEAT_EVERY_S:
                last_beat[0] = t
                self.ledger.heartbeat(cid, now_ms())
            if p is not None:
                log.info("trainer %s: step %d/%d loss %.4f %.0f tok/s eta %.0fs", cid, p.step, p.total, p.loss,
                         p.tokens_per_s, p.eta_s)
            else:
                log.info("trainer %s: %s", cid, phase)
            loop.call_soon_threadsafe(queue.put_nowait, events.progress_event(command, phase, now_ms(), p))

        async def pump() -> None:
            while True:
                record = await queue.get()
                try:
                    await self._send(Topics.TRAINING_PROGRESS, cid, record, wait=False)
                except Exception as exc:  # progress is best effort; the outcome is not
                    log.warning("could not publish progress for %s: %s", cid, exc)

        ctx = JobContext(store=self.store, signer=self._signer, gate=self.gate,
                         candidates_file=self.settings.model_candidates, default_base=self.settings.base_model_path,
                         request_overrides=self.request_overrides)
        pumper = asyncio.create_task(pump())
        try:
            attempt = first_attempt
            while True:
                self.ledger.start(cid, attempt, self.node_id, now_ms())
                log.info("command %s: attempt %d/%d (cluster %s, base %s)", cid, attempt, self.max_attempts,
                         command["cluster_id"], command.get("base_model"))
                try:
                    out = await asyncio.to_thread(run_job, command, ctx, on_phase)
                    break
                except PERMANENT_ERRORS as exc:
                    await self._fail(command, f"{type(exc).__name__}: {exc}", attempt)
                    return "fail"
                except Interrupted as exc:
                    self.ledger.note_error(cid, str(exc), now_ms())
                    log.warning("command %s: %s; it will be resumed as a new attempt", cid, exc)
                    return "interrupted"
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    log.exception("command %s attempt %d crashed", cid, attempt)
                    self.ledger.note_error(cid, reason, now_ms())
                    if attempt >= self.max_attempts:
                        await self._fail(command, f"gave up after {attempt} attempt(s); last: {reason}", attempt)
                        return "fail"
                    attempt += 1
            ts = now_ms()
            evs = [{"topic": Topics.TRAINED, "key": cid, "record": events.trained_succeeded(command, out, attempt, ts)},
                   {"topic": Topics.REGISTRY, "key": out.adapter_id, "record": events.registry_candidate(command, out, ts)}]
            if out.gate.passed:
                # one millisecond after the registration: model_registry_current folds a model's
                # rows by ts, and "candidate" then "shadow" must not tie
                evs.append({"topic": Topics.PROMOTE, "key": out.adapter_id, "record": events.promote_shadow(command, out, ts + 1)})
            outcome = {"events": evs, "adapter_id": out.adapter_id, "manifest_uri": out.manifest_uri}
            self.ledger.finish(cid, SUCCEEDED, outcome, out.gate.reason, ts)
            queue.put_nowait(events.progress_event(command, "done", ts))
            await self._publish_outcome(cid, outcome)
            self.stats["trained"] += 1
            a, b = out.scores["adapter"], out.scores["base"]
            log.info("command %s: adapter %s exact match %.3f (base %.3f), format %.3f, %s", cid, out.adapter_id,
                     a.get("exact_match", 0), b.get("exact_match", 0), a.get("format_valid", 0),
                     "shadow requested" if out.gate.passed else "kept as candidate")
            return "trained"
        finally:
            await asyncio.sleep(0)  # let queued progress records reach the pump
            while not queue.empty():
                await self._send(Topics.TRAINING_PROGRESS, cid, queue.get_nowait(), wait=False)
            pumper.cancel()

    # ---- the consumer loop -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

        stop = stop or asyncio.Event()
        bootstrap = self.settings.broker()
        self._signer = signer_from_settings(self.settings)  # fail at start on a bad key, not mid-job
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        consumer = AIOKafkaConsumer(
            Topics.RETRAIN, bootstrap_servers=bootstrap, group_id=GROUP_ID, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=1,
            # A job may take hours; the offset is committed when it ends, so do not let the
            # poll-interval watchdog evict this member meanwhile.
            max_poll_interval_ms=24 * 3600 * 1000,
            **self.settings.kafka_consumer_options(),
        )
        await self._producer.start()
        await consumer.start()
        log.info("trainer %s consuming %s as %s on %s; artifacts in %s", self.node_id, Topics.RETRAIN, GROUP_ID,
                 bootstrap, self.store.uri)
        if ready is not None:
            ready.set()
        self._stopping.clear()
        watcher = asyncio.create_task(self._watch(stop))
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=1)
                for tp, messages in batch.items():
                    for msg in messages:
                        try:
                            command, _ = self.codec.decode(msg.value, "retrain-value")
                        except CodecError as exc:
                            self.stats["bad_messages"] += 1
                            log.error("skipping unreadable retrain message at %s[%d]@%d: %s", tp.topic, tp.partition,
                                      msg.offset, exc)
                        else:
                            if await self.handle(command) == "interrupted":
                                return  # not committed: redelivered to whoever takes over
                        await consumer.commit({TopicPartition(tp.topic, tp.partition): msg.offset + 1})
        finally:
            watcher.cancel()
            await consumer.stop()
            await self._producer.stop()
            log.info("trainer %s stopped: %s", self.node_id, self.stats)


    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping.set()


def run_trainer(settings: Settings) -> int:
    """Entry point of `distillery trainer`: runs until SIGINT/SIGTERM."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from trainers.lora import preload_libraries

    log.info("training libraries loaded in %.1fs", preload_libraries())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await TrainerService(settings).run(stop)

    asyncio.run(main())
    return 0
