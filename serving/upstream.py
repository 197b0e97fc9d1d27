"""Client of the configured upstream LLM: any OpenAI-compatible base URL (settings.upstream_url,
e.g. https://api.openai.com/v1 or the replay upstream)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp

from serving import openai_api


class UpstreamError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"upstream answered {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Answer:
    """One finished answer, from the upstream or a specialist."""

    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    tool_calls: list[dict[str, Any]] | None = None
    gpu_seconds: float | None = None      # set for self-hosted answers only
    finish_reason: str = "stop"


class Upstream:
    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, connector=aiohttp.TCPConnector(limit=256))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def _body(raw: dict[str, Any], model: str | None, stream: bool) -> dict[str, Any]:
        body = {k: v for k, v in raw.items() if k != "metadata"}
        if model:
            body["model"] = model
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, raw: dict[str, Any], model: str | None = None) -> Answer:
        t0 = time.perf_counter()
        s = await self.session()
        async with s.post(f"{self.base_url}/chat/completions", json=self._body(raw, model, False), headers=self._headers()) as resp:
            if resp.status != 200:
                raise UpstreamError(resp.status, (await resp.text())[:500])
            data = await resp.json()
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = data.get("usage") or {}
        return Answer(
            content=message.get("content") or "", model=data.get("model") or model or "upstream",
            prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=(time.perf_counter() - t0) * 1000.0, tool_calls=message.get("tool_calls") or None,
            finish_reason=choice.get("finish_reason") or "stop",
        )

    async def stream(self, raw: dict[str, Any], acc: openai_api.StreamAccumulator,
                     model: str | None = None) -> AsyncIterator[bytes]:
        """Relay the upstream's SSE bytes as they come, accumulating the answer into `acc`."""
        s = await self.session()
        async with s.post(f"{self.base_url}/chat/completions", json=self._body(raw, model, True), headers=self._headers()) as resp:
            if resp.status != 200:
                raise UpstreamError(resp.status, (await resp.text())[:500])
            async for piece in resp.content.iter_any():
                acc.feed(piece)
                yield piece
