"""The CPU part of the ingest stage as a plain function of bytes: decode (Avro wire format or
JSON), validate, price, redact, encode. No I/O and no Faust, so it runs as well on the worker's
CPU thread as in a child process (streams/process_pool.py) that gives it a core of its own."""
from __future__ import annotations

from typing import NamedTuple

from distillery.settings import Settings
from schemas.codec import RejectedMessage, decode_ask, default_codec
from streams.dedupe import scope_key
from streams.observation import dead_letter, observation_from_event
from streams.pricing import PriceTable
from streams.redaction import Redactor


class RawMessage(NamedTuple):
    """What ingest needs of a consumed `ask` message (picklable, unlike Faust's Message)."""
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class IngestBatch:
    """messages -> ([(key, redacted observation bytes)], [dead-letter bytes]), in input order.

    Built once per process from the settings (the price table and the redactor's word lists
    are loaded here); each event is redacted on its own, so batches may be split freely."""

    def __init__(self, settings: Settings):
        self.codec = default_codec(settings.schema_registry_url)
        self.prices = PriceTable.load(settings.price_table)
        self.redactor = Redactor(ner=settings.redaction_ner, mode=settings.redaction_mode)
        self.max_bytes = settings.max_prompt_bytes

    def __call__(self, messages: list[RawMessage], now: int) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        accepted, rejected = [], []
        for m in messages:
            value = m.value or b""
            try:
                event, sid = decode_ask(value, self.codec, self.max_bytes)
            except RejectedMessage as exc:
                rejected.append(dead_letter(m.topic, m.partition, m.offset, m.key, value, exc.reason, exc.detail, now))
                continue
            accepted.append(observation_from_event(event, sid, self.prices, now))
        # Redaction happens here, before any record of the batch can be produced downstream.
        self.redactor.redact_observations(accepted)
        encode = self.codec.encode
        return ([(scope_key(o["tenant"], o["task_hint"]).encode(), encode("observation-value", o)) for o in accepted],
                [encode("ask.dlq-value", d) for d in rejected])
