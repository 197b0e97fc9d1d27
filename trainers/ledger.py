"""Which retrain commands are done: a durable record per command_id in the artifact store, so
a redelivered command, a restarted trainer or another trainer node in the group never trains
the same command twice, and a job that keeps crashing is given up after a bounded number of
attempts.

One record per command: {"command_id", "state": running|succeeded|failed, "attempt", "owner",
"heartbeat_ms", "reason", "outcome", "published"}. decide() is the pure policy.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from trainers.artifacts import ArtifactStore

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True)
class Decision:
    action: str            # run | skip | publish | fail | wait
    attempt: int = 0
    reason: str = ""


def decide(record: dict[str, Any] | None, *, node_id: str, now_ms: int, max_attempts: int, lease_ms: int) -> Decision:
    """What to do with a command given its ledger record.

    - no record: first attempt;
    - finished and its outcome published: skip (redelivery, replay, restart);
    - finished but the outcome not yet published (crash in between): publish it, train nothing;
    - running under another live node (fresh heartbeat): wait for it;
    - running with a stale heartbeat (its trainer died): the next attempt, or give up with a
      reason once max_attempts have been used."""
    if record is None:
        return Decision("run", 1)
    state = record.get("state")
    if state in (SUCCEEDED, FAILED):
        return Decision("skip" if record.get("published") else "publish", int(record.get("attempt", 1)))
    attempt = int(record.get("attempt", 1))
    fresh = now_ms - int(record.get("heartbeat_ms", 0)) < lease_ms
    if fresh and record.get("owner") != node_id:
        return Decision("wait", attempt)
    if attempt >= max_attempts:
        last = record.get("reason") or "the trainer stopped during the job"
        return Decision("fail", attempt, f"gave up after {attempt} attempt(s); last: {last}")
    return Decision("run", attempt + 1)


def record_name(command_id: str) -> str:
    """A file name that is safe for any command_id and still readable."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", command_id)[:60]
    return f"trainer/commands/{slug}-{hashlib.sha256(command_id.encode()).hexdigest()[:16]}.json"


class Ledger:
    def __init__(self, store: ArtifactStore):
        self.store = store

    def get(self, command_id: str) -> dict[str, Any] | None:
        return self.store.read_json(record_name(command_id))

    def put(self, record: dict[str, Any]) -> dict[str, Any]:
        self.store.write_json(record_name(record["command_id"]), record)
        return record

    def start(self, command_id: str, attempt: int, node_id: str, now_ms: int) -> dict[str, Any]:
        prev = self.get(command_id) or {}
        return self.put({**prev, "command_id": command_id, "state": RUNNING, "attempt": attempt, "owner": node_id,
                         "started_ms": now_ms, "heartbeat_ms": now_ms, "published": False})

    def heartbeat(self, command_id: str, now_ms: int) -> None:
        rec = self.get(command_id)
        if rec and rec.get("state") == RUNNING:
            self.put({**rec, "heartbeat_ms": now_ms})

    def note_error(self, command_id: str, reason: str, now_ms: int) -> None:
        """A failed attempt that may be retried: keep the reason for the final verdict."""
        rec = self.get(command_id) or {"command_id": command_id, "attempt": 1, "state": RUNNING}
        self.put({**rec, "reason": reason, "heartbeat_ms": 0, "owner": None, "updated_ms": now_ms})

    def finish(self, command_id: str, state: str, outcome: dict[str, Any], reason: str, now_ms: int) -> dict[str, Any]:
        rec = self.get(command_id) or {"command_id": command_id, "attempt": 1}
        return self.put({**rec, "state": state, "outcome": outcome, "reason": reason, "finished_ms": now_ms,
                         "published": False})

    def mark_published(self, command_id: str) -> None:
        rec = self.get(command_id)
        if rec is not None:
            self.put({**rec, "published": True})
