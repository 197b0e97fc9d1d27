"""Produce a batch and wait until the broker has every record (at-least-once hand-off).

Records are packed into one Kafka record batch per partition with aiokafka's batch API on the
producer Faust already runs, so a stage pays one future per record batch instead of Faust's
per-message send machinery (~50 us of CPU per record otherwise, three hops per event). Keyed
records go to the partition the producer's own partitioner picks, exactly as `topic.send`
would; unkeyed ones are spread round-robin. Each partition's batches are queued in order, and
the call returns only when the broker has acknowledged them all (any failure raises, so the
caller keeps its offsets held and the batch is redelivered).
"""
from __future__ import annotations

import asyncio
import itertools
from typing import Any, Iterable

from faust.types import TopicT

_round_robin = itertools.count()


def _aiokafka_producer(topic: TopicT) -> Any | None:
    """The running aiokafka producer under Faust's (None if the transport has no such thing)."""
    ensure = getattr(topic.app.producer, "_ensure_producer", None)
    try:
        producer = ensure() if ensure else None
    except Exception:  # not started yet
        return None
    return producer if producer is not None and hasattr(producer, "create_batch") else None


async def send_all(items: Iterable[tuple[TopicT, bytes | None, bytes]]) -> int:
    items = list(items)
    if not items:
        return 0
    producer = _aiokafka_producer(items[0][0])
    if producer is None:
        pending = [await topic.send(key=key, value=value) for topic, key, value in items]
        await asyncio.gather(*pending)
        return len(pending)
    partitioner = items[0][0].app.producer.partitioner
    partitions: dict[str, list[int]] = {}
    batches: dict[tuple[str, int], Any] = {}
    pending = []
    for topic, key, value in items:
        name = topic.get_topic_name()
        if name not in partitions:
            # list() of the metadata set, as aiokafka's own send() does before partitioning
            partitions[name] = list(await producer.partitions_for(name))
        all_partitions = partitions[name]
        if key is None:
            partition = all_partitions[next(_round_robin) % len(all_partitions)]
        else:
            partition = partitioner(key, all_partitions, all_partitions)
        batch = batches.get((name, partition))
        if batch is None:
            batch = batches[(name, partition)] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: queue it, start another
            pending.append(await producer.send_batch(batch, name, partition=partition))
            batch = batches[(name, partition)] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any one record
    for (name, partition), batch in batches.items():
        pending.append(await producer.send_batch(batch, name, partition=partition))
    await asyncio.gather(*pending)
    return len(items)
