"""`distillery demo`: the whole S1-S6 loop on the embedded default stack, in one command.

A realistic agent workload (DNS, user and file-share management -> JSON, ticket triage, and
open-ended questions that should stay on the LLM; recorded frontier answers and prices) is sent
through `distillery serve`, whose upstream replays the recorded answers. Events flow through
redaction, dedupe, clustering and the ledger; the decision agent sends retrain commands; the
trainer trains LoRA specialists; shadow evaluation promotes them; their clusters are then served
by the specialists; an injected regression demotes one, which rolls back. A report ends it.

Every service is a real process on loopback: Tansu broker, worker (owning chDB and its query
interface), trainer, serving, replay upstream. The demo lowers a few thresholds so the loop fits
in minutes on 2 cores; they are printed, and every one is an ordinary setting.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from distillery.settings import Settings, free_port
from ops.local_stack import TansuBroker, ensure_all_topics

REPO = Path(__file__).resolve().parents[1]

# Thresholds lowered for a 10-minute demo (production seeds in brackets).
DEMO_SETTINGS = {
    "DISTILLERY_METRICS_WINDOW_SECONDS": "10",        # [60]
    "DISTILLERY_METRICS_GRACE_SECONDS": "20",         # [120]
    "DISTILLERY_DECIDE_EVERY_SECONDS": "5",           # [30]
    "DISTILLERY_POLICY_MIN_EXAMPLES": "400",          # [200]: more examples, a specialist worth shadowing
    "DISTILLERY_SHADOW_SAMPLE_RATE": "1.0",
    # [300 calls, parity 0.95]: the shipped 1.1M-parameter CPU base, trained for a minute on a
    # few hundred examples, agrees with the frontier model on ~0.85 of calls (docs/trainer.md);
    # a real base on a GPU node is held to the seed thresholds.
    # [latency +10%]: here the specialist generates on a CPU core it shares with training and the
    # worker; on a slower 2-core machine (AVX2 only) its median ran 24-115% above the replayed
    # frontier's, and no specialist could be promoted at +10%.
    "DISTILLERY_PROMOTION_THRESHOLDS": "min_shadow_calls=60,min_success_parity=0.8,max_latency_increase=1.0",
    # [standard 0.92]: the router's floor on a specialist's success rate (lower confidence
    # bound), consistent with the promotion bar above on a few hundred calls of evidence
    "DISTILLERY_ROUTER_QUALITY_SLA": "standard=0.7",
    "DISTILLERY_SERVE_FAULTS": "on",                  # demo/test only: lets the demo inject a regression
}
JSON_FAMILIES = ("dns", "user_admin", "file_share")
# The replay upstream answers after this share of each call's recorded frontier latency: a real
# API is slow, and the promotion policy compares the specialist's latency against it (replying
# instantly would make any specialist look slow). Halved so the demo fits its 10 minutes; the
# specialist answers on a CPU core it shares with training, so this is still a hard bar.
UPSTREAM_LATENCY_SCALE = 0.5
CLIENT_CONCURRENCY = 32


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


@dataclass
class Tally:
    sent: int = 0
    errors: int = 0
    routes: Counter = field(default_factory=Counter)          # primary model -> requests
    by_family: dict = field(default_factory=dict)             # family -> Counter(model)


def say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Demo:
    def __init__(self, settings: Settings, quick: bool):
        self.quick = quick
        self.home = settings.home / "demo"
        self.procs: list[Proc] = []
        self.broker: TansuBroker | None = None
        self.tally = Tally()
        self.started = time.monotonic()

    # ---- processes ---------------------------------------------------------------------
    def start(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        log = self.home / "logs" / f"{name}.log"
        popen = subprocess.Popen(args, env=env, cwd=REPO, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for p in self.procs:
            if not p.alive():
                tail = "\n".join(p.log.read_text(errors="replace").splitlines()[-25:])
                raise RuntimeError(f"{p.name} exited (code {p.popen.returncode}); last lines of {p.log}:\n{tail}")

    def stop_all(self) -> None:
        # a second Ctrl-C or SIGTERM must not abort the shutdown half-way and orphan children
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in reversed(self.procs):
            p.stop()
        if self.broker:
            self.broker.stop()

    # ---- ledger --------------------------------------------------------------------------
    def sql(self, query: str) -> list[tuple]:
        import clickhouse_connect
        if not hasattr(self, "_ch"):
            self._ch = clickhouse_connect.get_client(host="127.0.0.1", port=self.ch_port)
        return self._ch.query(query).result_rows

    def scalar(self, query: str, default=0):
        try:
            rows = self.sql(query)
            return rows[0][0] if rows else default
        except Exception:
            return default

    def wait_ledger(self, timeout: float = 180) -> None:
        import logging

        import clickhouse_connect  # noqa: F401  (its import resets urllib3's level: import first)
        # the query interface is not up for the first seconds: retries are expected, not news
        for noisy in ("urllib3", "clickhouse_connect"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                self.sql("SELECT 1")
                return
            except Exception:
                time.sleep(0.5)
        raise TimeoutError("the worker's ClickHouse query interface did not come up")

    def status_line(self) -> str:
        q = self.scalar
        return (f"sent {self.tally.sent} | ledger: {q('SELECT count() FROM observations')} events, "
                f"{q('SELECT count() FROM slm_observation_curated FINAL')} curated, "
                f"{q('SELECT uniqExact(cluster_id) FROM slm_observation_curated FINAL WHERE cluster_id IS NOT NULL')} clusters, "
                f"{q('SELECT count() FROM dead_letters FINAL')} dead letters | "
                f"retrain {q('SELECT count() FROM retrain_commands FINAL')}, "
                f"trained {q(chr(32).join(['SELECT count() FROM training_runs FINAL WHERE status =', repr('succeeded')]))}, "
                f"active {q(chr(32).join(['SELECT count() FROM cluster_model_assignment FINAL WHERE state =', repr('active')]))}, "
                f"demotions {q('SELECT count() FROM demotion_events FINAL')}")

    # ---- traffic -------------------------------------------------------------------------
    async def send(self, items: list[tuple[dict, str]], concurrency: int = CLIENT_CONCURRENCY) -> None:
        import aiohttp

        sem = asyncio.Semaphore(concurrency)
        url = f"http://127.0.0.1:{self.serve_port}/v1/chat/completions"

        async def one(session, event, family):
            async with sem:
                body = {"model": "auto", "messages": [{"role": "user", "content": event["prompt"]}], "user": event["tenant"]}
                headers = {"x-distillery-service": event["service"]}
                if event.get("task_hint"):
                    headers["x-distillery-task-hint"] = event["task_hint"]
                try:
                    async with session.post(url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as r:
                        await r.read()
                        route = json.loads(r.headers.get("x-distillery-route", "{}") or "{}")
                        served = route.get("served_by") or route.get("primary_model") or "?"
                        self.tally.routes[served] += 1
                        self.tally.by_family.setdefault(family, Counter())[served] += 1
                        if r.status != 200:
                            self.tally.errors += 1
                except Exception:
                    self.tally.errors += 1
                self.tally.sent += 1

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(one(session, e, f) for e, f in items))

    def traffic(self, n: int, families: tuple[str, ...] | None = None) -> list[tuple[dict, str]]:
        """The next n recorded calls (of the given families), each once before any repeats:
        distinct calls are what the training corpus is made of."""
        out = []
        for _ in range(n):
            key = families or ()
            queue = self._queues.get(key)
            if not queue:
                queue = [(e, f) for e, f in zip(self.workload.events, self.workload.labels) if not families or f in families]
                self.rng.shuffle(queue)
                self._queues[key] = queue
            out.append(queue.pop())
        return out

    def phase(self, title: str, n: int, families=None, until=None, timeout_s: float = 0, pause_s: float = 5.0) -> bool:
        """Send n requests; with `until`, keep sending n more every pause_s until it holds or
        timeout_s passes (the pipeline works asynchronously behind the traffic)."""
        say(title)
        deadline = time.monotonic() + timeout_s
        last_status = 0.0
        while True:
            self.check_alive()
            asyncio.run(self.send(self.traffic(n, families)))
            if until is None or until():
                say(self.status_line())
                return True
            if time.monotonic() - last_status > 20:
                say(self.status_line())
                if self.training_open():
                    self.print_progress()
                self.print_shadow_evidence()
                last_status = time.monotonic()
            if time.monotonic() > deadline:
                say(self.status_line())
                return False
            time.sleep(pause_s)

    def print_shadow_evidence(self) -> None:
        """Where each adapter in shadow stands against the promotion thresholds."""
        try:
            rows = self.sql(
                "SELECT adapter_id, any(cluster_id), count(), avg(format_valid), avg(exact_match OR field_f1 >= 0.9), "
                "quantile(0.5)(shadow_latency_ms) / quantile(0.5)(primary_latency_ms) - 1, "
                "1 - sum(shadow_cost_usd) / sum(primary_cost_usd) FROM shadow_results FINAL "
                "WHERE adapter_id IN (SELECT model_id FROM model_registry_current WHERE state = 'shadow') "
                "GROUP BY adapter_id ORDER BY adapter_id")
        except Exception:
            return
        for adapter, cluster, n, fmt, parity, latency, saving in rows:
            say(f"  shadow {adapter} (cluster {cluster}): {n} calls, format {fmt:.2f}, agrees with the LLM {parity:.2f}, "
                f"latency {latency:+.0%}, cost {-saving:+.0%}")

    def training_open(self) -> bool:
        """Is a retrain command still waiting for its outcome?"""
        return self.scalar("SELECT count() FROM retrain_commands FINAL WHERE command_id NOT IN "
                           "(SELECT command_id FROM training_runs FINAL WHERE status IN ('succeeded', 'failed'))") > 0

    def print_progress(self) -> None:
        """The trainer's newest progress line, from its log (it also publishes training.progress)."""
        log = self.home / "logs" / "trainer.log"
        try:
            lines = [l for l in log.read_text(errors="replace").splitlines() if "step" in l or "evaluat" in l]
        except OSError:
            return
        if lines:
            say("  trainer: " + lines[-1][-160:])

    # ---- the run -------------------------------------------------------------------------
    def run(self) -> int:
        from ops import workload as wl

        if self.home.exists():
            shutil.rmtree(self.home)
        (self.home / "logs").mkdir(parents=True)
        self.rng = random.Random(7)
        self._queues: dict[tuple, list] = {}
        n_events = 1500 if self.quick else 4000
        # three deterministic JSON tasks a specialist can take over, and open questions that
        # stay on the LLM (ticket triage is left out here: one more training on 2 cores)
        families = ["dns", "user_admin", "file_share", "open_question"]
        self.workload = wl.generate_workload(n_events, seed=11, families=families, start_ts=int(time.time() * 1000),
                                             pii_rate=0.1, duplicate_rate=0.05)
        traffic_file = self.home / "recorded_traffic.jsonl"
        wl.write_jsonl(self.workload.events, traffic_file)
        say(f"workload: {n_events} recorded frontier calls over {len(set(self.workload.labels))} task families "
            f"({', '.join(sorted(set(self.workload.labels)))}), {len(self.workload.canaries)} planted PII values")

        self.broker = TansuBroker(log_path=self.home / "logs" / "tansu.log").start()
        self.ch_port, self.serve_port, upstream_port = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILLERY_", "KAFKA_", "CLICKHOUSE_"))}
        env.update({"DISTILLERY_HOME": str(self.home), "KAFKA_BOOTSTRAP": self.broker.bootstrap, "DISTILLERY_PROFILE": "local",
                    "CLICKHOUSE_HTTP_PORT": str(self.ch_port), "DISTILLERY_SIGNING_KEY": secrets.token_hex(32),
                    "DISTILLERY_SERVE_PORT": str(self.serve_port), "DISTILLERY_UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}/v1",
                    "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1", **DEMO_SETTINGS})
        settings = Settings.from_env(env)
        ensure_all_topics(settings, self.broker.bootstrap)
        say(f"local stack: Tansu broker {self.broker.bootstrap}; demo thresholds: "
            + ", ".join(f"{k.removeprefix('DISTILLERY_')}={v}" for k, v in DEMO_SETTINGS.items()))
        say(f"upstream: replays the recorded frontier answers after {UPSTREAM_LATENCY_SCALE}x their recorded latency")
        py = sys.executable
        self.start("upstream", [py, "-m", "serving.replay_upstream", "--events", str(traffic_file), "--port", str(upstream_port),
                               "--latency-scale", str(UPSTREAM_LATENCY_SCALE)], env)
        self.start("worker", [py, "-m", "distillery", "worker"], env)
        self.start("trainer", [py, "-m", "distillery", "trainer"], env)
        # serving's model thread gets one core, so training keeps the other
        self.start("serve", [py, "-m", "distillery", "serve"], {**env, "OMP_NUM_THREADS": "1"})
        self.wait_ledger()
        self.wait_http(f"http://127.0.0.1:{self.serve_port}/healthz")
        say(f"services up: worker (ClickHouse at http://127.0.0.1:{self.ch_port}), trainer, serve (:{self.serve_port}); logs in {self.home / 'logs'}")

        # 1. S1-S3: traffic in; curation and task discovery
        self.phase("phase 1: live traffic through `distillery serve` -> ask -> redact, dedupe, cluster, ledger",
                   n=900 if self.quick else 2000)

        # 2. S4-S5: the decision agent asks for specialists, the trainer trains them. Traffic
        # slows to a trickle meanwhile: two cores cannot train and shadow-test at full speed.
        def trained() -> bool:
            done = self.scalar("SELECT count() FROM training_runs FINAL WHERE status = 'succeeded'")
            return done >= (1 if self.quick else 2) and not self.training_open()
        if not self.phase("phase 2: waiting for retrain commands and trained specialists (a trickle of traffic keeps flowing)",
                          n=8, until=trained, timeout_s=480):
            raise RuntimeError("no specialist was trained in time; see the worker and trainer logs")
        self.print_training()

        try:
            self.close_the_loop()
        except RuntimeError as exc:
            self.report()
            say(f"the loop did not close: {exc}")
            return 1
        self.report()
        return 0

    def close_the_loop(self) -> None:
        # 3. S6: shadow evaluation on live traffic until promotion
        def promoted() -> bool:
            return self.scalar("SELECT count() FROM cluster_model_assignment FINAL WHERE state = 'active'") >= 1
        if not self.scalar("SELECT countIf(gate_passed) FROM training_runs FINAL") and \
                not self.scalar("SELECT count() FROM retrain_commands FINAL WHERE command_id NOT IN (SELECT command_id FROM training_runs FINAL)"):
            raise RuntimeError("no trained adapter passed the trainer's evaluation gate (held-out exact match must beat "
                               "the base), so none entered shadow; see training_runs and docs/trainer.md")
        if not self.phase("phase 3: specialists answer in shadow beside the LLM; promotion on evidence",
                          n=40, families=JSON_FAMILIES + ("ticket_triage",), until=promoted, timeout_s=240, pause_s=1):
            gated = self.scalar("SELECT countIf(gate_passed) FROM training_runs FINAL")
            raise RuntimeError("no specialist was promoted in time" + (
                "" if gated else ": no trained adapter passed the trainer's evaluation gate (held-out exact match must "
                "beat the base), so none entered shadow; see training_runs and docs/trainer.md"))

        # 4. traffic for promoted clusters is now served by specialists
        before = Counter(self.tally.routes)
        self.phase("phase 4: traffic served by the promoted specialists", n=300)
        after = self.tally.routes - before
        say("served in phase 4: " + ", ".join(f"{m}: {n}" for m, n in after.most_common()))

        # 5. an injected regression demotes a specialist and rolls back
        self.inject_regression()

    def wait_http(self, url: str, timeout: float = 180) -> None:
        import urllib.request
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except Exception:
                time.sleep(0.5)
        raise TimeoutError(f"{url} did not answer")

    def print_training(self) -> None:
        for cmd, cluster, status, adapter, metrics in self.sql(
                "SELECT command_id, cluster_id, status, adapter_id, metrics FROM training_runs FINAL ORDER BY ts"):
            em, base = metrics.get("adapter_exact_match"), metrics.get("base_exact_match")
            say(f"  trained cluster {cluster}: {status}, adapter {adapter}"
                + (f", held-out exact match {em:.2f} (base {base:.2f})" if em is not None and base is not None else ""))

    def inject_regression(self) -> None:
        import urllib.request
        active = self.sql("SELECT cluster_id, adapter_id FROM cluster_model_assignment FINAL WHERE state = 'active' AND adapter_id IS NOT NULL")
        if not active:
            say("phase 5 skipped: no specialist was promoted, so there is nothing to demote")
            return
        cluster_id, adapter_id = active[0]
        families = [f for f, c in self.tally.by_family.items() if c.get(f"distillery/{adapter_id}", 0) > 0] or list(JSON_FAMILIES)
        say(f"phase 5: injecting a regression into adapter {adapter_id} (cluster {cluster_id}): 60% malformed answers")
        req = urllib.request.Request(f"http://127.0.0.1:{self.serve_port}/admin/faults", method="POST",
                                     data=json.dumps({"adapter_id": adapter_id, "format_error_rate": 0.6}).encode(),
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()

        def demoted() -> bool:
            return self.scalar(f"SELECT count() FROM demotion_events FINAL WHERE adapter_id = '{adapter_id}'") >= 1
        if not self.phase(f"          sending traffic of {', '.join(families)} until serving demotes it", n=30,
                          families=tuple(families), until=demoted, timeout_s=180, pause_s=1):
            raise RuntimeError(f"adapter {adapter_id} was not demoted in time; see the serve log")
        for row in self.sql(f"SELECT what_happened, action_taken, now_serving, what_to_do FROM demotion_events FINAL "
                            f"WHERE adapter_id = '{adapter_id}' ORDER BY ts LIMIT 1"):
            say(f"  demotion event: {row[0]}; action: {row[1]}; now serving: {row[2]}")
            say(f"  on-call told: {row[3]}")

    def report(self) -> None:
        q, s = self.sql, self.scalar
        elapsed = time.monotonic() - self.started
        print("\n" + "=" * 78)
        print(f"Distillery demo report ({elapsed / 60:.1f} min)")
        print("=" * 78)
        print(f"requests sent through serve: {self.tally.sent} ({self.tally.errors} errors)")
        print(f"events in the ledger: {s('SELECT count() FROM observations')}; "
              f"curated (unique) {s('SELECT count() FROM slm_observation_curated FINAL')}; "
              f"near-duplicates {s('SELECT countIf(duplicate_of IS NOT NULL) FROM observations')}; "
              f"dead letters {s('SELECT count() FROM dead_letters FINAL')}")
        pii = q("SELECT k, sum(v) FROM observations ARRAY JOIN mapKeys(pii_counts) AS k, mapValues(pii_counts) AS v GROUP BY k ORDER BY 2 DESC")
        print("PII redacted by type: " + (", ".join(f"{k} {v}" for k, v in pii) or "none"))
        leaked = self.leak_check()
        print(f"ledger rows holding any of the {len(self.workload.canaries)} planted PII values: {leaked}")
        print("\ntask clusters discovered:")
        for cid, label, size in q("SELECT cluster_id, argMax(label, ts), max(size) FROM task_cluster_lineage FINAL "
                                  "GROUP BY cluster_id ORDER BY 3 DESC LIMIT 12"):
            print(f"  {cid:>4}  {size:>6} events  {label[:90]}")
        print("\nspecialists:")
        for row in q("SELECT model_id, state, cluster_id, eval_scores FROM model_registry_current WHERE kind = 'adapter' ORDER BY registered_at"):
            em = row[3].get("adapter_exact_match")
            print(f"  {row[0]}  cluster {row[2]}  state {row[1]}" + (f"  held-out exact match {em:.2f}" if em is not None else ""))
        print(f"trained {s(chr(32).join(['SELECT count() FROM training_runs FINAL WHERE status =', repr('succeeded')]))}, "
              f"promoted {s(chr(32).join(['SELECT count() FROM promotion_audit_log FINAL WHERE action =', repr('promote')]))}, "
              f"demoted/rolled back {s(chr(32).join(['SELECT count() FROM promotion_audit_log FINAL WHERE action IN', str(('demote', 'rollback'))]))}")
        per_call = q("SELECT startsWith(model, 'distillery/') AS specialist, count(), avg(cost_usd) FROM observations "
                     "WHERE parent_event_id IS NULL GROUP BY specialist")
        costs = {bool(r[0]): (r[1], r[2]) for r in per_call}
        if costs.get(False):
            print(f"\ncost per call: frontier LLM ${costs[False][1]:.6f} ({costs[False][0]} calls)"
                  + (f", specialists ${costs[True][1]:.6f} ({costs[True][0]} calls)" if costs.get(True) else ""))
        # before and after, on the clusters a specialist served: the same kind of call, two prices
        for cid, llm_n, llm_cost, sp_n, sp_cost in q(
                "SELECT cluster_id, countIf(NOT startsWith(model, 'distillery/')), avgIf(cost_usd, NOT startsWith(model, 'distillery/')), "
                "countIf(startsWith(model, 'distillery/')), avgIf(cost_usd, startsWith(model, 'distillery/')) FROM observations "
                "WHERE parent_event_id IS NULL AND cluster_id IN (SELECT cluster_id FROM observations WHERE startsWith(model, 'distillery/')) "
                "GROUP BY cluster_id ORDER BY cluster_id"):
            if sp_n >= 10 and llm_n and llm_cost:   # not a stray request the worker clustered elsewhere
                print(f"cluster {cid}: ${llm_cost:.6f} per call on the LLM ({llm_n} calls) -> ${sp_cost:.6f} on its specialist "
                      f"({sp_n} calls), {1 - sp_cost / llm_cost:.0%} less")
        try:
            rf = q("SELECT * FROM replaceable_fraction(min_examples=120, min_calls_per_day=100, min_regret_pct=20, specialist_cost_per_1k=0.0001)")
            cols = [c for c in self._ch.query("DESCRIBE (SELECT * FROM replaceable_fraction(min_examples=120, min_calls_per_day=100, min_regret_pct=20, specialist_cost_per_1k=0.0001))").result_rows]
            print("replaceable fraction: " + ", ".join(f"{c[0]}={v:.3f}" if isinstance(v, float) else f"{c[0]}={v}" for c, v in zip(cols, rf[0])))
        except Exception as exc:
            print(f"replaceable fraction: unavailable ({str(exc).splitlines()[0][:120]})")
        print("\nquery the ledger yourself (while `distillery up` runs, or on this demo's store):")
        print(f"  DISTILLERY_HOME={self.home} .venv/bin/distillery sql \"SELECT * FROM spend_per_cluster_day\"")
        print(f"  DISTILLERY_HOME={self.home} .venv/bin/distillery sql \"SELECT * FROM savings_vs_frontier\"")
        print(f"  DISTILLERY_HOME={self.home} .venv/bin/distillery sql \"SELECT * FROM promotion_audit_log FINAL ORDER BY ts\"")
        print("=" * 78)

    def leak_check(self) -> int:
        """Rows of any ledger table holding a planted PII value (must be 0)."""
        tables = [r[0] for r in self.sql("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree%'")]
        canaries = self.workload.canaries
        rows = 0
        for t in tables:
            for k in range(0, len(canaries), 200):   # multiSearchAny takes at most 255 needles
                needles = ", ".join("'" + c.replace("\\", "\\\\").replace("'", "\\'") + "'" for c in canaries[k:k + 200])
                # sql(), not scalar(): a failed check must fail loudly, never read as "no leak"
                rows += self.sql(f"SELECT count() FROM {t} WHERE multiSearchAny(toString(tuple(*)), [{needles}])")[0][0]
        return rows


def run_demo(settings: Settings, quick: bool = False) -> int:
    demo = Demo(settings, quick)
    # SIGTERM (like Ctrl-C) must still stop every child process the demo started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return demo.run()
    except KeyboardInterrupt:
        say("interrupted: stopping the services")
        return 130
    except (RuntimeError, TimeoutError) as exc:
        say(f"demo stopped: {exc}")
        return 1
    finally:
        demo.stop_all()
