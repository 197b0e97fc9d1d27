import pytest

from distillery.settings import ENV_DOC, Settings, SettingsError, Topics


def test_defaults_are_the_local_profile(tmp_path):
    s = Settings.from_env({"DISTILLERY_HOME": str(tmp_path)})
    assert s.profile == "local" and s.is_local
    assert s.clickhouse_url == f"chdb://{tmp_path / 'clickhouse'}"
    assert s.faust_broker_options()["broker_session_timeout"] == 6.0


def test_a_real_cluster_gets_kafka_defaults(tmp_path):
    s = Settings.from_env({"DISTILLERY_HOME": str(tmp_path), "KAFKA_BOOTSTRAP": "k1:9092,k2:9092"})
    assert s.profile == "production" and s.faust_broker_options() == {}
    assert s.broker() == "k1:9092,k2:9092"


@pytest.mark.parametrize("env, needle", [
    ({"KAFKA_BOOTSTRAP": "nohostport"}, "host:port"),
    ({"CLICKHOUSE_URL": "mysql://x"}, "chdb:///abs/path"),
    ({"CLICKHOUSE_URL": "chdb://relative"}, "absolute path"),
    ({"DISTILLERY_DEDUPE_THRESHOLD": "2"}, "between"),
    ({"DISTILLERY_PARTITIONS": "four"}, "whole number"),
    ({"DISTILLERY_REDACTION_NER": "maybe"}, "boolean"),
    ({"DISTILLERY_REDACTION_MODE": "blur"}, "placeholder"),
    ({"DISTILLERY_PRICE_TABLE": "/nonexistent.json"}, "price table"),
    ({"SCHEMA_REGISTRY_URL": "ftp://x"}, "http"),
])
def test_bad_config_says_how_to_fix_it(tmp_path, env, needle):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"DISTILLERY_HOME": str(tmp_path), **env})
    assert needle in str(err.value)
    assert next(iter(env)) in str(err.value)


def test_no_broker_message_tells_what_to_do(tmp_path):
    s = Settings.from_env({"DISTILLERY_HOME": str(tmp_path)})
    with pytest.raises(SettingsError, match="distillery up"):
        s.broker()


def test_every_env_var_read_is_documented():
    import inspect
    import re
    import distillery.settings as mod
    read = set(re.findall(r'"((?:DISTILLERY|KAFKA|CLICKHOUSE|SCHEMA)_[A-Z0-9_]+)"', inspect.getsource(mod.Settings.from_env)))
    documented = {name for name, _, _ in ENV_DOC}
    assert read <= documented, read - documented


def test_topics_are_unique():
    assert len(Topics.all()) == len(set(Topics.all()))


def test_operations_doc_lists_every_setting():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    missing = [name for name, _, _ in ENV_DOC if f"`{name}`" not in text]
    assert not missing, f"docs/operations.md lacks {missing}"


def test_router_quality_sla_is_parsed_and_checked(tmp_path):
    s = Settings.from_env({"DISTILLERY_HOME": str(tmp_path), "DISTILLERY_ROUTER_QUALITY_SLA": "standard=0.7, free=0.5"})
    assert s.router_quality_sla == {"standard": 0.7, "free": 0.5}
    assert Settings.from_env({"DISTILLERY_HOME": str(tmp_path)}).router_quality_sla == {}
    for bad in ("standard", "standard=1.5", "=0.5", "standard=high"):
        with pytest.raises(SettingsError, match="tier=value"):
            Settings.from_env({"DISTILLERY_HOME": str(tmp_path), "DISTILLERY_ROUTER_QUALITY_SLA": bad})
