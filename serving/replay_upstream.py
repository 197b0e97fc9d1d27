"""An OpenAI-compatible upstream that replays recorded frontier answers, for the demo, tests
and benchmarks (no network here, so no real frontier model to call).

    python -m serving.replay_upstream --events traffic.jsonl [--port 8099] [--latency-scale 0]

The JSONL holds InferenceEvents (ops/workload.py writes them): prompt, response, model and,
when present, tool_calls, latency_ms, input_tokens, output_tokens. A request whose prompt
(serving.openai_api.prompt_from_messages) was recorded gets that answer; any other prompt gets
the answer of the most similar recorded prompt (word overlap), or a 404 with --on-miss error.
With --latency-scale S the upstream waits S x the recorded latency before answering.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from aiohttp import web

from serving import openai_api

STATS_KEY: "web.AppKey[dict[str, int]]" = web.AppKey("replay_stats")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Recording:
    prompt: str
    response: str
    model: str
    tool_calls: list[dict[str, Any]] | None
    latency_ms: float
    input_tokens: int
    output_tokens: int


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def recording_from_event(event: dict[str, Any]) -> Recording:
    calls = event.get("tool_calls")
    if isinstance(calls, str):
        try:
            calls = json.loads(calls)
        except ValueError:
            calls = None
    if isinstance(calls, dict):
        calls = [calls]
    return Recording(
        prompt=str(event["prompt"]), response=str(event.get("response") or ""),
        model=str(event.get("model") or "replay"), tool_calls=calls or None,
        latency_ms=float(event.get("latency_ms") or 0.0),
        input_tokens=int(event.get("input_tokens") or _approx_tokens(str(event["prompt"]))),
        output_tokens=int(event.get("output_tokens") or _approx_tokens(str(event.get("response") or ""))),
    )


class ReplayBook:
    """Recorded answers by exact prompt, with a word-overlap index for prompts never seen."""

    def __init__(self, recordings: Iterable[Recording]):
        self.exact: dict[str, Recording] = {}
        self._docs: list[tuple[Recording, frozenset[str]]] = []
        self._postings: dict[str, list[int]] = defaultdict(list)
        for rec in recordings:
            if rec.prompt in self.exact:
                continue  # the first recording of a prompt wins: replays are deterministic
            self.exact[rec.prompt] = rec
            words = frozenset(w.lower() for w in _WORD.findall(rec.prompt))
            for w in words:
                self._postings[w].append(len(self._docs))
            self._docs.append((rec, words))

    @classmethod
    def from_jsonl(cls, path: Path) -> "ReplayBook":
        recs = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    obj = json.loads(line)
                    if isinstance(obj, dict) and "prompt" in obj:
                        recs.append(recording_from_event(obj))
        return cls(recs)

    def __len__(self) -> int:
        return len(self.exact)

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self.exact.values()})

    def lookup(self, prompt: str, nearest: bool = True) -> tuple[Recording | None, bool]:
        """(recording, exact?)"""
        rec = self.exact.get(prompt)
        if rec is not None:
            return rec, True
        if not nearest or not self._docs:
            return None, False
        words = {w.lower() for w in _WORD.findall(prompt)}
        overlap: dict[int, int] = defaultdict(int)
        for w in words:
            for i in self._postings.get(w, ()):
                overlap[i] += 1
        if not overlap:
            return self._docs[0][0], False
        best = max(overlap, key=lambda i: (overlap[i] / len(words | self._docs[i][1]), -i))
        return self._docs[best][0], False


def create_replay_app(book: ReplayBook, *, latency_scale: float = 0.0, on_miss: str = "nearest") -> web.Application:
    app = web.Application()
    stats = {"requests": 0, "exact": 0, "nearest": 0, "misses": 0}
    app[STATS_KEY] = stats

    async def chat(request: web.Request) -> web.StreamResponse:
        try:
            req = openai_api.parse_chat_request(await request.json())
        except (ValueError, openai_api.BadRequest) as exc:
            return web.json_response(openai_api.error_body(str(exc)), status=400)
        stats["requests"] += 1
        rec, exact = book.lookup(req.prompt, nearest=(on_miss == "nearest"))
        if rec is None:
            stats["misses"] += 1
            return web.json_response(openai_api.error_body("no recorded answer for this prompt", "not_found", "replay_miss"), status=404)
        stats["exact" if exact else "nearest"] += 1
        if latency_scale > 0 and rec.latency_ms > 0:
            await asyncio.sleep(rec.latency_ms * latency_scale / 1000.0)
        cid = f"chatcmpl-replay-{uuid.uuid4().hex[:12]}"
        headers = {"x-replay-match": "exact" if exact else "nearest"}
        if req.stream:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers})
            await resp.prepare(request)
            for piece in openai_api.stream_chunks(cid, rec.model, rec.response, rec.input_tokens, rec.output_tokens, rec.tool_calls):
                await resp.write(piece)
            await resp.write_eof()
            return resp
        return web.json_response(openai_api.completion(cid, rec.model, rec.response, rec.input_tokens,
                                                       rec.output_tokens, rec.tool_calls), headers=headers)

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "replay"} for m in book.models]})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "recordings": len(book), **stats})

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", health)
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=Path, required=True, help="JSONL of InferenceEvents with prompt and response")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--latency-scale", type=float, default=0.0)
    ap.add_argument("--on-miss", choices=("nearest", "error"), default="nearest")
    args = ap.parse_args(argv)
    book = ReplayBook.from_jsonl(args.events)
    print(f"replaying {len(book)} recorded answers on http://{args.host}:{args.port}/v1", flush=True)
    web.run_app(create_replay_app(book, latency_scale=args.latency_scale, on_miss=args.on_miss),
                host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
