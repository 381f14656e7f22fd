"""The configuration of every long-running socpipe process: one schema, one strict loader.

Unknown keys are errors naming their path (``kafka.topic: unknown key``), because a typo in a
production config must stop the daemon at start, not silently fall back to a default. Each
forward destination type has its own section class (a union tagged by ``type``), so a key
that only another type knows is an error too, not a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import yaml

from socpipe.core.agency import (
    agency_problem,
    agency_topic,
    agency_topics_pattern,
    topic_agency,
    topic_problem,
)
from socpipe.core.errors import ConfigError
from socpipe.core.resources import bundled_profile_path, bundled_rules_dir, default_config_path
from socpipe.core.yamltext import load_document, read_bounded, yaml_problem

#: A configuration file is small; these bound a hostile or broken one before it is built
#: (anchors and aliases are allowed, within the bound once expanded).
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 100_000
#: The name that stands for the rules shipped with socpipe in ``stages.rules``.
BUNDLED_RULES = "bundled"


#: ``kafka.event_topics``: one topic per agency (``<topics.events>.<agency>``), or one for all.
PER_AGENCY, SINGLE = "per_agency", "single"
#: Security protocols that send everything, SASL credentials included, in clear text.
CLEARTEXT_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TopicsConfig:
    #: The events topic; with ``kafka.event_topics: per_agency`` the prefix of the agencies'
    #: topics (``soc.events.so-gtvt``), and no topic of its own.
    events: str = "soc.events"
    alerts: str = "soc.alerts"
    deadletter: str = "soc.deadletter"
    #: Incident updates from the detect stage (keyed by incident id): indexed and forwarded.
    incidents: str = "soc.incidents"
    #: The forward stages' ledger (what was sent where, and what came of it): indexed.
    forwarding: str = "soc.forwarding"

    def __post_init__(self) -> None:
        for item in fields(self):
            if problem := topic_problem(getattr(self, item.name)):
                raise ConfigError(f"{item.name}: {problem}")


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
    #: SASL credentials over a clear-text protocol: refused unless every bootstrap server is
    #: on this machine (loopback) and this is true.
    allow_insecure: bool = False
    partitions: int = 4
    #: Copies of each partition `socpipe setup` asks for (3 on a cluster of three brokers or
    #: more; the brokers' min.insync.replicas decides how many must acknowledge a write).
    replication_factor: int = 1
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    #: ``per_agency`` (the default): each agency's collector writes its own topic and the
    #: stages take ``organization.id`` from the topic name, which broker ACLs can vouch for.
    #: ``single``: one events topic whose payload names the agency, for trusted
    #: single-tenant setups only (docs/security.md).
    event_topics: str = PER_AGENCY
    #: Agencies whose events topics `socpipe setup` creates (``--agency`` adds more).
    agencies: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.event_topics not in (PER_AGENCY, SINGLE):
            raise ConfigError(
                f"event_topics: must be {PER_AGENCY} or {SINGLE}, not {self.event_topics!r}"
            )
        for index, agency in enumerate(self.agencies):
            if problem := agency_problem(agency):
                raise ConfigError(f"agencies[{index}]: {problem}")
        if self.per_agency:
            for name in [item.name for item in fields(self.topics) if item.name != "events"]:
                topic = getattr(self.topics, name)
                if topic_agency(self.topics.events, topic) is not None:
                    raise ConfigError(
                        f"topics.{name}: {topic} would read as the events topic of agency"
                        f" {topic_agency(self.topics.events, topic)!r}; choose another name"
                    )
        if self.sasl_username_env or self.sasl_password_env:
            refuse_cleartext_sasl(
                self.bootstrap_servers, self.security_protocol, self.allow_insecure
            )

    @property
    def per_agency(self) -> bool:
        return self.event_topics == PER_AGENCY

    def events_topic(self, agency: str) -> str:
        """The topic the collector of ``agency`` writes; raises ``ConfigError`` for an agency
        id that cannot be part of a topic name (per-agency topics only)."""
        if not self.per_agency:
            return self.topics.events
        try:
            return agency_topic(self.topics.events, agency)
        except ValueError as error:
            raise ConfigError(f"--agency: {error}") from None

    def for_collector(self, agency: str) -> KafkaConfig:
        """This configuration as the collector of ``agency`` uses it: its events topic is
        the agency's own."""
        topics = replace(self.topics, events=self.events_topic(agency))
        return replace(self, topics=topics, event_topics=SINGLE)

    def events_pattern(self) -> str | None:
        """The regex of the events topics the stages subscribe to; None with a single topic."""
        return agency_topics_pattern(self.topics.events) if self.per_agency else None

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
    #: Names of the environment variables holding an API key, or a user and password (basic
    #: authentication, e.g. file-realm users); never the secrets themselves.
    api_key_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    #: The CA that signed the cluster's HTTP certificate (PEM), for https:// hosts.
    ca_certs: str | None = None
    #: Credentials over http://: refused unless every host is loopback and this is true.
    allow_insecure: bool = False
    events_index_prefix: str = "soc-events-"
    alerts_index: str = "soc-alerts"
    incidents_index: str = "soc-incidents"
    #: The forwarding ledger: one document per destination, incident, level and outcome.
    forwarding_index: str = "soc-forwarding"
    #: The console's own indices: <prefix>users, sessions, audit, suppressions.
    console_index_prefix: str = "soc-console-"
    #: Documents per bulk request (~0.7 MB of events). Elasticsearch indexes a request on one
    #: thread: a batch cut in several requests keeps its write threads busy together.
    bulk_max_docs: int = 1000
    #: Bulk requests in flight at once (a batch larger than one bulk is split).
    bulk_concurrency: int = 4
    retry_max_secs: float = 30.0
    #: Copies of each shard beside the primary, set in the index templates by `socpipe setup`
    #: (0 on one node; 1 on a cluster, so that losing a node loses no document).
    replicas: int = 0

    def __post_init__(self) -> None:
        if bool(self.username_env) != bool(self.password_env):
            raise ConfigError("username_env: give both username_env and password_env, or neither")
        if self.api_key_env and self.username_env:
            raise ConfigError("api_key_env: give an API key or a user and password, not both")
        if self.api_key_env or self.username_env:
            for host in self.hosts:
                refuse_cleartext_url("hosts", host, "credentials", self.allow_insecure)

    def client_options(self) -> dict[str, Any]:
        """Authentication and TLS options of the Elasticsearch clients (sync and async),
        with the secrets read from the environment now."""
        options: dict[str, Any] = {}
        if self.api_key_env:
            options["api_key"] = secret_from_env(self.api_key_env)
        if self.username_env and self.password_env:
            options["basic_auth"] = (
                secret_from_env(self.username_env),
                secret_from_env(self.password_env),
            )
        if self.ca_certs:
            options["ca_certs"] = self.ca_certs
        return options


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
    #: Estimated bytes of correlation state at most (values and lines kept count too).
    correlation_max_bytes: int = 256 << 20
    #: Counted events a correlation alert shows with their raw line (``events``); their ids
    #: are always listed (up to 100).
    correlation_evidence_lines: int = 10
    #: Seconds of a partition's history the detect stage re-reads when it takes it over, to
    #: rebuild correlation and model windows. None: the longest correlation timespan plus
    #: the lateness. 0: never (windows start empty after a restart or rebalance).
    state_replay_secs: float | None = None
    #: Anomaly model artifacts (from `socpipe train`) the detect stage scores events with.
    anomaly_models: list[str] = field(default_factory=list)
    #: A model is a pickle: loading one runs code. Models load only from inside this folder
    #: (which must not be writable by others) or when their model file's SHA-256 is listed in
    #: anomaly_model_sha256 (as `socpipe train` prints it); anything else is refused.
    trusted_models_dir: str | None = None
    anomaly_model_sha256: list[str] = field(default_factory=list)
    #: Estimated bytes of each model's open windows at most.
    anomaly_max_bytes: int = 64 << 20
    #: Incidents (docs/correlation.md, "Incidents"): repeats of a rule on one entity within
    #: this tumbling window are one incident; the detect stage re-reads two windows after a
    #: restart to rebuild them.
    incident_window_secs: float = 1800.0
    #: Open incidents held at most (the least recently changed is closed early beyond).
    incident_max_open: int = 50_000
    #: Evidence links (event and alert ids -> incident) held at most, per kind.
    incident_max_links: int = 500_000
    #: Estimated bytes of open incidents with their evidence links at most (the least recently
    #: changed is closed early beyond).
    incident_max_bytes: int = 256 << 20
    #: Seconds between the detect stage's reloads of the suppressions analysts set in the
    #: console (and writes of how often each applied). 0: suppressions are not used.
    suppressions_reload_secs: float = 30.0

    def __post_init__(self) -> None:
        for index, digest in enumerate(self.anomaly_model_sha256):
            if not _SHA256.fullmatch(digest):
                raise ConfigError(
                    f"anomaly_model_sha256[{index}]: not a SHA-256 (64 lower-case hex digits)"
                )


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
    #: A password over http://: refused unless the URL is loopback and this is true.
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        if self.username_env or self.password_env:
            refuse_cleartext_url("url", self.url, "a password", self.allow_insecure)

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
    #: Variable holding a bearer token.
    token_env: str | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    #: A token over http://: refused unless the URL is loopback and this is true.
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        if self.token_env:
            refuse_cleartext_url("url", self.url, "a bearer token", self.allow_insecure)

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
    #: SASL credentials over a clear-text protocol: refused unless every bootstrap server is
    #: loopback and this is true.
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        if self.username_env or self.password_env:
            refuse_cleartext_sasl(
                self.bootstrap_servers, self.security_protocol, self.allow_insecure
            )

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
    #: A password over http://: refused unless the URL is loopback and this is true.
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        if self.url and (self.username_env or self.password_env):
            refuse_cleartext_url("url", self.url, "a password", self.allow_insecure)


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


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) is this machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext_secret_problem(
    hosts: list[str], secret: str, allow_insecure: bool, instead: str
) -> str | None:
    """Why ``secret`` must not go in clear text to ``hosts``, or None when it may: only to
    loopback hosts, and only when the configuration says ``allow_insecure: true``."""
    remote = [host for host in hosts if not is_loopback(host)]
    if remote:
        return (
            f"{secret} would cross the network in clear text to {remote[0]}; use {instead}"
            " (allow_insecure is honoured only for loopback addresses)"
        )
    if not allow_insecure:
        return (
            f"{secret} would be sent in clear text; use {instead}, or for a test on this"
            " machine set allow_insecure: true"
        )
    return None


