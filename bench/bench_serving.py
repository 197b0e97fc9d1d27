"""Serving benchmark, on loopback:

  added latency   p50/p99 of a chat completion through `distillery serve` (cluster assignment
                  with the stream's clustering snapshot and MiniLM featurizer, routing with
                  serving/router.py, event publication, shadow hand-off) against the same request sent
                  straight to the upstream, measured in the same run, one request at a time;
                  once with no adapter, once with a shadow adapter on the cluster answering
                  every request in the background (sample rate 1.0: the worst case);
  hot-load        verify (signature + file hashes) and load of a signed LoRA adapter onto the
                  resident base while others are loaded, with the LRU cap evicting.

The upstream is the replay upstream in its own process (python -m serving.replay_upstream);
the serving app, its in-process bus and the client share this process and its event loop,
so the added latency also includes the client's own share of the loop.
`python -m bench.bench_serving [--quick]`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FULL = dict(requests=300, warmup=20, adapters=6)
QUICK = dict(requests=40, warmup=5, adapters=3)
KEY = "bench-signing-key-0123456789abcdef"


def _cluster_snapshot(prompts: list[str]) -> dict[str, Any]:
    """The stream's clustering model with its default featurizer (MiniLM + skeleton terms), so
    the measured routing overhead includes the real per-request featurisation."""
    from streams.clustering import ClusterItem, ClustererConfig, TaskClusterer

    model = TaskClusterer(ClustererConfig(min_size=2))
    model.learn_batch([ClusterItem(f"e{i}", p) for i, p in enumerate(prompts)])
    return model.snapshot_record(ts_ms=int(time.time() * 1000))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workload(n: int) -> list[dict[str, Any]]:
    verbs = ["create", "delete", "rename", "list"]
    out = []
    for i in range(n):
        verb = verbs[i % len(verbs)]
        out.append({"prompt": f"{verb} the dns record host{i}.example.com pointing at 10.0.{i % 250}.{i % 200}",
                    "response": json.dumps({"action": verb, "host": f"host{i}.example.com", "ttl": 300}),
                    "model": "gpt-4o", "latency_ms": 400.0, "input_tokens": 20, "output_tokens": 18})
    return out


def _pct(values: list[float], q: float) -> float:
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


async def _one(session, url: str, prompt: str) -> float:
    t0 = time.perf_counter()
    async with session.post(url, json={"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}) as resp:
        await resp.read()
        assert resp.status == 200, resp.status
    return (time.perf_counter() - t0) * 1000.0


async def _paired(session, direct_url: str, serve_url: str, prompts: list[str], warmup: int) -> tuple[list[float], list[float]]:
    """Direct and served requests alternate, so both see the same background load."""
    direct, served = [], []
    for i, prompt in enumerate(prompts):
        d = await _one(session, direct_url, prompt)
        s = await _one(session, serve_url, prompt)
        if i >= warmup:
            direct.append(d)
            served.append(s)
    return direct, served


async def _latency(cfg: dict, work: Path, base: Path, shadow_uri: str) -> dict[str, Any]:
    import aiohttp
    from aiohttp import web

    from distillery.settings import Settings, Topics
    from schemas import manifest as manifests
    from serving.adapters import AdapterRegistry
    from serving.app import ServingService, build_app
    from serving.bus import MemoryBus
    from serving.clusters import ClusterAssigner
    from serving.devtools import promote_command
    from serving.upstream import Upstream

    events = _workload(64)
    snapshot = _cluster_snapshot([e["prompt"] for e in events])
    jsonl = work / "recorded.jsonl"
    jsonl.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    up_port = _free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "serving.replay_upstream", "--events", str(jsonl),
                                 "--port", str(up_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", up_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        prompts = [events[i % len(events)]["prompt"] for i in range(cfg["requests"] + cfg["warmup"])]
        results: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session:
            for mode in ("serve", "serve+shadow"):
                settings = Settings.from_env({"DISTILLERY_HOME": str(work / mode), "DISTILLERY_SIGNING_KEY": KEY,
                                              "DISTILLERY_SHADOW_SAMPLE_RATE": "1.0",
                                              "DISTILLERY_SERVE_MAX_NEW_TOKENS": "32"})
                bus = MemoryBus()
                registry = AdapterRegistry(base, manifests.VerifyKeys(hmac_key=KEY.encode()), max_loaded=2,
                                           cache_dir=work / "cache") if mode == "serve+shadow" else None
                assigner = ClusterAssigner()
                assert assigner.update(snapshot)
                cluster = assigner.assign(events[0]["prompt"])
                service = ServingService(settings, bus, registry=registry,
                                         upstream=Upstream(f"http://127.0.0.1:{up_port}/v1"), assigner=assigner)
                runner = web.AppRunner(build_app(service))
                await runner.setup()
                port = _free_port()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                if registry is not None:
                    await bus.publish(Topics.PROMOTE, str(cluster), promote_command("bench-s1", "shadow", "bench-shadow", cluster, shadow_uri))
                direct, times = await _paired(session, direct_url, f"http://127.0.0.1:{port}/v1/chat/completions",
                                              prompts, cfg["warmup"])
                await service.settle()
                results[mode] = times
                results[mode + ":direct"] = direct
                results[mode + ":clustered"] = sum(1 for p in set(prompts) if assigner.assign(p) == cluster) / len(set(prompts))
                results[mode + ":shadow"] = {"completed": service.shadow.completed, "dropped": service.shadow.dropped,
                                            "asked_events": len(bus.records(Topics.ASK)),
                                            "shadow_results": len(bus.records(Topics.SHADOW_RESULTS))}
                await runner.cleanup()
        return results
    finally:
        upstream.terminate()
        upstream.wait(10)


def _hot_load(cfg: dict, work: Path, base: Path) -> dict[str, Any]:
    from schemas import manifest as manifests
    from serving.adapters import AdapterRegistry
    from serving.devtools import build_signed_adapter

    signer = manifests.hmac_signer(KEY.encode())
    uris = [str(build_signed_adapter(base, work / f"hot-{i}", f"hot-{i}", signer, seed=i, r=8))
            for i in range(cfg["adapters"])]
    registry = AdapterRegistry(base, manifests.VerifyKeys(hmac_key=KEY.encode()), max_loaded=2, cache_dir=work / "cache")
    registry.start_sync()
    try:
        loads, verifies, evictions = [], [], 0
        for i, uri in enumerate(uris):
            res = registry.load_sync(f"hot-{i}", uri)
            loads.append(res.seconds * 1000.0)
            verifies.append(res.verify_seconds * 1000.0)
            evictions += len(res.evicted)
        gen = [registry.generate_sync(f"hot-{len(uris) - 1}", "create the dns record a.example.com", 16).latency_ms
               for _ in range(5)]
        size = sum(p.stat().st_size for p in (work / "hot-0").iterdir())
        return {"load_ms_p50": _pct(loads, 0.5), "load_ms_max": max(loads), "verify_ms_p50": _pct(verifies, 0.5),
                "evictions": evictions, "adapter_bytes": size, "specialist_answer_ms_p50": _pct(gen, 0.5)}
    finally:
        registry.stop()


def main(quick: bool = False) -> dict[str, Any]:
    from schemas import manifest as manifests
    from serving.devtools import build_signed_adapter, default_base_dir

    cfg = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        base = default_base_dir(work / "base")
        shadow_uri = str(build_signed_adapter(base, work / "bench-shadow", "bench-shadow",
                                              manifests.hmac_signer(KEY.encode()), seed=1))
        t0 = time.perf_counter()
        lat = asyncio.run(_latency(cfg, work, base, shadow_uri))
        hot = _hot_load(cfg, work, base)
        seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"requests": cfg["requests"], "base_model": str(base), "seconds": round(seconds, 1)}
    for mode in ("serve", "serve+shadow"):
        key = mode.replace("+", "_")
        d, t = lat[mode + ":direct"], lat[mode]
        d50, d99, p50, p99 = _pct(d, 0.5), _pct(d, 0.99), _pct(t, 0.5), _pct(t, 0.99)
        out.update({f"{key}_direct_p50_ms": round(d50, 3), f"{key}_direct_p99_ms": round(d99, 3),
                    f"{key}_p50_ms": round(p50, 3), f"{key}_p99_ms": round(p99, 3),
                    f"{key}_added_p50_ms": round(p50 - d50, 3), f"{key}_added_p99_ms": round(p99 - d99, 3),
                    f"{key}_p50_ratio": round(p50 / d50, 3), f"{key}_p99_ratio": round(p99 / d99, 3)})
        print(f"{mode:<13} direct (baseline) p50 {d50:7.2f} ms p99 {d99:7.2f} ms | served p50 {p50:7.2f} ms p99 {p99:7.2f} ms"
              f" | added p50 {p50 - d50:+6.2f} ms p99 {p99 - d99:+6.2f} ms | ratio p50 {p50 / d50:.2f}x p99 {p99 / d99:.2f}x")
    out["shadow"] = lat["serve+shadow:shadow"]
    out["share_in_shadowed_cluster"] = round(lat["serve+shadow:clustered"], 3)
    print(f"shadow calls: {out['shadow']} ({out['share_in_shadowed_cluster']:.0%} of prompts in the shadowed cluster)")
    out.update({f"hot_load_{k}": (round(v, 3) if isinstance(v, float) else v) for k, v in hot.items()})
    print(f"adapter hot-load: p50 {hot['load_ms_p50']:.1f} ms (verify {hot['verify_ms_p50']:.1f} ms), max {hot['load_ms_max']:.1f} ms, "
          f"{hot['evictions']} LRU evictions, {hot['adapter_bytes'] / 1024:.0f} KiB per adapter; "
          f"specialist answer p50 {hot['specialist_answer_ms_p50']:.1f} ms")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
