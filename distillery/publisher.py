"""Publish InferenceEvents to `ask` from any Python service, in three lines:

    from distillery.publisher import AskPublisher
    with AskPublisher() as ask:
        ask.publish(model="gpt-4o", prompt=p, response=r, latency_ms=812, input_tokens=120, output_tokens=40)

Missing fields get sensible values (a fresh event_id, now as ts, tenant/service from the
arguments); each event is validated against the `ask` contract before it is sent, so a
mistake raises here with the reason instead of landing in ask.dlq.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from distillery.settings import Settings, Topics
from schemas.codec import RejectedMessage, decode_ask, default_codec


class PublishError(RuntimeError):
    pass


class AskPublisher:
    def __init__(self, settings: Settings | None = None, tenant: str = "default", service: str = "unknown",
                 avro: bool = False, bootstrap: str | None = None):
        from confluent_kafka import Producer

        self.settings = settings or Settings.from_env()
        self.tenant, self.service, self.avro = tenant, service, avro
        self.codec = default_codec(self.settings.schema_registry_url)
        self._errors: list[str] = []
        self.delivered = 0
        self.producer = Producer({
            "bootstrap.servers": bootstrap or self.settings.broker(),
            "linger.ms": 5,
            "enable.idempotence": not self.settings.is_local,
            "acks": "all",
            "message.max.bytes": max(1_048_576, self.settings.max_prompt_bytes * 3),
        })

    def event(self, **fields: Any) -> dict[str, Any]:
        """Fill defaults and validate; returns the normalised event."""
        fields.setdefault("event_id", str(uuid.uuid4()))
        fields.setdefault("ts", int(time.time() * 1000))
        fields.setdefault("tenant", self.tenant)
        fields.setdefault("service", self.service)
        fields.setdefault("outcome", "unknown")
        fields.setdefault("metadata", {})
        try:
            event, _ = decode_ask(json.dumps(fields).encode(), self.codec, self.settings.max_prompt_bytes)
        except RejectedMessage as exc:
            raise PublishError(f"not a valid InferenceEvent ({exc.reason}): {exc.detail}") from None
        return event

    def encode(self, event: dict[str, Any]) -> bytes:
        if self.avro:
            return self.codec.encode("ask-value", event)
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()

    def publish(self, **fields: Any) -> str:
        """Validate and send one event; returns its event_id."""
        event = self.event(**fields)
        self.send_raw(event["event_id"].encode(), self.encode(event))
        return event["event_id"]

    def send_raw(self, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(Topics.ASK, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let the broker catch up
                self.producer.poll(0.05)
        self.producer.poll(0)

    def _on_delivery(self, err, _msg) -> None:
        if err is not None:
            self._errors.append(str(err))
        else:
            self.delivered += 1

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining:
            raise PublishError(f"{remaining} events not acknowledged by the broker within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise PublishError(f"{len(errors)} events failed to publish; first error: {errors[0]}")

    def __enter__(self) -> "AskPublisher":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is None:
            self.flush()
