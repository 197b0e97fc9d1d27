"""docker-compose.yml cannot run here (no Docker engine): check it agrees with the settings."""
from pathlib import Path

import yaml

from distillery.settings import ENV_DOC, Settings

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"kafka", "clickhouse", "worker", "trainer", "serve", "grafana"}


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_service_of_the_production_shape_is_there():
    assert SERVICES <= set(compose()["services"])


def test_distillery_services_run_cli_commands_that_exist():
    from distillery.cli import build_parser
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for name in ("worker", "trainer", "serve"):
        cmd = compose()["services"][name]["command"]
        assert cmd[0] == "distillery" and cmd[1] in commands


def test_env_vars_are_documented_settings_and_validate(tmp_path, monkeypatch):
    documented = {name for name, _, _ in ENV_DOC}
    for name in ("worker", "trainer", "serve"):
        env = {k: str(v) for k, v in compose()["services"][name]["environment"].items()}
        assert set(k for k in env if k != "HF_HUB_OFFLINE") <= documented, name
        resolved = {k: v.replace("${CLICKHOUSE_PASSWORD:-change-me}", "pw").replace(
            "${DISTILLERY_SIGNING_KEY:?set a manifest signing key}", "k") for k, v in env.items()}
        resolved = {k: v for k, v in resolved.items() if "${" not in v}
        resolved["DISTILLERY_HOME"] = str(tmp_path)
        s = Settings.from_env(resolved)
        assert s.profile == "production" and not s.is_local
        assert s.broker() == "kafka:9092"


def test_ports_agree_with_settings():
    services = compose()["services"]
    serve_port = services["serve"]["environment"]["DISTILLERY_SERVE_PORT"]
    assert f"{serve_port}:{serve_port}" in services["serve"]["ports"]
    assert "9092:9092" in services["kafka"]["ports"]
    url = services["worker"]["environment"]["CLICKHOUSE_URL"]
    assert "clickhouse:8123" in url and "8123:8123" in services["clickhouse"]["ports"]


def test_trainer_reserves_a_gpu():
    devices = compose()["services"]["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)
