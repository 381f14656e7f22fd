"""The strict daemon configuration loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from socpipe.core.config import load_config
from socpipe.core.errors import ConfigError
from socpipe.core.resources import bundled_rules_dir


def test_bundled_config_loads() -> None:
    config = load_config()
    assert config.kafka.topics.events == "soc.events"
    assert config.elasticsearch.retry_max_secs == 30.0
    assert config.rule_paths() == [bundled_rules_dir()]


def test_rule_paths_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "socpipe.yml"
    path.write_text("stages:\n  rules: [bundled, local-rules, /srv/rules]\n")
    config = load_config(path)
    assert config.rule_paths() == [bundled_rules_dir(), folder / "local-rules", Path("/srv/rules")]


def test_unknown_keys_are_errors_with_their_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("kafka:\n  topics:\n    event: x\n")
    with pytest.raises(ConfigError, match=r"c\.yml: kafka\.topics: unknown key\(s\): event"):
        load_config(path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("kafka:\n  partitions: many\n", r"kafka\.partitions: expected int, got str"),
        ("stages:\n  rules: rules\n", r"stages\.rules: expected a list"),
        (
            "stages:\n  state_replay_secs: -60\n",
            r"stages\.state_replay_secs: must not be negative",
        ),
    ],
)
def test_wrong_values_are_errors_with_their_path(
    tmp_path: Path, document: str, message: str
) -> None:
    path = tmp_path / "c.yml"
    path.write_text(document)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_zero_is_a_valid_number(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("stages:\n  state_replay_secs: 0\n  batch_max_records: 50\n")
    config = load_config(path)
    assert (config.stages.state_replay_secs, config.stages.batch_max_records) == (0.0, 50)


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: PLAIN\n  sasl_username_env: SOC_USER\n  sasl_password_env: SOC_PASS\n"
    )
    config = load_config(path)
    with pytest.raises(ConfigError, match="SOC_USER"):
        config.kafka.client_options()
    monkeypatch.setenv("SOC_USER", "province")
    monkeypatch.setenv("SOC_PASS", "secret")
    options = config.kafka.client_options()
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "province",
        "secret",
    )


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("kafka: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yml: line 2: invalid YAML") as raised:
        load_config(path)
    assert (raised.value.source, raised.value.line) == (str(path), 2)


def test_an_unreadable_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(ConfigError, match=r"missing\.yml: cannot read: No such file"):
        load_config(missing)
