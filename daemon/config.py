"""The daemon configuration: one strict loader.

Unknown keys are errors naming their path (``kafka.topic: unknown key``), because a typo in a
production config must stop the daemon at start, not silently fall back to a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "socpipe.yml"


class ConfigError(ValueError):
    """A configuration problem, with the file and key path in the message."""


@dataclass(frozen=True)
class TopicsConfig:
    events: str = "soc.events"
    alerts: str = "soc.alerts"
    deadletter: str = "soc.deadletter"


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: list[str] = field(default_factory=lambda: ["127.0.0.1:9092"])
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: str | None = None
    sasl_username_env: str | None = None
    sasl_password_env: str | None = None
    partitions: int = 4
    topics: TopicsConfig = field(default_factory=TopicsConfig)

    def client_options(self) -> dict[str, Any]:
        """Options shared by kafka-python producers, consumers and admin clients."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_mechanism"):
            if getattr(self, name):
                options[name] = getattr(self, name)
        if self.sasl_username_env:
            options["sasl_plain_username"] = secret_from_env(self.sasl_username_env)
        if self.sasl_password_env:
            options["sasl_plain_password"] = secret_from_env(self.sasl_password_env)
        return options


@dataclass(frozen=True)
class ElasticsearchConfig:
    hosts: list[str] = field(default_factory=lambda: ["http://127.0.0.1:9200"])
    api_key_env: str | None = None
    ca_certs: str | None = None
    events_index_prefix: str = "soc-events-"
    alerts_index: str = "soc-alerts"
    #: The console's own indices: <prefix>users, sessions, audit, suppressions.
    console_index_prefix: str = "soc-console-"
    #: Documents per bulk request (~1.5 MB of events): fewer, larger requests index faster.
    bulk_max_docs: int = 2000
    #: Bulk requests in flight at once (a batch larger than one bulk is split).
    bulk_concurrency: int = 2
    retry_max_secs: float = 30.0


@dataclass(frozen=True)
class StagesConfig:
    #: Kafka records per batch: an events record is an envelope of up to 100 events.
    batch_max_records: int = 100
    poll_timeout_ms: int = 1000
    detect_group: str = "socpipe-detect"
    index_group: str = "socpipe-index"
    rules: list[str] = field(default_factory=lambda: ["rules"])
    #: Correlation state (see docs/correlation.md): how late an event may arrive, and caps.
    correlation_lateness_secs: float = 300.0
    correlation_max_groups: int = 100_000
    correlation_max_entries: int = 500_000
    correlation_max_entries_per_group: int = 1_000
    #: Seconds of a partition's history the detect stage re-reads when it takes it over, to
    #: rebuild correlation and model windows. None: the longest correlation timespan plus
    #: the lateness. 0: never (windows start empty after a restart or rebalance).
    state_replay_secs: float | None = None
    #: Anomaly model artifacts (from `socpipe train`) the detect stage scores events with.
    anomaly_models: list[str] = field(default_factory=list)
    #: Seconds between the detect stage's reloads of the suppressions analysts set in the
    #: console (and writes of how often each applied). 0: suppressions are not used.
    suppressions_reload_secs: float = 30.0


