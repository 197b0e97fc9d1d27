"""Produce a batch and wait until the broker has every record (at-least-once hand-off)."""
from __future__ import annotations

import asyncio
from typing import Iterable

from faust.types import TopicT


async def send_all(items: Iterable[tuple[TopicT, bytes | None, bytes]]) -> int:
    pending = [await topic.send(key=key, value=value) for topic, key, value in items]
    if pending:
        await asyncio.gather(*pending)
    return len(pending)
