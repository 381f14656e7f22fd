"""A model is a pickle: it is loaded only from a trusted folder or with a checksum given out
of band, never on the word of its own manifest (issue 20: ``--model`` from an untrusted folder
was code execution)."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest

from socpipe.detectors.anomaly.artifact import (
    ModelArtifactError,
    ModelTrust,
    library_versions,
    load_scorer,
    model_sha256,
)
from socpipe.detectors.anomaly.scorers import BehaviourScorer
from socpipe.detectors.anomaly.training import train_behaviour
from socpipe.pipeline import main
from tests.behaviour_data import steady_traffic, write
from tests.test_anomaly import events_of


class _Payload:
    """Unpickling this creates a file: what an attacker's model would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def malicious_model(folder: Path, marker: Path) -> Path:
    """A model folder whose manifest is consistent with its pickle (as any attacker can make)."""
    folder.mkdir(parents=True)
    data = pickle.dumps({"model": _Payload(marker)})
    (folder / "model.joblib").write_bytes(data)
    manifest = {
        "format": "socpipe-anomaly-model",
        "format_version": 1,
        "kind": "behaviour",
        "name": "evil",
        "title": "evil",
        "entity_field": "source.ip",
        "window_seconds": 3600,
        "versions": library_versions(),
        "model_sha256": hashlib.sha256(data).hexdigest(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trusted")
    training = write(folder / "train.log", steady_traffic(0, 5, seed=1))
    train_behaviour(events_of(training), folder / "web", "web", "source.ip", 3600, ["train.log"])
    (folder / "train.log").unlink()
    return folder / "web"


def test_a_model_with_only_its_own_checksum_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    folder = malicious_model(tmp_path / "downloads" / "model", marker)
    with pytest.raises(ModelArtifactError, match="refusing to load: a model is a pickle"):
        load_scorer(folder, ModelTrust())
    assert not marker.exists()
    # Nor from a trusted folder it is not in.
    trusted = tmp_path / "models"
    trusted.mkdir()
    with pytest.raises(ModelArtifactError, match="not inside the trusted models folder"):
        load_scorer(folder, ModelTrust(trusted))
    assert not marker.exists()


def test_the_scan_command_refuses_an_untrusted_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "code-ran"
    folder = malicious_model(tmp_path / "model", marker)
    log = write(tmp_path / "a.log", steady_traffic(0, 1, seed=2)[:10])
    assert main(["scan", str(log), "--model", str(folder), "--no-progress"]) == 1
    assert "refusing to load" in capsys.readouterr().err
    assert not marker.exists()
    assert main(["scan", str(log), "--model", str(folder), "--model-sha256", "xyz"]) == 2


def test_a_checksum_given_out_of_band_is_trust(model: Path, tmp_path: Path) -> None:
    digest = model_sha256(model)
    assert isinstance(load_scorer(model, ModelTrust(sha256=frozenset({digest}))), BehaviourScorer)
    with pytest.raises(ModelArtifactError, match="refusing to load"):
        load_scorer(model, ModelTrust(sha256=frozenset({"0" * 64})))
    log = write(tmp_path / "a.log", steady_traffic(5, 1, seed=2)[:50])
    assert main(["scan", str(log), "--model", str(model), "--model-sha256", digest.upper()]) == 0


def test_a_trusted_folder_must_be_its_owners_alone(model: Path, tmp_path: Path) -> None:
    trusted = model.parent
    assert isinstance(load_scorer(model, ModelTrust(trusted)), BehaviourScorer)
    try:
        model.chmod(0o777)
        with pytest.raises(ModelArtifactError, match="writable by its group or others"):
            load_scorer(model, ModelTrust(trusted))
        model.chmod(0o755)
        (model / "model.joblib").chmod(0o664)
        with pytest.raises(ModelArtifactError, match=r"model\.joblib is writable"):
            load_scorer(model, ModelTrust(trusted))
    finally:
        model.chmod(0o755)
        (model / "model.joblib").chmod(0o644)
    # A link inside the trusted folder to a model elsewhere leads outside it.
    marker = tmp_path / "code-ran"
    outside = malicious_model(tmp_path / "elsewhere", marker)
    link = trusted / "link"
    link.symlink_to(outside)
    try:
        with pytest.raises(ModelArtifactError, match="not inside the trusted models folder"):
            load_scorer(link, ModelTrust(trusted))
    finally:
        link.unlink()
    assert not marker.exists()