@dataclass(frozen=True)
class MetricsConfig:
    port: int = 0


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards a destination: the CA to trust, and a client certificate for mTLS."""

    ca_certs: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


@dataclass(frozen=True)
class ForwardPolicyConfig:
    """Which alerts go to a destination, and how fast."""

    min_level: str = "low"
    include_rules: list[str] = field(default_factory=list)
    exclude_rules: list[str] = field(default_factory=list)
    include_tags: list[str] = field(default_factory=list)
    exclude_tags: list[str] = field(default_factory=list)
    include_agencies: list[str] = field(default_factory=list)
    exclude_agencies: list[str] = field(default_factory=list)
    #: Alerts per minute at most (0: no limit). Alerts over the rate wait, they are not dropped.
    max_per_minute: int = 0


@dataclass(frozen=True)
class MinimiseConfig:
    """What is removed before an alert leaves the province."""

    drop_fields: list[str] = field(default_factory=list)
    hash_fields: list[str] = field(default_factory=list)
    keep_original: bool = False


@dataclass(frozen=True)
class DestinationConfig:
    name: str = ""
    type: str = ""  # taxii | syslog | webhook | kafka
    url: str | None = None  # taxii: the API root; webhook: the endpoint
    collection: str | None = None  # taxii collection id
    address: str | None = None  # syslog: host:port
    topic: str | None = None  # kafka
    bootstrap_servers: list[str] = field(default_factory=list)  # kafka
    security_protocol: str = "SSL"  # kafka
    sasl_mechanism: str | None = None  # kafka
    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None  # webhook bearer token
    tls: TlsConfig = field(default_factory=TlsConfig)
    policy: ForwardPolicyConfig = field(default_factory=ForwardPolicyConfig)
    minimise: MinimiseConfig = field(default_factory=MinimiseConfig)
    timeout_secs: float = 10.0
    retry_initial_secs: float = 1.0
    retry_max_secs: float = 60.0
    #: A batch keeps retrying this long before it is handed back (and replayed later).
    retry_budget_secs: float = 60.0
    breaker_failures: int = 5
    breaker_reset_secs: float = 30.0


@dataclass(frozen=True)
class IndicatorFeedConfig:
    """The national center's indicators, polled from a TAXII 2.1 collection."""

    url: str | None = None
    collection: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    poll_secs: float = 300.0
    files: list[str] = field(default_factory=list)  # STIX bundles on disk (also for scan)


@dataclass(frozen=True)
class ForwardingConfig:
    province_id: str = "province-soc"
    province_name: str = "Provincial SOC"
    #: Variable holding the key for hashed fields (HMAC-SHA256); without it hashing refuses.
    hash_key_env: str | None = None
    group_prefix: str = "socpipe-forward-"
    #: Where forward stages record each destination's last success and failure, for
    #: `socpipe forward status` (relative paths: to the working directory).
    status_dir: str = "state/forwarding"
    destinations: list[DestinationConfig] = field(default_factory=list)
    indicators: IndicatorFeedConfig = field(default_factory=IndicatorFeedConfig)


@dataclass(frozen=True)
class ConsoleConfig:
    """The analysts' web console (console/settings.py checks the values further)."""

    listen: str = "127.0.0.1:8080"
    tls_cert: str | None = None
    tls_key: str | None = None
    #: Zone times are shown in unless a user chose their own.
    timezone: str = "UTC"
    #: A session ends this long after login, or after this long unused, whichever comes first.
    session_lifetime_secs: float = 8 * 3600.0
    session_idle_secs: float = 3600.0
    #: Failed logins per user name (and per client address) within the window before refusing.
    login_max_failures: int = 5
    login_window_secs: float = 900.0
    #: Rows one CSV/JSON export returns at most.
    export_max_rows: int = 10_000


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    elasticsearch: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    forwarding: ForwardingConfig = field(default_factory=ForwardingConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)

    def rule_paths(self) -> list[Path]:
        """Rule folders; relative ones are relative to the project, like the bundled rules/."""
        return [
            path if path.is_absolute() else PROJECT_ROOT / path
            for path in map(Path, self.stages.rules)
        ]


def secret_from_env(variable: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise ConfigError(f"environment variable {variable} (named in the config) is not set")
    return value


def load_config(path: Path = DEFAULT_CONFIG) -> Config:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}".replace("\n", " ")) from None
    try:
        return _build(Config, document, "")
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _build(kind: type, document: Any, where: str) -> Any:
    """A config dataclass from a mapping; ``where`` is the dotted key path, for messages."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where or 'top level'}: expected a mapping")
    hints = get_type_hints(kind)
    known = {item.name for item in fields(kind)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s): {', '.join(unknown)}")
    values = {}
    for name, value in document.items():
        values[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    return kind(**values)


def _convert(expected: Any, value: Any, path: str) -> Any:
    if is_dataclass(expected):
        return _build(expected, value or {}, path)
    origin, arguments = get_origin(expected), get_args(expected)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list")
        return [
            _convert(arguments[0], item, f"{path}[{index}]") for index, item in enumerate(value)
        ]
    if type(None) in arguments:  # Optional[X]
        if value is None:
            return None
        inner = next(argument for argument in arguments if argument is not type(None))
        return _convert(inner, value, path)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: expected {expected.__name__}, got {type(value).__name__}")
    if expected in (int, float) and value < 0:
        # Every number in the configuration is a size, a duration, a count or a port.
        raise ConfigError(f"{path}: must not be negative, got {value}")
    return value