def refuse_cleartext_sasl(servers: list[str], protocol: str, allow_insecure: bool) -> None:
    """Raise a ``ConfigError`` on ``security_protocol`` when SASL credentials would reach
    Kafka ``servers`` (host:port) in clear text (see ``cleartext_secret_problem``)."""
    if protocol.upper() not in CLEARTEXT_PROTOCOLS:
        return
    hosts = [server.rsplit(":", 1)[0] for server in servers]
    if problem := cleartext_secret_problem(
        hosts, "SASL credentials", allow_insecure, "security_protocol SASL_SSL"
    ):
        raise ConfigError(f"security_protocol: {problem}")


def refuse_cleartext_url(key: str, url: str, secret: str, allow_insecure: bool) -> None:
    """Raise a ``ConfigError`` on ``key`` unless ``secret`` may be sent to ``url``: https://
    always may; http:// only to a loopback host with ``allow_insecure``; nothing else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        return
    if scheme != "http":
        raise ConfigError(f"{key}: {url[:100]!r} is not an http:// or https:// URL")
    hosts = [parts.hostname or ""]
    if problem := cleartext_secret_problem(hosts, secret, allow_insecure, "https://"):
        raise ConfigError(f"{key}: {problem}")


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
        text = read_bounded(path, MAX_CONFIG_BYTES)
        document = load_document(text, max_nodes=MAX_CONFIG_NODES) or {}
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror or error}", source) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"cannot read: not UTF-8 ({error.reason})", source) from None
    except yaml.YAMLError as error:
        reason, line = yaml_problem(error)
        raise ConfigError(reason, source, line) from None
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
    try:
        return kind(**values)
    except ConfigError as error:  # a section's own check (__post_init__) names its key
        raise ConfigError(f"{where}.{error.reason}" if where else error.reason) from None


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
