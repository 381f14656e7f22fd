"""Files socpipe ships with: the bundled rules, the Sigma field mappings, the Elasticsearch
index templates and the default configuration.

They are package data (``socpipe.rules``, ``socpipe.config``) found through
``importlib.resources``, so a wheel, an editable install and a source checkout find the same
files wherever the command runs. They are returned as real paths because the loaders walk
folders and name files in their messages; socpipe is never run from a zip archive.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from socpipe.core.errors import ResourceError

RULES_PACKAGE = "socpipe.rules"
CONFIG_PACKAGE = "socpipe.config"


def package_path(package: str, *parts: str) -> Path:
    """The path of a shipped resource; a ``ResourceError`` when the installation lacks it."""
    try:
        root = resources.files(package)
    except ModuleNotFoundError as error:
        raise ResourceError(
            f"package data {package} is not installed ({error}); reinstall socpipe"
        ) from None
    path = Path(str(root.joinpath(*parts)))
    if not path.exists():
        raise ResourceError(
            f"{'/'.join(parts) or package} is missing from {root}; reinstall socpipe"
        )
    return path


def bundled_rules_dir() -> Path:
    """The project's own Sigma rules."""
    return package_path(RULES_PACKAGE)


def field_mappings_dir() -> Path:
    """The pySigma processing pipelines that map Sigma field names to socpipe's events."""
    return package_path(CONFIG_PACKAGE, "field-mappings")


def bundled_profile_path() -> Path:
    """Which SigmaHQ rules run by default, and why (the noise budget)."""
    return package_path(CONFIG_PACKAGE, "sigmahq-profile.yml")


def templates_dir() -> Path:
    """The composable Elasticsearch index templates."""
    return package_path(CONFIG_PACKAGE, "elasticsearch")


def default_config_path() -> Path:
    """The default daemon configuration, every key documented."""
    return package_path(CONFIG_PACKAGE, "socpipe.yml")
