"""What several commands share: checking paths and zones early, loading the configuration."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from socpipe.core.errors import DependencyUnavailable, UsageError

if TYPE_CHECKING:
    from socpipe.core.config import Config

CONFIG_HELP = "configuration file (default: the one shipped with socpipe)"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)


def add_rule_cache_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rule-cache",
        type=Path,
        metavar="DIR",
        help="folder of the rule cache (default: $SOCPIPE_CACHE_DIR/rules, else"
        " $XDG_CACHE_HOME/socpipe/rules, else ~/.cache/socpipe/rules)",
    )


def require_paths(paths: Iterable[Path]) -> None:
    """Every path exists; otherwise one ``UsageError`` naming all that do not."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")


def require_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown timezone {name!r} (e.g. UTC, Asia/Ho_Chi_Minh)") from None


def collector_zone(name: str | None, command: str) -> tzinfo:
    """The zone ``--timezone`` names or, when none was given, UTC standing in for it
    (``UnsetZone``: sources that need a zone are warned about), with a warning now if this
    host is not in UTC (its own logs, at least, are in its zone)."""
    if name is not None:
        return require_zone(name)
    from socpipe.collectors.zones import UnsetZone, warn_if_host_not_utc

    warn_if_host_not_utc(command)
    return UnsetZone()


def load_config(args: argparse.Namespace) -> Config:
    from socpipe.core.config import load_config as load

    return load(args.config)


@contextmanager
def elasticsearch_errors() -> Iterator[None]:
    """Elasticsearch refusing or unreachable, as a socpipe error naming which."""
    from elasticsearch import ApiError, TransportError

    try:
        yield
    except ApiError as error:
        raise DependencyUnavailable(f"elasticsearch: {error}") from None
    except TransportError as error:
        raise DependencyUnavailable(f"elasticsearch unreachable: {error}") from None
