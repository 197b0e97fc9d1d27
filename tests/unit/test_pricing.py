import json

import pytest

from distillery.settings import PACKAGE_DEFAULTS
from streams.pricing import PriceTable, PriceTableError


def test_shipped_table_prices_api_models_by_tokens_and_specialists_by_gpu_seconds():
    table = PriceTable.load(PACKAGE_DEFAULTS / "prices.json")
    cost, source = table.cost("gpt-4o", 1000, 1000, 500, None, None)
    assert source == "tokens" and cost == pytest.approx(0.0125)
    cost, source = table.cost("distillery/dns-adapter-1", 1000, 1000, 250, None, None)
    assert source == "gpu_seconds" and cost == pytest.approx(0.25 * 0.0004)
    cost, source = table.cost("distillery/x", 1, 1, 250, 2.0, None)
    assert cost == pytest.approx(2.0 * 0.0004)
    assert table.cost("gpt-4o", 1, 1, 1, None, 0.5) == (0.5, "reported")
    assert table.cost("mystery-model", 10, 10, 1, None, None) == (0.0, "unpriced")


@pytest.mark.parametrize("body, needle", [
    ("not json", "not valid JSON"),
    ({"models": {"m": {"input_per_1k": -1}}}, "non-negative"),
    ({"models": {"m": {"gpu_second": 1, "input_per_1k": 1}}}, "not both"),
    ({"models": {"m": {"per_call": 1}}}, "unknown field"),
    ({"patterns": [{"gpu_second": 1}]}, "match"),
])
def test_bad_price_tables_are_refused_clearly(tmp_path, body, needle):
    path = tmp_path / "prices.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    with pytest.raises(PriceTableError, match=needle):
        PriceTable.load(path)
