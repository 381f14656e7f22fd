"""The configuration of every long-running socpipe process: one schema, one strict loader.

Unknown keys are errors naming their path (``kafka.topic: unknown key``), because a typo in a
production config must stop the daemon at start, not silently fall back to a default. Each
forward destination type has its own section class (a union tagged by ``type``), so a key
that only another type knows is an error too, not a silently ignored setting.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, get_args, get_origin, get_type_hints

import yaml

from socpipe.core.errors import ConfigError
from socpipe.core.resources import bundled_profile_path, bundled_rules_dir, default_config_path

#: The name that stands for the rules shipped with socpipe in ``stages.rules``.
BUNDLED_RULES = "bundled"


@dataclass(frozen=True)
class TopicsConfig:
    events: str = "soc.events"
    alerts: str = "soc.alerts"
    deadletter: str = "soc.deadletter"
    #: Incident updates from the detect stage (keyed by incident id): indexed and forwarded.
    incidents: str = "soc.incidents"
    #: The forward stages' ledger (what was sent where, and what came of it): indexed.
    forwarding: str = "soc.forwarding"


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
    incidents_index: str = "soc-incidents"
    #: The forwarding ledger: one document per destination, incident, level and outcome.
    forwarding_index: str = "soc-forwarding"
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
    #: Rule files or folders; ``bundled`` is socpipe's own rules, relative paths are relative
    #: to the configuration file's folder.
    rules: list[str] = field(default_factory=lambda: [BUNDLED_RULES])
    #: Which third-party (SigmaHQ) rules run (detectors/profile.py): ``bundled`` is the
    #: profile shipped with socpipe, or a file (relative to the configuration); None: all.
    rules_profile: str | None = BUNDLED_RULES
    #: Correlation state (see docs/correlation.md): how late an event may arrive, and caps.
    correlation_lateness_secs: float = 300.0
    correlation_max_groups: int = 100_000
    correlation_max_entries: int = 500_000
    correlation_max_entries_per_group: int = 1_000
    #: Counted events a correlation alert shows with their raw line (``events``); their ids
    #: are always listed (up to 100).
    correlation_evidence_lines: int = 10
    #: Seconds of a partition's history the detect stage re-reads when it takes it over, to
    #: rebuild correlation and model windows. None: the longest correlation timespan plus
    #: the lateness. 0: never (windows start empty after a restart or rebalance).
    state_replay_secs: float | None = None
    #: Anomaly model artifacts (from `socpipe train`) the detect stage scores events with.
    anomaly_models: list[str] = field(default_factory=list)
    #: Incidents (docs/correlation.md, "Incidents"): repeats of a rule on one entity within
    #: this tumbling window are one incident; the detect stage re-reads two windows after a
    #: restart to rebuild them.
    incident_window_secs: float = 1800.0
    #: Open incidents held at most (the least recently changed is closed early beyond).
    incident_max_open: int = 50_000
    #: Evidence links (event and alert ids -> incident) held at most, per kind.
    incident_max_links: int = 500_000
    #: Seconds between the detect stage's reloads of the suppressions analysts set in the
    #: console (and writes of how often each applied). 0: suppressions are not used.
    suppressions_reload_secs: float = 30.0


@dataclass(frozen=True)
class MetricsConfig:
    port: int = 0


@dataclass(frozen=True)
class SyslogListenerConfig:
    """Bounds of `socpipe collect syslog`, each listener apart (docs/limits.md)."""

    #: A longer message keeps its first bytes and is tagged ``socpipe_truncated``.
    max_frame_bytes: int = 64 * 1024
    #: Open connections per listener; more are refused (closed at once, counted, logged).
    max_connections: int = 1000
    #: Open connections from one address per listener (an agency's relay opens a few).
    max_connections_per_peer: int = 100
    #: A connection that sends nothing this long is closed (senders reconnect).
    idle_timeout_secs: float = 600.0
    #: A TLS client must finish its handshake this fast, or is disconnected.
    tls_handshake_timeout_secs: float = 10.0
    #: Connections the kernel queues before they are accepted.
    listen_backlog: int = 512
    #: Messages parsed but not yet journaled (the journal full or its disk failing): TCP
    #: reading pauses meanwhile; UDP datagrams beyond this many are dropped and counted.
    max_held_messages: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_frame_bytes", "max_connections", "max_connections_per_peer"):
            if getattr(self, name) < 1:
                raise ConfigError(f"collectors.syslog.{name}: must be at least 1")
        for name in ("idle_timeout_secs", "tls_handshake_timeout_secs"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"collectors.syslog.{name}: must be more than 0")


@dataclass(frozen=True)
class CollectorsConfig:
    """What `socpipe collect` bounds and checks (docs/limits.md)."""

    #: A followed file's line longer than this keeps its first bytes and is tagged.
    max_line_bytes: int = 256 * 1024
    #: A content time later than its receipt by more than this is set to the receipt time
    #: (the content's time kept in ``socpipe.original_timestamp``, tagged and counted).
    max_future_secs: float = 900.0
    #: The same for content times earlier than their receipt by more than this (0: no
    #: limit). Every distinct day is a daily index: unbounded times would let a sender
    #: create indices at will.
    max_past_secs: float = 30 * 86400.0
    syslog: SyslogListenerConfig = field(default_factory=SyslogListenerConfig)

    def __post_init__(self) -> None:
        if self.max_line_bytes < 1024:
            raise ConfigError("collectors.max_line_bytes: must be at least 1024")


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards a destination: the CA to trust, and a client certificate for mTLS."""

    ca_certs: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


