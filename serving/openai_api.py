"""The OpenAI chat-completions wire format, pure: requests in, responses and SSE chunks out.

One rule ties serving to the rest of the system: `prompt_from_messages` is how a chat request
becomes the InferenceEvent's `prompt` string. A single user turn is its content verbatim (so a
recorded event's prompt, sent back as one user message, maps to itself); longer conversations
are rendered role by role.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterator


class BadRequest(ValueError):
    """The request is not a valid chat completion request; the message says why."""


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[dict[str, Any]] | None = None
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return prompt_from_messages(self.messages)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise BadRequest("message content must be a string or a list of content parts")


def prompt_from_messages(messages: list[dict[str, Any]]) -> str:
    if len(messages) == 1 and messages[0].get("role") == "user":
        return _content_text(messages[0].get("content"))
    lines = []
    for m in messages:
        text = _content_text(m.get("content"))
        if m.get("tool_calls"):
            text = (text + "\n" if text else "") + json.dumps(m["tool_calls"], sort_keys=True, separators=(",", ":"))
        lines.append(f"{m.get('role', 'user')}: {text}")
    return "\n".join(lines)


def parse_chat_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool", "developer"):
            raise BadRequest(f"messages[{i}] needs a role of system, developer, user, assistant or tool")
        _content_text(m.get("content"))
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise BadRequest("'max_tokens' must be a positive integer")
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise BadRequest("'metadata' must be an object of strings")
    return ChatRequest(
        model=str(body.get("model") or ""), messages=messages, stream=bool(body.get("stream", False)),
        max_tokens=max_tokens, temperature=body.get("temperature"), tools=body.get("tools"),
        user=body.get("user"), metadata={str(k): str(v) for k, v in meta.items()}, raw=body,
    )


def completion(completion_id: str, model: str, content: str, prompt_tokens: int, completion_tokens: int,
               tool_calls: list[dict[str, Any]] | None = None, created: int | None = None,
               finish_reason: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": completion_id, "object": "chat.completion", "created": created or int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def chunk(completion_id: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None,
          usage: dict[str, int] | None = None) -> dict[str, Any]:
    out = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    if usage is not None:
        out["usage"] = usage
    return out


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


def stream_chunks(completion_id: str, model: str, content: str, prompt_tokens: int, completion_tokens: int,
                  tool_calls: list[dict[str, Any]] | None = None, piece_chars: int = 16,
                  created: int | None = None) -> Iterator[bytes]:
    """A complete answer as an SSE stream: role, content pieces, tool calls, finish, usage, [DONE]."""
    created = created or int(time.time())
    yield sse(chunk(completion_id, model, created, {"role": "assistant", "content": ""}))
    for i in range(0, len(content), piece_chars):
        yield sse(chunk(completion_id, model, created, {"content": content[i:i + piece_chars]}))
    if tool_calls:
        calls = [dict(c, index=i) for i, c in enumerate(tool_calls)]
        yield sse(chunk(completion_id, model, created, {"tool_calls": calls}))
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    yield sse(chunk(completion_id, model, created, {}, "tool_calls" if tool_calls else "stop", usage=usage))
    yield sse("[DONE]")


class StreamAccumulator:
    """Rebuilds a full answer from an upstream's SSE chunks while they are relayed."""

    def __init__(self):
        self.content: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf += data
        while b"\n\n" in self._buf:
            event, self._buf = self._buf.split(b"\n\n", 1)
            for line in event.splitlines():
                if line.startswith(b"data:"):
                    self._line(line[5:].strip())

    def _line(self, payload: bytes) -> None:
        if payload == b"[DONE]" or not payload:
            return
        try:
            obj = json.loads(payload)
        except ValueError:
            return
        self.model = obj.get("model") or self.model
        if obj.get("usage"):
            self.usage = obj["usage"]
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(int(call.get("index", 0)), {"type": "function", "function": {"name": "", "arguments": ""}})
                if call.get("id"):
                    slot["id"] = call["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    @property
    def text(self) -> str:
        return "".join(self.content)

    @property
    def calls(self) -> list[dict[str, Any]] | None:
        return [self.tool_calls[i] for i in sorted(self.tool_calls)] or None


def tool_calls_json(tool_calls: list[dict[str, Any]] | None) -> str | None:
    """The InferenceEvent's tool_calls field: the calls as compact JSON, or None."""
    if not tool_calls:
        return None
    return json.dumps(tool_calls, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}
