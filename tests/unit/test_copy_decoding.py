import json

from trainers.copy_decoding import CopyVocabulary, load_decoding, occurs, scan_values

TRAIN = [
    ("add bob.smith to the sre group", '{"action":"add_to_group","username":"bob.smith","group":"sre"}'),
    ("disable alice_k please", '{"action":"disable_user","username":"alice_k"}'),
    ("Shut off carol7's account", '{"action":"disable_user","username":"carol7"}'),
    ("put dave in ops", '{"action":"add_to_group","username":"dave","group":"ops"}'),
    ("point api.example.com to <IP_ADDRESS_1>", '{"zone":"example.com","name":"api","value":"<IP_ADDRESS_1>"}'),
    ("point example.org to <IP_ADDRESS_1>", '{"zone":"example.org","name":"@","value":"<IP_ADDRESS_1>"}'),
    ("point www.example.io to <IP_ADDRESS_1>", '{"zone":"example.io","name":"www","value":"<IP_ADDRESS_1>"}'),
    ("point example.net to <IP_ADDRESS_1>", '{"zone":"example.net","name":"@","value":"<IP_ADDRESS_1>"}'),
]


def test_scan_values_tracks_fields_and_the_open_value():
    closed, open_value = scan_values('{"a":"x","b":{"c":"y"},"d":["p","q')
    assert closed == [("$.a", "x"), ("$.b.c", "y"), ("$.d[]", "p")]
    assert open_value == ("$.d[]", "q")
    assert scan_values('{"a":"x","b') == ([("$.a", "x")], None)   # a key is not a value
    assert scan_values('{"a":"say \\"hi\\"') == ([], ("$.a", 'say "hi"'))


def test_fields_learn_whether_they_copy_and_their_boundaries():
    voc = CopyVocabulary.from_examples(TRAIN)
    assert voc.fields["$.username"].copied and not voc.fields["$.action"].copied
    assert voc.fields["$.name"].constants == {"@"}          # "@" is never in a request
    assert voc.fields["$.name"].dot_right and not voc.fields["$.username"].dot_right
    assert voc.fields["$.zone"].dot_left


def test_rule_keeps_values_to_request_spans_and_known_sets():
    rule = CopyVocabulary.from_examples(TRAIN).rule("please disable erin.west, thanks")
    ok = lambda before, after: rule.text_ok(before, after)  # noqa: E731
    assert ok('{"action":"', '{"action":"dis')                       # prefix of a known action
    assert not ok('{"action":"', '{"action":"reac')                  # an action never seen
    assert ok('{"action":"disable_user","username":"', '{"action":"disable_user","username":"erin')
    assert not ok('{"action":"disable_user","username":"', '{"action":"disable_user","username":"dave')  # not in this request
    assert not ok('{"action":"disable_user","username":"er', '{"action":"disable_user","username":"erin"')  # a piece of "erin.west"
    assert ok('{"action":"disable_user","username":"erin.we', '{"action":"disable_user","username":"erin.west"')
    assert not ok('{"action":"disable_user","username":"', '{"action":"disable_user","username":"est')  # starts inside a word
    assert ok('{"x":"', '{"x":"anything"')                            # a field never seen is free
    assert ok("", "Sorry, I can't")                                   # prose is free


def test_dotted_fields_may_split_host_names():
    rule = CopyVocabulary.from_examples(TRAIN).rule("point shop.acme.io to <IP_ADDRESS_1>")
    assert rule.closed_ok("$.name", "shop") and rule.closed_ok("$.zone", "acme.io") and rule.closed_ok("$.name", "@")
    assert not rule.closed_ok("$.zone", "example.com")


def test_vocabulary_round_trips_through_the_adapter_directory(tmp_path):
    voc = CopyVocabulary.from_examples(TRAIN)
    voc.save(tmp_path, "copy")
    assert load_decoding(tmp_path) == voc
    json.loads((tmp_path / "decoding.json").read_text())
    voc.save(tmp_path, "free")
    assert load_decoding(tmp_path) is None


def test_occurs_respects_word_and_dot_boundaries():
    assert occurs("ops", "put dave in ops") and not occurs("ops", "put dave in devops")
    assert occurs("api", "api.example.com") and not occurs("api", "api.example.com", dot_right=False)
    assert not occurs("example.com", "api.example.com", dot_left=False)


def test_a_field_with_few_values_is_a_closed_set_even_when_requests_spell_them():
    pairs = [(f"Add {t} record for h{i}.example.com", f'{{"type":"{t}","name":"h{i}"}}') for i in range(60) for t in ("A", "TXT")]
    voc = CopyVocabulary.from_examples(pairs)
    assert not voc.fields["$.type"].copied and voc.fields["$.name"].copied
    rule = voc.rule("Add TXT record for web.example.com")
    assert rule.closed_ok("$.type", "TXT") and not rule.closed_ok("$.type", "Add")


def test_a_derived_field_with_many_values_is_left_free():
    days = ["March 3", "May 9", "June 1", "July 4", "Aug 2", "Sep 8"]
    pairs = [(f"share /x{i} until {d}", f'{{"path":"/x{i}","expires":"2027-0{i % 9 + 1}-0{i % 7 + 1}"}}') for i, d in enumerate(days * 3)]
    voc = CopyVocabulary.from_examples(pairs)
    assert "$.expires" not in voc.fields and voc.fields["$.path"].copied
    assert voc.rule("share /y until May 5").closed_ok("$.expires", "2027-05-05")
