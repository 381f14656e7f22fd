"""Anomaly models: template mining, the sequence model, the behaviour model and artifacts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from bench.anomaly.hdfs import choose, evaluate, evaluate_hdfs, load_sessions, loglizer_split
from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
from socpipe.core.config import load_config
from socpipe.core.resources import bundled_rules_dir
from socpipe.daemon.runner import build_detector
from socpipe.detectors.anomaly.artifact import ModelArtifactError, ModelTrust, load_scorer
from socpipe.detectors.anomaly.scorers import BehaviourScorer
from socpipe.detectors.anomaly.selection import (
    average_precision,
    cross_validate,
    precision_at_budget,
)
from socpipe.detectors.anomaly.sequence import (
    DEFAULT_MIN_UNSEEN_STEPS,
    DEFAULT_REACH,
    TransitionModel,
)
from socpipe.detectors.anomaly.templates import TemplateVocabulary, grouping_accuracy
from socpipe.detectors.anomaly.training import train_behaviour, train_log_pattern
from socpipe.detectors.rules import load_rules
from socpipe.pipeline import main
from socpipe.scanner.run import ScanOptions, run_scan
from tests.behaviour_data import scanning_client, steady_traffic, write
from tests.conftest import shared_data


def _by_time(line: str) -> datetime:
    return datetime.strptime(line.split("[")[1][:20], "%d/%b/%Y:%H:%M:%S")


def events_of(path: Path) -> list[dict]:
    return list(FileEventReader(ParseContext(agency_id="so-tttt")).read([path]))


@pytest.fixture(scope="module")
def behaviour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("behaviour")
    training = write(folder / "train.log", steady_traffic(0, 5, seed=1))
    train_behaviour(events_of(training), folder / "model", "web", "source.ip", 3600, ["train.log"])
    return folder / "model"


def trusted(model: Path) -> ModelTrust:
    """Trust in a model these tests trained themselves, in their own folder."""
    return ModelTrust(model.parent)


def anomaly_alerts(model: Path, log: Path, tmp_path: Path) -> list[dict]:
    out = tmp_path / "alerts.jsonl"
    options = ScanOptions(paths=[log], out=out, progress=False, agency_id="so-tttt")
    run_scan(
        options,
        rules=load_rules([bundled_rules_dir()]),
        models=[load_scorer(model, trusted(model))],
    )
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    return [alert for alert in alerts if "anomaly.model" in alert]


def test_behaviour_model_stays_quiet_on_unchanged_behaviour(
    behaviour_model: Path, tmp_path: Path
) -> None:
    same = write(tmp_path / "same.log", steady_traffic(5, 1, seed=2))
    assert anomaly_alerts(behaviour_model, same, tmp_path) == []


def test_behaviour_model_flags_an_injected_change_and_says_why(
    behaviour_model: Path, tmp_path: Path
) -> None:
    lines = sorted(steady_traffic(5, 1, seed=2) + scanning_client(5), key=_by_time)
    changed = write(tmp_path / "changed.log", lines)
    [alert] = anomaly_alerts(behaviour_model, changed, tmp_path)
    assert alert["source.ip"] == "10.20.1.15"
    assert alert["rule.id"] == "anomaly-behaviour-web"
    assert alert["anomaly.score"] < alert["anomaly.threshold"]
    explained = " ".join(alert["anomaly.explanation"])
    assert "distinct_urls=500" in explained
    assert alert["anomaly.features"]["http_error_ratio"] == 1.0


def test_artifact_round_trip_keeps_model_and_manifest(behaviour_model: Path) -> None:
    manifest = json.loads((behaviour_model / "manifest.json").read_text())
    assert manifest["format"] == "socpipe-anomaly-model"
    assert manifest["kind"] == "behaviour"
    assert manifest["entity_field"] == "source.ip"
    assert "failure_ratio" in manifest["features"]
    assert manifest["training"]["first_event"].startswith("2026-03-02T08")
    assert manifest["versions"]["scikit-learn"]
    scorer = load_scorer(behaviour_model, trusted(behaviour_model))
    assert isinstance(scorer, BehaviourScorer)
    assert scorer.model.threshold == pytest.approx(manifest["threshold"])


def test_missing_incompatible_or_tampered_artifacts_are_clear_errors(
    behaviour_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelArtifactError, match=r"no manifest\.json"):
        load_scorer(tmp_path, ModelTrust(tmp_path))
    copy = tmp_path / "copy"
    copy.mkdir()
    manifest = json.loads((behaviour_model / "manifest.json").read_text())
    (copy / "model.joblib").write_bytes((behaviour_model / "model.joblib").read_bytes())
    old = {**manifest, "versions": {**manifest["versions"], "scikit-learn": "0.24.2"}}
    (copy / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(ModelArtifactError, match=r"trained with scikit-learn 0\.24\.2"):
        load_scorer(copy, trusted(copy))
    (copy / "manifest.json").write_text(json.dumps({**manifest, "model_sha256": "0" * 64}))
    with pytest.raises(ModelArtifactError, match="checksum"):
        load_scorer(copy, trusted(copy))


def test_transition_model_flags_unseen_steps_within_reach() -> None:
    model = TransitionModel(reach=1).fit([["open", "read", "close"], ["open", "close"]])
    assert model.unseen_steps(["open", "read", "close"]) == []
    # "read" then end: a session cut short.
    assert model.unseen_steps(["open", "read"]) == [("read", "$")]
    # Within reach 2, "read" was followed by the end (through "close"): tolerated.
    tolerant = TransitionModel(reach=2).fit([["open", "read", "close"]])
    assert tolerant.unseen_steps(["open", "read"]) == []
    adjacent_only = TransitionModel(reach=1).fit([["a", "b", "c"]])
    assert adjacent_only.unseen_steps(["a", "c"]) == [("a", "c")]
    assert TransitionModel(reach=2).fit([["a", "b", "c"]]).unseen_steps(["a", "c"]) == []


def test_grouping_accuracy_counts_only_exact_groups() -> None:
    truth = ["A", "A", "B", "C"]
    assert grouping_accuracy(truth, ["x", "x", "y", "z"]) == 1.0
    # A split in two: both its messages are wrong; B and C merged: both wrong.
    assert grouping_accuracy(truth, ["x", "w", "y", "y"]) == 0.0
    assert grouping_accuracy(truth, ["x", "x", "y", "y"]) == 0.5


def test_template_vocabulary_masks_variables_and_names_unseen_messages() -> None:
    vocabulary = TemplateVocabulary()
    learned = vocabulary.learn(
        [
            "Failed password for root from 10.0.0.1 port 22 ssh2",
            "Failed password for admin from 10.0.0.2 port 2222 ssh2",
        ]
    )
    assert learned[0] == learned[1]
    assert vocabulary.template_of("Kernel panic - not syncing") == "<unseen>"


def test_log_pattern_model_flags_a_session_with_new_messages(tmp_path: Path) -> None:
    normal = [
        f"Mar  3 {hour:02d}:{minute:02d}:00 web01 sshd[{100 + minute}]: Accepted publickey for deploy"
        f" from 10.20.0.{minute} port 5{minute:04d} ssh2"
        for hour in range(0, 12)
        for minute in range(0, 60, 5)
    ]
    training = write(tmp_path / "train.log", normal)
    model = tmp_path / "model"
    train_log_pattern(events_of(training), model, "ssh", "host.name", 3600, ["train.log"])
    odd = [*normal[:3], "Mar  3 00:20:00 web01 kernel: Out of memory: Killed process 4242 (java)"]
    scorer = load_scorer(model, trusted(model))
    alerts = [a for e in events_of(write(tmp_path / "odd.log", odd)) for a in scorer.observe(e)]
    alerts += scorer.flush()
    [alert] = alerts
    assert alert.entities == {"host.name": "web01"}
    assert any("<unseen>" in step for step in alert.details["anomaly.unseen_steps"])


def test_hdfs_hyper_parameters_are_chosen_without_the_test_split() -> None:
    """The choice depends on the training part alone: with every test label flipped, and with
    the test sessions gone, the same hyper-parameters are chosen; the shipped defaults are
    that choice; the one test result is within what the data allows."""
    data = shared_data("loghub", "hdfs_100k")
    result = evaluate_hdfs(data)
    assert result.train_sessions + result.test_sessions == 7940
    assert result.test_anomalies == 157
    train, test = loglizer_split(load_sessions(data))
    chosen, _ = choose(train)
    assert chosen == result.chosen
    assert (chosen.reach, chosen.min_unseen_steps) == (DEFAULT_REACH, DEFAULT_MIN_UNSEEN_STEPS)
    flipped = evaluate(train, [(sequence, not anomalous) for sequence, anomalous in test])
    assert flipped.chosen == chosen and flipped.candidates == result.candidates
    assert flipped.f1 != result.f1  # the test labels were read, after the choice
    assert 0 < result.f1 <= result.ceiling_f1 + 0.01
    # Reviewing more sessions finds more anomalies but a smaller share of what is reviewed.
    budgets = sorted(result.precision_at)
    assert [result.precision_at[b] for b in budgets] == sorted(
        (result.precision_at[b] for b in budgets), reverse=True
    )


def test_cross_validation_ranks_by_f1_then_ranking_and_never_fits_on_anomalies() -> None:
    normal = [["a", "b", "c"], ["a", "c"], ["a", "b", "b", "c"]] * 4
    odd = [["a", "x", "c"], ["c", "a"]]
    training = [(session, False) for session in normal] + [(session, True) for session in odd]
    judged = cross_validate(training, reaches=[1, 2], min_unseen=[1, 2], folds=2)
    assert judged == sorted(judged, key=lambda item: item.rank())
    best = judged[0]
    assert best.f1 == max(item.f1 for item in judged)
    # Anomalies never teach the model: an anomaly-only step stays unseen in every fold.
    assert all(item.true_positives + item.false_negatives == 2 for item in judged)


def test_precision_at_a_budget_shares_ties_across_its_edge() -> None:
    scored = [((3, 0.0), True), ((2, 0.0), False), ((1, 0.0), True), ((1, 0.0), False)]
    assert precision_at_budget(scored, 1) == 1.0
    assert precision_at_budget(scored, 2) == 0.5
    # The third place is one of two tied sessions, one of them an anomaly: half a hit.
    assert precision_at_budget(scored, 3) == pytest.approx((1 + 0.5) / 3)
    assert average_precision([((1, 0.0), True), ((1, 0.0), False)]) == pytest.approx(2 / 3)


def test_daemon_detector_loads_the_configured_models(behaviour_model: Path, tmp_path: Path) -> None:
    base = load_config()
    stages = replace(
        base.stages,
        anomaly_models=[str(behaviour_model)],
        trusted_models_dir=str(behaviour_model.parent),
    )
    configured = replace(base, stages=stages)
    detector = build_detector(configured)
    [scorer] = detector.watchers
    assert isinstance(scorer, BehaviourScorer) and scorer.info.id == "anomaly-behaviour-web"
    broken = replace(
        base,
        stages=replace(base.stages, anomaly_models=[str(tmp_path)], trusted_models_dir="/"),
    )
    with pytest.raises(ModelArtifactError, match=str(tmp_path)):
        build_detector(broken)


def test_train_command_says_what_it_needs(tmp_path: Path) -> None:
    assert main(["train", "behaviour", "--out", str(tmp_path / "m")]) == 2
    log = write(tmp_path / "tiny.log", steady_traffic(0, 1, seed=3)[:5])
    assert (
        main(["train", "behaviour", str(log), "--out", str(tmp_path / "m"), "--window", "1x"]) == 2
    )
    # Five events make too few windows: a clear failure, no artifact.
    assert main(["train", "behaviour", str(log), "--out", str(tmp_path / "m")]) == 1
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_scan_command_uses_models_and_refuses_a_broken_one(
    behaviour_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write(tmp_path / "same.log", steady_traffic(5, 1, seed=2))
    trust = ["--trusted-models", str(behaviour_model.parent)]
    assert main(["scan", str(log), "--model", str(behaviour_model), *trust, "--no-progress"]) == 0
    assert "; 1 anomaly models" in capsys.readouterr().err
    assert main(["scan", str(log), "--model", str(tmp_path), *trust, "--no-progress"]) == 1
    assert f"{tmp_path}: no manifest.json" in capsys.readouterr().err
