"""At-least-once batches for Faust agents.

Faust's take_events() acks a batch's events as soon as the agent asks for the next batch, and
also when the stream is torn down, whether or not the batch's effect happened. An agent whose
effect must be durable first (a ClickHouse insert, a produce to the next topic, a state
checkpoint) takes an extra reference on each message and drops it only once the effect is
acknowledged: the offset is committed only when both references are gone, so a crash or a stop
mid-batch leaves the batch to be redelivered.
"""
from __future__ import annotations

from typing import AsyncIterator, Sequence

from faust.types import EventT, StreamT


async def held_batches(stream: StreamT, max_events: int, within: float) -> AsyncIterator[Sequence[EventT]]:
    async for events in stream.take_events(max_events, within):
        for event in events:
            event.message.incref()
        yield events


def release(events: Sequence[EventT]) -> None:
    """The effect of these events is durable: let their offsets be committed."""
    for event in events:
        event.ack()
