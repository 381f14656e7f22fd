"""Model artifacts: what `socpipe train` writes and `socpipe scan` / the daemon load.

An artifact is a folder (format documented in docs/anomaly.md)::

    manifest.json   what the model is: kind, fields, window, threshold, training data,
                    library versions, and the SHA-256 of model.joblib
    model.joblib    the fitted objects (joblib, i.e. pickle)

Loading checks the manifest before touching the pickle: wrong format, unknown kind, a
scikit-learn other than the one that trained it, or a checksum mismatch are clear errors.

A pickle runs code when it is loaded, and the checksum in ``manifest.json`` comes from the same
folder as the pickle, so it proves only that the two were written together. Loading therefore
also needs trust from elsewhere (``ModelTrust``): the folder lies inside a trusted folder the
operator configured, which nobody but its owner (root or the user running socpipe) can write,
or the model file's SHA-256 was given out of band (on the command line or in the
configuration, as ``socpipe train`` printed it where the model was trained). Anything else
is refused before the pickle is opened. The bytes that were hashed are the bytes unpickled
(read once), so the file cannot be swapped in between.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import joblib

from socpipe.core.errors import SocpipeError
from socpipe.detectors.anomaly.scorers import (
    DEFAULT_MAX_BYTES,
    BehaviourScorer,
    LogPatternScorer,
    ModelInfo,
)

FORMAT = "socpipe-anomaly-model"
FORMAT_VERSION = 1
KINDS = ("behaviour", "log_pattern")
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"
MAX_MANIFEST_BYTES = 1 << 20
MAX_MODEL_BYTES = 1 << 30


class ModelArtifactError(SocpipeError):
    """An artifact that cannot be used, with the path and the reason."""


@dataclass(frozen=True)
class ModelTrust:
    """Where trust in a model comes from: a trusted folder, or checksums given out of band."""

    trusted_dir: Path | None = None
    sha256: frozenset[str] = field(default_factory=frozenset)

    def refusal(self, folder: Path, digest: str) -> str | None:
        """Why the model in ``folder`` whose file hashes to ``digest`` must not be loaded."""
        if digest in self.sha256:
            return None
        if self.trusted_dir is None:
            return (
                "refusing to load: a model is a pickle, and loading one runs its code; the"
                " checksum in its manifest comes from the same folder and proves nothing."
                " Give the model file's SHA-256 as printed by `socpipe train` where it was"
                " trained (--model-sha256 / stages.anomaly_model_sha256), or keep your"
                " models in a trusted folder (--trusted-models / stages.trusted_models_dir)"
            )
        return _untrusted_place(folder, self.trusted_dir)


def _untrusted_place(folder: Path, trusted_dir: Path) -> str | None:
    """Why ``folder`` is not a safe place inside ``trusted_dir``, or None."""
    root = trusted_dir.resolve()
    place = folder.resolve()
    if place != root and root not in place.parents:
        return f"refusing to load: not inside the trusted models folder {root}"
    # Every step from the trusted folder down to the files: one writable by someone else
    # would let that someone swap the model.
    below = [parent for parent in reversed(place.parents) if root in parent.parents]
    steps = dict.fromkeys([root, *below, place, place / MANIFEST, place / MODEL_FILE])
    for path in steps:
        try:
            info = path.lstat()
        except OSError as error:
            return f"{path}: {error.strerror or error}"
        if stat.S_ISLNK(info.st_mode):
            return f"refusing to load: {path} is a symbolic link"
        if info.st_uid not in (0, os.geteuid()):
            return f"refusing to load: {path} belongs to user {info.st_uid}, not root or us"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"refusing to load: {path} is writable by its group or others"
    return None


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


def _read(path: Path, limit: int) -> bytes:
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ModelArtifactError(f"{path}: larger than {limit >> 20} MiB")
    return data


def load_artifact(folder: Path, trust: ModelTrust) -> Artifact:
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(_read(manifest_path, MAX_MANIFEST_BYTES).decode("utf-8"))
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
        data = _read(model_path, MAX_MODEL_BYTES)
    except OSError as error:
        raise ModelArtifactError(f"{model_path}: {error}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.get("model_sha256"):
        raise ModelArtifactError(f"{model_path}: checksum does not match the manifest")
    if refusal := trust.refusal(folder, digest):
        raise ModelArtifactError(f"{folder}: {refusal}")
    return Artifact(manifest, joblib.load(io.BytesIO(data)))


def model_sha256(folder: Path) -> str:
    """The SHA-256 of a model's file: what to give as its out-of-band checksum."""
    return hashlib.sha256(_read(folder / MODEL_FILE, MAX_MODEL_BYTES)).hexdigest()


def load_scorer(
    folder: Path, trust: ModelTrust, max_bytes: int = DEFAULT_MAX_BYTES
) -> BehaviourScorer | LogPatternScorer:
    """The scorer of the model in ``folder``, whose open windows hold at most ``max_bytes``."""
    artifact = load_artifact(folder, trust)
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
            info, objects["model"], manifest["entity_field"], manifest["window_seconds"], max_bytes
        )
    return LogPatternScorer(
        info,
        objects["vocabulary"],
        objects["transitions"],
        manifest["session_field"],
        manifest["window_seconds"],
        max_bytes,
    )
