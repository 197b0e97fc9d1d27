"""Events as JSON Lines, the input of `distillery publish FILE.jsonl`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator


def write_jsonl(events: Iterable[dict], path: str | Path) -> int:
    """Write one compact JSON object per line (UTF-8); returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for event in events:
            fh.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> Iterator[dict]:
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
