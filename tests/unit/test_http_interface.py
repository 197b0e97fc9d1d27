"""The read-only ClickHouse HTTP interface over an embedded chDB store, driven by the same
clients analysts use: clickhouse-connect's HTTP client and plain HTTP (curl, Grafana)."""
import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pytest

from clickhouse.client import connect
from clickhouse.http_interface import QueryInterface
from clickhouse.migrate import apply_migrations


@pytest.fixture(scope="module")
def interface(tmp_path_factory):
    url = f"chdb://{tmp_path_factory.mktemp('ch')}"
    writer = connect(url)
    apply_migrations(writer)
    writer.command("INSERT INTO dead_letters (dlq_id, ts, ingest_ts, source_topic, source_partition, source_offset, reason, "
                   "detail, payload_size, payload_sha256, payload_preview) VALUES ('ask/0/1', now64(3), now64(3), 'ask', 0, 1, "
                   "'not_avro_or_json', 'it''s bad', 3, 'x', 'abc')")
    qi = QueryInterface(url, 0).start()
    yield qi
    qi.stop()


def test_clickhouse_connect_http_client_reads_with_parameters(interface):
    c = clickhouse_connect.get_client(host="127.0.0.1", port=interface.port)
    assert c.query("SELECT count() FROM dead_letters").result_rows == [(1,)]
    assert c.query("SELECT detail FROM dead_letters WHERE reason = {r:String}", parameters={"r": "not_avro_or_json"}).result_rows == [("it's bad",)]
    many = [f"reason-{i}" for i in range(300)] + ["not_avro_or_json"]   # large enough to be form-encoded
    assert c.query("SELECT count() FROM dead_letters WHERE reason IN {r:Array(String)}", parameters={"r": many}).result_rows == [(1,)]
    assert c.query("SELECT {s:String}", parameters={"s": "a'b\\c"}).result_rows == [("a'b\\c",)]


def test_plain_http_get_and_post(interface):
    base = f"http://127.0.0.1:{interface.port}/"
    with urllib.request.urlopen(base + "?" + urllib.parse.urlencode({"query": "SELECT count() FROM dead_letters FORMAT TSV"})) as r:
        assert r.read() == b"1\n"
    with urllib.request.urlopen(urllib.request.Request(base, data=b"SELECT reason FROM dead_letters")) as r:
        assert r.read() == b"not_avro_or_json\n"
    with urllib.request.urlopen(base + "ping") as r:
        assert r.read() == b"Ok.\n"


@pytest.mark.parametrize("statement", ["DROP TABLE dead_letters", "INSERT INTO dead_letters (dlq_id) VALUES ('x')",
                                       "ALTER TABLE dead_letters DELETE WHERE 1", "SELECT 1 SETTINGS readonly = 0"])
def test_nothing_can_change_the_store(interface, statement):
    req = urllib.request.Request(f"http://127.0.0.1:{interface.port}/", data=statement.encode())
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code in (400, 403, 500)
    c = clickhouse_connect.get_client(host="127.0.0.1", port=interface.port)
    assert c.query("SELECT count() FROM dead_letters").result_rows == [(1,)]
