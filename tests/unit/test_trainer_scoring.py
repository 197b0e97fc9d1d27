import pytest

from schemas.scoring import (Scoreboard, exact_match, field_f1, format_valid, is_json, schema_match, score_one,
                             tool_call_valid, tool_calls)

REF = '{"action":"create_record","name":"www","ttl":3600,"type":"A","value":"10.0.0.1","zone":"example.com"}'


def test_exact_match_ignores_key_order_and_spacing():
    pred = '{"zone": "example.com", "value": "10.0.0.1", "type": "A", "ttl": 3600, "name": "www", "action": "create_record"}'
    assert exact_match(pred, REF)
    assert exact_match("```json\n" + pred + "\n```", REF)


def test_a_prose_preface_is_spelling_not_content():
    # chat models often put one line of prose before the JSON; the task result is the same
    assert exact_match("Here is the command:\n" + REF, REF) and field_f1(REF, "Here is the command:\n" + REF) == 1.0
    assert format_valid(REF, "Sure, here it is:\n```json\n" + REF + "\n```")
    # only a JSON object or array counts, and only behind one short line ending in a colon
    assert not is_json("Answer:\n42")
    assert not is_json("First I thought about it. Then:\n" + "x" * 100 + "\n" + REF)
    assert not exact_match(REF + " and more prose", REF)


def test_exact_match_distinguishes_values_and_types():
    assert not exact_match(REF.replace("3600", "300"), REF)
    assert not exact_match('{"a": true}', '{"a": 1}')
    assert not exact_match('{"a": "1"}', '{"a": 1}')
    assert exact_match("  hello   world ", "hello world")
    assert not exact_match("hello", "world")


def test_field_f1_counts_matching_leaves():
    pred = '{"action":"create_record","name":"www","ttl":300,"type":"A","value":"10.0.0.1","zone":"example.com"}'
    assert field_f1(pred, REF) == pytest.approx(5 / 6)
    assert field_f1(REF, REF) == 1.0
    assert field_f1("not json", REF) == 0.0
    # an extra field costs precision, a missing one costs recall
    assert field_f1('{"a":1,"b":2,"c":3}', '{"a":1,"b":2}') == pytest.approx(0.8)
    assert field_f1('{"a":[1,2]}', '{"a":[1,3]}') == pytest.approx(0.5)
    assert field_f1("the cat sat", "the cat stood") == pytest.approx(2 / 3)


def test_format_and_schema_validity():
    assert format_valid('{"x": 1}', REF) and not format_valid("[1]", REF) and not format_valid("{oops", REF)
    assert format_valid("[2]", "[1]")
    assert format_valid("some text", "other text") and not format_valid("  ", "text")
    assert schema_match(REF.replace("www", "api"), REF)
    assert not schema_match('{"action":"create_record"}', REF)
    assert is_json("[1, 2]") and not is_json("{'a': 1}") and not is_json("")


def test_tool_call_validity():
    ref = '{"name": "create_record", "arguments": {"zone": "a.com", "name": "www"}}'
    assert tool_call_valid('{"name": "create_record", "arguments": {"zone": "b.com", "name": "x"}}', ref) is True
    assert tool_call_valid('{"name": "create_record", "arguments": {"zone": "b.com"}}', ref) is False  # missing arg
    assert tool_call_valid('{"name": "delete_record", "arguments": {"zone": "b.com", "name": "x"}}', ref) is False
    assert tool_call_valid('{"name": "create_record", "arguments": "{\\"zone\\": \\"a\\", \\"name\\": \\"w\\"}"}', ref) is True
    assert tool_call_valid("no call at all", ref) is False
    assert tool_call_valid('{"anything": 1}', REF) is None  # the reference is no tool call: n/a
    openai = '{"tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\\"x\\": 1}"}}]}'
    assert tool_calls(__import__("json").loads(openai)) == [("f", {"x": 1})]
    assert tool_call_valid(openai, allowed={"f"}) is True
    assert tool_call_valid(openai, allowed={"g"}) is False


def test_scoreboard_streams_means():
    board = Scoreboard()
    board.update_one(REF, REF, latency_ms=10)
    board.update_one("garbage", REF, latency_ms=30)
    got = board.get()
    assert got["exact_match"] == 0.5 and got["json_valid"] == 0.5 and got["latency_ms"] == 20.0 and got["n"] == 2
    assert "tool_call_valid" not in got
    assert set(score_one(REF, REF)) == {"exact_match", "field_f1", "json_valid", "format_valid", "schema_match"}
