"""Model artifacts: what `socpipe train` writes and `socpipe scan` / the daemon load.

An artifact is a folder (format documented in docs/anomaly.md)::

    manifest.json   what the model is: kind, fields, window, threshold, training data,
                    library versions, and the SHA-256 of model.joblib
    model.joblib    the fitted objects (joblib, i.e. pickle)

Loading checks the manifest before touching the pickle: wrong format, unknown kind, a
scikit-learn other than the one that trained it, or a checksum mismatch are clear errors.
A pickle can run code when loaded, so load only artifacts your own SOC trained.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import joblib

from socpipe.core.errors import SocpipeError
from socpipe.detectors.anomaly.scorers import BehaviourScorer, LogPatternScorer, ModelInfo

FORMAT = "socpipe-anomaly-model"
FORMAT_VERSION = 1
KINDS = ("behaviour", "log_pattern")
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"


class ModelArtifactError(SocpipeError):
    """An artifact that cannot be used, with the path and the reason."""


@dataclass(frozen=True)
class Artifact:
    manifest: dict[str, Any]
    objects: dict[str, Any]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("socpipe", "scikit-learn", "numpy", "drain3"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def save_artifact(folder: Path, manifest: dict[str, Any], objects: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    joblib.dump(objects, model_path, compress=3)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        **manifest,
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
    }
    (folder / MANIFEST).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return folder


def _minor(text: str) -> str:
    return ".".join(text.split(".")[:2])


def load_artifact(folder: Path) -> Artifact:
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelArtifactError(f"{folder}: no {MANIFEST}; is this a socpipe model?") from None
    except (OSError, ValueError) as error:
        raise ModelArtifactError(f"{manifest_path}: unreadable manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelArtifactError(f"{manifest_path}: not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelArtifactError(
            f"{manifest_path}: format version {manifest.get('format_version')} is not"
            f" {FORMAT_VERSION}; retrain with this socpipe (socpipe train)"
        )
    if manifest.get("kind") not in KINDS:
        raise ModelArtifactError(f"{manifest_path}: unknown model kind {manifest.get('kind')!r}")
    trained_with = str(manifest.get("versions", {}).get("scikit-learn", "unknown"))
    running = library_versions()["scikit-learn"]
    if _minor(trained_with) != _minor(running):
        raise ModelArtifactError(
            f"{folder}: trained with scikit-learn {trained_with}, this is {running};"
            " models do not carry across versions, retrain with socpipe train"
        )
    model_path = folder / MODEL_FILE
    try:
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    except OSError as error:
        raise ModelArtifactError(f"{model_path}: {error}") from None
    if digest != manifest.get("model_sha256"):
        raise ModelArtifactError(f"{model_path}: checksum does not match the manifest")
    return Artifact(manifest, joblib.load(model_path))


def load_scorer(folder: Path) -> BehaviourScorer | LogPatternScorer:
    artifact = load_artifact(folder)
    manifest, objects = artifact.manifest, artifact.objects
    info = ModelInfo(
        id=f"anomaly-{manifest['kind']}-{manifest['name']}",
        title=manifest["title"],
        level=manifest.get("level", "medium"),
        source=str(folder),
        description=manifest.get("description", ""),
    )
    if manifest["kind"] == "behaviour":
        return BehaviourScorer(
            info, objects["model"], manifest["entity_field"], manifest["window_seconds"]
        )
    return LogPatternScorer(
        info,
        objects["vocabulary"],
        objects["transitions"],
        manifest["session_field"],
        manifest["window_seconds"],
    )
