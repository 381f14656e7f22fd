"""Secrets never cross the network in clear text (issue 20: http:// webhook and TAXII URLs
were accepted with a bearer token or a password)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from socpipe.core.config import (
    ElasticsearchConfig,
    KafkaConfig,
    TaxiiDestinationConfig,
    is_loopback,
    load_config,
)
from socpipe.core.errors import ConfigError


def configured(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "socpipe.yml"
    path.write_text(text)
    return path


WEBHOOK = """
forwarding:
  destinations:
    - name: center
      type: webhook
      url: {url}
      token_env: CENTER_TOKEN
{extra}
"""
TAXII = """
forwarding:
  destinations:
    - name: center
      type: taxii
      url: {url}
      collection: c1
      username_env: TAXII_USER
      password_env: TAXII_PASSWORD
{extra}
"""
FEED = """
forwarding:
  indicators:
    url: {url}
    collection: c1
    password_env: TAXII_PASSWORD
{extra}
"""


@pytest.mark.parametrize(
    ("template", "where", "secret"),
    [
        (WEBHOOK, "forwarding.destinations[0].url", "a bearer token"),
        (TAXII, "forwarding.destinations[0].url", "a password"),
        (FEED, "forwarding.indicators.url", "a password"),
    ],
    ids=["webhook", "taxii", "indicator-feed"],
)
def test_a_secret_over_http_is_refused_unless_loopback_and_allowed(
    tmp_path: Path, template: str, where: str, secret: str
) -> None:
    allowed = "      allow_insecure: true" if template != FEED else "    allow_insecure: true"

    def load(url: str, extra: str = "") -> object:
        return load_config(configured(tmp_path, template.format(url=url, extra=extra)))

    where = re.escape(where)
    remote = rf"{where}: {secret} would cross the network in clear text to center\.example"
    with pytest.raises(ConfigError, match=remote):
        load("http://center.example/api/")
    with pytest.raises(ConfigError, match=remote):  # allow_insecure is for loopback only
        load("http://center.example/api/", allowed)
    with pytest.raises(ConfigError, match=rf"{where}: .*set allow_insecure: true"):
        load("http://127.0.0.1:8443/api/")
    assert load("http://127.0.0.1:8443/api/", allowed)
    assert load("https://center.example/api/")
    with pytest.raises(ConfigError, match="is not an http:// or https:// URL"):
        load("ftp://center.example/")


def test_a_destination_built_in_code_is_checked_too() -> None:
    with pytest.raises(ConfigError, match="url: a password would cross the network"):
        TaxiiDestinationConfig(
            name="x", url="http://center.example/", collection="c", password_env="P"
        )


def test_elasticsearch_credentials_need_https() -> None:
    with pytest.raises(ConfigError, match="hosts: credentials would cross the network"):
        ElasticsearchConfig(hosts=["http://es.soc.example:9200"], api_key_env="KEY")
    with pytest.raises(ConfigError, match="set allow_insecure"):
        ElasticsearchConfig(hosts=["http://localhost:9200"], username_env="U", password_env="P")
    ElasticsearchConfig(hosts=["http://localhost:9200"], api_key_env="K", allow_insecure=True)
    ElasticsearchConfig(hosts=["https://es.soc.example:9200"], username_env="U", password_env="P")
    with pytest.raises(ConfigError, match="give both username_env and password_env"):
        ElasticsearchConfig(hosts=["https://es.soc.example:9200"], username_env="U")


def test_elasticsearch_basic_auth_and_ca_come_from_the_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ES_USER", "socpipe-writer")
    monkeypatch.setenv("ES_PASSWORD", "s3cret")
    config = ElasticsearchConfig(
        hosts=["https://es:9200"],
        username_env="ES_USER",
        password_env="ES_PASSWORD",
        ca_certs="/ca",
    )
    assert config.client_options() == {
        "basic_auth": ("socpipe-writer", "s3cret"),
        "ca_certs": "/ca",
    }


def test_kafka_sasl_credentials_need_tls() -> None:
    with pytest.raises(ConfigError, match="security_protocol: SASL credentials would cross"):
        KafkaConfig(
            bootstrap_servers=["kafka.soc.example:9092"],
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username_env="U",
            sasl_password_env="P",
        )
    KafkaConfig(
        bootstrap_servers=["127.0.0.1:9092"],
        security_protocol="SASL_PLAINTEXT",
        sasl_username_env="U",
        allow_insecure=True,
    )
    KafkaConfig(bootstrap_servers=["kafka.soc.example:9093"], security_protocol="SASL_SSL")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
