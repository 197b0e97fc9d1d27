"""Cluster assignments folded from promote commands."""
from __future__ import annotations

from serving.assignments import ClusterAssignments


def cmd(cid, action, adapter, cluster=1, rollback_to=None, uri=None):
    return {"command_id": cid, "action": action, "adapter_id": adapter, "cluster_id": cluster,
            "rollback_to": rollback_to, "manifest_uri": uri or f"/art/{adapter}/manifest.json", "reason": "t"}


def test_shadow_promote_and_replace():
    a = ClusterAssignments()
    ch = a.apply(cmd("c1", "shadow", "A"))
    assert ch.load == ("A",) and ch.now_serving is None and a.shadows(1) == ["A"]
    ch = a.apply(cmd("c2", "promote", "A"))
    assert a.active(1) == "A" and a.shadows(1) == [] and ch.now_serving == "A"
    a.apply(cmd("c3", "shadow", "B"))
    ch = a.apply(cmd("c4", "promote", "B"))
    assert ch.unload == ("A",) and a.active(1) == "B"
    assert a.rollback_target(1) == "A"


def test_commands_are_idempotent():
    a = ClusterAssignments()
    a.apply(cmd("c1", "promote", "A"))
    a.apply(cmd("c2", "promote", "B"))
    ch = a.apply(cmd("c1", "promote", "A"))    # replayed old command
    assert ch.duplicate and a.active(1) == "B"
    assert a.seen("c2")


def test_rollback_to_previous_and_demoted_never_reused():
    a = ClusterAssignments()
    a.apply(cmd("c1", "promote", "A"))
    a.apply(cmd("c2", "promote", "B"))
    ch = a.apply(cmd("c3", "rollback", "B", rollback_to="A"))
    assert a.active(1) == "A" and ch.load == ("A",) and ch.unload == ("B",) and ch.now_serving == "A"
    assert a.rollback_target(1) is None          # B was demoted
    ch = a.apply(cmd("c4", "demote", "A"))
    assert a.active(1) is None and ch.now_serving is None
    # a rollback to a demoted adapter falls back to the LLM
    a.apply(cmd("c5", "promote", "C"))
    a.apply(cmd("c6", "rollback", "C", rollback_to="B"))
    assert a.active(1) is None


def test_demoting_a_shadow_leaves_the_active_one():
    a = ClusterAssignments()
    a.apply(cmd("c1", "promote", "A"))
    a.apply(cmd("c2", "shadow", "B"))
    ch = a.apply(cmd("c3", "demote", "B"))
    assert a.active(1) == "A" and a.shadows(1) == [] and ch.now_serving == "A"
    assert a.snapshot()["adapters"]["B"]["state"] == "demoted"


def test_clusters_are_independent_and_unknown_cluster_is_llm():
    a = ClusterAssignments()
    a.apply(cmd("c1", "promote", "A", cluster=1))
    a.apply(cmd("c2", "promote", "X", cluster=2))
    assert (a.active(1), a.active(2), a.active(3), a.active(None)) == ("A", "X", None, None)
