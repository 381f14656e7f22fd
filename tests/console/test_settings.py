"""The console section of the configuration: checked at start, with the key in the message."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from socpipe.console.settings import console_settings
from socpipe.core.config import Config, ConfigError, ConsoleConfig, load_config
from tests.conftest import REPO


def with_console(**values: object) -> Config:
    return replace(Config(), console=replace(ConsoleConfig(), **values))  # type: ignore[arg-type]


def test_the_shipped_configuration_loads() -> None:
    settings = console_settings(load_config(REPO / "config" / "socpipe.yml"))
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert not settings.tls
    assert settings.indices.users == "soc-console-users"
    assert settings.indices.alerts == "soc-alerts"


def test_command_line_values_win() -> None:
    settings = console_settings(Config(), listen="[::1]:9443")
    assert (settings.host, settings.port) == ("::1", 9443)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"listen": "localhost"}, "console.listen"),
        ({"listen": "127.0.0.1:99999"}, "console.listen"),
        ({"timezone": "Mars/Olympus"}, "console.timezone"),
        ({"tls_cert": "/nonexistent.pem"}, "both a certificate and a key"),
        ({"tls_cert": "/nonexistent.pem", "tls_key": "/nonexistent.key"}, "no such file"),
        ({"session_idle_secs": 5.0}, "session_idle_secs"),
        ({"login_max_failures": 0}, "login_max_failures"),
    ],
)
def test_bad_values_name_their_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        console_settings(with_console(**values))


def test_unknown_console_keys_stop_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "socpipe.yml"
    path.write_text("console:\n  listen: 127.0.0.1:8080\n  sesion_lifetime_secs: 60\n")
    with pytest.raises(ConfigError, match="console: unknown key"):
        load_config(path)
