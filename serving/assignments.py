"""Which adapter answers each task cluster, rebuilt from the `promote` topic. Pure: the state is
a fold over PromoteCommands, idempotent on command_id, so every replica that reads the topic
from the beginning ends in the same state.

Per cluster: one active adapter (or none = the upstream LLM), any number of shadow adapters,
and the stack of adapters that were active before (rollback targets). Demoted adapters are
remembered so that they are never chosen as a rollback target again.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

ACTIONS = ("shadow", "promote", "demote", "rollback")


@dataclass
class AdapterRecord:
    adapter_id: str
    cluster_id: int
    manifest_uri: str | None
    state: str                  # shadow | active | previous | demoted
    epoch: str                  # command id of the last state change
    reason: str = ""


@dataclass
class ClusterSlot:
    active: str | None = None
    shadows: list[str] = field(default_factory=list)
    previous: list[str] = field(default_factory=list)   # newest last


@dataclass(frozen=True)
class Change:
    """What applying one command did: adapters to load (verify first) or unload, and what now
    answers the cluster."""

    command_id: str
    action: str
    adapter_id: str
    cluster_id: int
    load: tuple[str, ...] = ()
    unload: tuple[str, ...] = ()
    now_serving: str | None = None   # adapter id, None = the upstream LLM
    duplicate: bool = False


class ClusterAssignments:
    def __init__(self, remember_commands: int = 100_000):
        self.adapters: dict[str, AdapterRecord] = {}
        self.clusters: dict[int, ClusterSlot] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_commands

    # -- queries ---------------------------------------------------------------------------
    def active(self, cluster_id: int | None) -> str | None:
        slot = self.clusters.get(cluster_id) if cluster_id is not None else None
        return slot.active if slot else None

    def shadows(self, cluster_id: int | None) -> list[str]:
        slot = self.clusters.get(cluster_id) if cluster_id is not None else None
        return list(slot.shadows) if slot else []

    def rollback_target(self, cluster_id: int, excluding: str | None = None) -> str | None:
        """Newest previously active adapter of the cluster that was not demoted since."""
        slot = self.clusters.get(cluster_id)
        if not slot:
            return None
        for adapter_id in reversed(slot.previous):
            rec = self.adapters.get(adapter_id)
            if adapter_id != excluding and rec and rec.state == "previous":
                return adapter_id
        return None

    def seen(self, command_id: str) -> bool:
        return command_id in self._seen

    def manifest_uri(self, adapter_id: str) -> str | None:
        rec = self.adapters.get(adapter_id)
        return rec.manifest_uri if rec else None

    def snapshot(self) -> dict[str, Any]:
        return {
            "clusters": {str(c): {"active": s.active, "shadows": list(s.shadows), "previous": list(s.previous)}
                         for c, s in sorted(self.clusters.items())},
            "adapters": {a: {"cluster_id": r.cluster_id, "state": r.state, "epoch": r.epoch, "reason": r.reason}
                         for a, r in sorted(self.adapters.items())},
        }

    # -- the fold ---------------------------------------------------------------------------
    def apply(self, cmd: Mapping[str, Any]) -> Change:
        command_id = str(cmd["command_id"])
        action = str(cmd["action"])
        adapter_id = str(cmd["adapter_id"])
        cluster = int(cmd["cluster_id"])
        if action not in ACTIONS:
            raise ValueError(f"unknown promote action {action!r}")
        if command_id in self._seen:
            return Change(command_id, action, adapter_id, cluster, now_serving=self.active(cluster), duplicate=True)
        self._remember_id(command_id)
        slot = self.clusters.setdefault(cluster, ClusterSlot())
        rec = self.adapters.get(adapter_id)
        uri = cmd.get("manifest_uri") or (rec.manifest_uri if rec else None)
        reason = str(cmd.get("reason", ""))
        if rec is not None and rec.cluster_id != cluster:
            # an adapter belongs to one cluster; take it out of its old slot first
            self._detach(rec.adapter_id, self.clusters.setdefault(rec.cluster_id, ClusterSlot()))
        if action == "shadow":
            self._detach(adapter_id, slot)
            slot.shadows.append(adapter_id)
            self.adapters[adapter_id] = AdapterRecord(adapter_id, cluster, uri, "shadow", command_id, reason)
            return Change(command_id, action, adapter_id, cluster, load=(adapter_id,), now_serving=slot.active)
        if action == "promote":
            self._detach(adapter_id, slot)
            unload: tuple[str, ...] = ()
            if slot.active and slot.active != adapter_id:
                old = self.adapters[slot.active]
                old.state, old.epoch = "previous", command_id
                slot.previous.append(slot.active)
                unload = (slot.active,)
            slot.active = adapter_id
            self.adapters[adapter_id] = AdapterRecord(adapter_id, cluster, uri, "active", command_id, reason)
            return Change(command_id, action, adapter_id, cluster, load=(adapter_id,), unload=unload, now_serving=adapter_id)
        # demote / rollback: the adapter leaves; if it was answering, the cluster falls back
        was_active = slot.active == adapter_id
        self._detach(adapter_id, slot)
        self.adapters[adapter_id] = AdapterRecord(adapter_id, cluster, uri, "demoted", command_id, reason)
        load: tuple[str, ...] = ()
        if was_active:
            target = cmd.get("rollback_to")
            target_rec = self.adapters.get(target) if target else None
            if target_rec is not None and target_rec.state != "demoted":
                self._detach(target, self.clusters.setdefault(target_rec.cluster_id, ClusterSlot()))
                target_rec.state, target_rec.epoch, target_rec.cluster_id = "active", command_id, cluster
                slot.active = target
                load = (target,)
            else:
                slot.active = None
        return Change(command_id, action, adapter_id, cluster, load=load, unload=(adapter_id,), now_serving=slot.active)

    def _detach(self, adapter_id: str, slot: ClusterSlot) -> None:
        if slot.active == adapter_id:
            slot.active = None
        if adapter_id in slot.shadows:
            slot.shadows.remove(adapter_id)
        if adapter_id in slot.previous:
            slot.previous.remove(adapter_id)

    def _remember_id(self, command_id: str) -> None:
        self._seen[command_id] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