@dataclass(frozen=True)
class ForwardPolicyConfig:
    """Which incidents go to a destination, and how fast."""

    min_level: str = "low"
    include_rules: list[str] = field(default_factory=list)
    exclude_rules: list[str] = field(default_factory=list)
    include_tags: list[str] = field(default_factory=list)
    exclude_tags: list[str] = field(default_factory=list)
    include_agencies: list[str] = field(default_factory=list)
    exclude_agencies: list[str] = field(default_factory=list)
    #: Incidents per minute at most (0: no limit). Over the rate they wait, they are not
    #: dropped.
    max_per_minute: int = 0


@dataclass(frozen=True)
class MinimiseConfig:
    """What is removed before an alert leaves the province."""

    drop_fields: list[str] = field(default_factory=list)
    hash_fields: list[str] = field(default_factory=list)
    keep_original: bool = False


@dataclass(frozen=True, kw_only=True)
class DestinationBase:
    """What every destination has: a name, which alerts it takes, what is removed from them,
    and how delivery is retried. ``kind`` is the ``type`` key that selects the subclass."""

    kind: ClassVar[str]
    name: str
    policy: ForwardPolicyConfig = field(default_factory=ForwardPolicyConfig)
    minimise: MinimiseConfig = field(default_factory=MinimiseConfig)
    timeout_secs: float = 10.0
    retry_initial_secs: float = 1.0
    retry_max_secs: float = 60.0
    #: A batch keeps retrying this long before it is handed back (and replayed later).
    retry_budget_secs: float = 60.0
    breaker_failures: int = 5
    breaker_reset_secs: float = 30.0
    #: Where a destination whose consumer group has no position yet starts: ``latest`` (only
    #: incidents from now on), ``earliest`` (all of Kafka's retained history) or an ISO 8601
    #: time. Ignored once the group has committed; `socpipe forward start-from` moves it.
    start_from: str = "latest"

    @property
    def type(self) -> str:
        return self.kind

    @property
    def target(self) -> str:
        """Where alerts go, for messages."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class TaxiiDestinationConfig(DestinationBase):
    kind: ClassVar[str] = "taxii"
    #: The TAXII 2.1 API root.
    url: str
    collection: str
    username_env: str | None = None
    password_env: str | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)

    @property
    def target(self) -> str:
        return f"{self.url} collection {self.collection}"


@dataclass(frozen=True, kw_only=True)
class SyslogDestinationConfig(DestinationBase):
    kind: ClassVar[str] = "syslog"
    #: host:port of a syslog receiver speaking TLS (RFC 5425).
    address: str
    tls: TlsConfig = field(default_factory=TlsConfig)

    @property
    def target(self) -> str:
        return self.address


@dataclass(frozen=True, kw_only=True)
class WebhookDestinationConfig(DestinationBase):
    kind: ClassVar[str] = "webhook"
    url: str
    #: Variable holding a bearer token (sent only over https).
    token_env: str | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)

    @property
    def target(self) -> str:
        return self.url


@dataclass(frozen=True, kw_only=True)
class KafkaDestinationConfig(DestinationBase):
    kind: ClassVar[str] = "kafka"
    topic: str
    bootstrap_servers: list[str]
    security_protocol: str = "SSL"
    sasl_mechanism: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)

    @property
    def target(self) -> str:
        return f"{','.join(self.bootstrap_servers)} topic {self.topic}"


DestinationConfig = (
    TaxiiDestinationConfig
    | SyslogDestinationConfig
    | WebhookDestinationConfig
    | KafkaDestinationConfig
)
#: The section class of each destination ``type``.
DESTINATION_TYPES: dict[str, type[DestinationBase]] = {
    kind.kind: kind
    for kind in (
        TaxiiDestinationConfig,
        SyslogDestinationConfig,
        WebhookDestinationConfig,
        KafkaDestinationConfig,
    )
}


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
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    forwarding: ForwardingConfig = field(default_factory=ForwardingConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)

    def rule_paths(self) -> list[Path]:
        """Rule files and folders, ``bundled`` standing for socpipe's own rules (relative
        paths were made absolute against the configuration's folder when it was loaded)."""
        return [
            bundled_rules_dir() if entry == BUNDLED_RULES else Path(entry)
            for entry in self.stages.rules
        ]

    def rules_profile_path(self) -> Path | None:
        """The rules profile file (``bundled``: the one shipped with socpipe), or None."""
        profile = self.stages.rules_profile
        if profile is None:
            return None
        return bundled_profile_path() if profile == BUNDLED_RULES else Path(profile)


def secret_from_env(variable: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise ConfigError(f"environment variable {variable} (named in the config) is not set")
    return value


def load_config(path: Path | None = None) -> Config:
    """The configuration in ``path`` (default: the one shipped with socpipe), checked
    strictly; every problem is a ``ConfigError`` naming the file and the key path."""
    path = path or default_config_path()
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror or error}", source) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = str(getattr(error, "problem", None) or error).replace("\n", " ")
        raise ConfigError(f"invalid YAML: {reason}", source, line) from None
    try:
        config: Config = _build(Config, document, "")
    except ConfigError as error:
        raise ConfigError(error.reason, source) from None
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: Config, base: Path) -> Config:
    """Rule paths relative to the configuration file, so a config works from any folder."""

    def resolve(entry: str) -> str:
        if entry == BUNDLED_RULES or Path(entry).is_absolute():
            return entry
        return str(base / entry)

    stages = config.stages
    profile = stages.rules_profile
    return replace(
        config,
        stages=replace(
            stages,
            rules=[resolve(entry) for entry in stages.rules],
            rules_profile=resolve(profile) if profile is not None else None,
        ),
    )


def _build(kind: Any, document: Any, where: str) -> Any:
    """A config dataclass from a mapping; ``where`` is the dotted key path, for messages."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where or 'top level'}: expected a mapping")
    hints = get_type_hints(kind)
    settable = [item for item in fields(kind) if item.init]
    known = {item.name for item in settable}
    unknown = sorted(str(key) for key in set(document) - known)
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s): {', '.join(unknown)}")
    required = [
        item.name
        for item in settable
        if item.default is MISSING and item.default_factory is MISSING
    ]
    if missing := [name for name in required if name not in document]:
        raise ConfigError(f"{where or 'top level'}: missing key(s): {', '.join(missing)}")
    values = {}
    for name, value in document.items():
        values[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    return kind(**values)


def _build_destination(document: Any, where: str) -> DestinationBase:
    """A destination section, its class chosen by its ``type`` key."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: expected a mapping")
    kind = document.get("type")
    section = DESTINATION_TYPES.get(kind) if isinstance(kind, str) else None
    if section is None:
        choices = ", ".join(sorted(DESTINATION_TYPES))
        raise ConfigError(f"{where}.type: must be one of {choices}, not {kind!r}")
    return _build(section, {key: value for key, value in document.items() if key != "type"}, where)


def _convert(expected: Any, value: Any, path: str) -> Any:
    if expected == DestinationConfig:
        return _build_destination(value, path)
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


def config_document(value: Any) -> Any:
    """A configuration (or a section of it) as the mapping its YAML file holds, which
    ``load_config`` reads back to an equal configuration (destinations keep their ``type``)."""
    if isinstance(value, list):
        return [config_document(item) for item in value]
    if not is_dataclass(value) or isinstance(value, type):
        return value
    document: dict[str, Any] = {"type": value.kind} if isinstance(value, DestinationBase) else {}
    for item in fields(value):
        if item.init:
            document[item.name] = config_document(getattr(value, item.name))
    return document
