"""The noise budget: the SigmaHQ profile, and what the default configuration raises."""

from __future__ import annotations

import gzip
import json
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import corpus
from socpipe.core.config import ConfigError, load_config
from socpipe.core.levels import LEVELS
from socpipe.core.resources import bundled_profile_path, bundled_rules_dir
from socpipe.daemon.runner import build_detector
from socpipe.detectors.profile import ProfileError, RuleProfile, load_profile
from socpipe.detectors.rules import CompiledRule, RuleLoadReport, load_rules
from socpipe.pipeline import main
from socpipe.scanner.run import ScanOptions, run_scan
from tests.conftest import REPO, make_rule, shared_data

SAMPLES = REPO / "samples"
LOW_RULE = (
    "title: Low Third-Party Rule\nid: 3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f\nstatus: test\n"
    "logsource: {product: linux, service: sshd}\ndetection: {k: [Accepted], condition: k}\n"
    "level: low\n"
)
CLEARTEXT = "d7fb8f0e-bd5f-45c2-b467-19571c490d7e"
MEDIUM = LEVELS.index("medium")


# --- the profile file ------------------------------------------------------------------------


def test_bundled_profile_loads_and_gives_every_choice_a_reason() -> None:
    profile = load_profile()
    assert profile.name == "sigmahq-default"
    assert profile.default.reason and all(policy.reason for policy in profile.sources)
    assert profile.disabled[CLEARTEXT].startswith("Raises on every allowed connection")
    assert all(reason for reason in [*profile.disabled.values(), *profile.excluded_tags.values()])


def test_disabled_rules_exist_in_sigmahq_with_the_titles_given() -> None:
    """A typo in an id would switch off nothing, silently."""
    sigma = shared_data("sigma")
    titles = {}
    for path in sigma.rglob("*.yml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        titles[document["id"]] = document["title"]
    listed = yaml.safe_load(bundled_profile_path().read_text(encoding="utf-8"))["disabled"]
    assert {entry["id"]: entry["title"] for entry in listed} == {
        entry["id"]: titles.get(entry["id"]) for entry in listed
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "default: required"),
        ("name: x\ndefault: {levels: {test: medium}}\n", "default.reason: required"),
        ("name: x\ndefault: {levels: {test: loud}, reason: r}\n", "default.levels.test: 'loud'"),
        (
            "name: x\ndefault: {levels: {tested: low}, reason: r}\n",
            "default.levels: unknown key(s): tested",
        ),
        (
            "name: x\ndefault: {levels: {}, reason: r}\nsource: []\n",
            "top level: unknown key(s): source",
        ),
        (
            "name: x\ndefault: {levels: {}, reason: r}\nsources: [{logsource: {}, levels: {}, reason: r}]\n",
            "sources[0].logsource: name a product, category or service",
        ),
        (
            "name: x\ndefault: {levels: {}, reason: r}\ndisabled: [{id: a}]\n",
            "disabled[0].reason: required",
        ),
        (
            "name: x\ndefault: {levels: {}, reason: r}\ndisabled: [{id: a, reason: r}, {id: a, reason: s}]\n",
            "disabled[1].id: a is listed twice",
        ),
        (
            "name: x\ndefault: {levels: {}, reason: r}\nexcluded_tags: {tag: x}\n",
            "excluded_tags: expected a list",
        ),
        ("- a list\n", "top level: expected a mapping"),
        ("name: [unclosed\n", "invalid YAML"),
    ],
)
def test_profile_problems_name_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "profile.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as raised:
        load_profile(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


# --- what a profile decides ------------------------------------------------------------------

PROFILE = textwrap.dedent(
    """\
    name: test
    default: {levels: {stable: medium, test: medium, experimental: high}, reason: r}
    sources:
      - logsource: {category: firewall}
        levels: {test: high}
        reason: r
    excluded_tags: [{tag: detection.threat-hunting, reason: hunting}]
    disabled: [{id: 0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f001, reason: noisy}]
    """
)


@pytest.fixture
def profile(tmp_path: Path) -> RuleProfile:
    path = tmp_path / "profile.yml"
    path.write_text(PROFILE, encoding="utf-8")
    return load_profile(path)


def third_party_rule(logsource: str, **changes: Any) -> CompiledRule:
    rule = make_rule("sel: {EventID: 4625}\ncondition: sel", logsource)
    fields = {"id": "5b0e4c1a-3f7d-4e2b-9a61-8d2c7f0e1b34", "source": "/opt/sigma/rules/x.yml"}
    return replace(rule, **{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "logsource", "verdict"),
    [
        ({"status": "test", "level": "medium"}, None, None),
        ({"status": "test", "level": "low"}, None, "level low, status test (at least medium"),
        (
            {"status": "experimental", "level": "medium"},
            None,
            "level medium, status experimental (at least high",
        ),
        ({"status": "experimental", "level": "high"}, None, None),
        ({"status": "deprecated", "level": "critical"}, None, "status deprecated (not run"),
        (
            {"status": "test", "level": "medium"},
            "{category: firewall}",
            "level medium, status test (at least high",
        ),
        (
            {"status": "stable", "level": "critical"},
            "{category: firewall}",
            "status stable (not run",
        ),
        (
            {"status": "test", "level": "high", "tags": ("detection.threat-hunting",)},
            None,
            "tag detection.threat-hunting: hunting",
        ),
        (
            {"status": "test", "level": "high", "id": "0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f001"},
            None,
            "disabled: noisy",
        ),
    ],
)
def test_verdicts(
    profile: RuleProfile, changes: dict, logsource: str | None, verdict: str | None
) -> None:
    rule = third_party_rule(logsource or "{product: windows, service: security}", **changes)
    decided = profile.verdict(rule)
    assert decided is None if verdict is None else decided is not None and verdict in decided


def test_project_rules_and_counted_rules_stay(profile: RuleProfile, tmp_path: Path) -> None:
    (tmp_path / "low_failed_logon.yml").write_text(
        textwrap.dedent(
            """\
            title: Failed Logon
            id: 7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09
            status: test
            logsource: {product: windows, service: security}
            detection: {sel: {EventID: 4625}, condition: sel}
            level: low
            ---
            title: Another Low Rule
            id: 2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d
            status: test
            logsource: {product: windows, service: security}
            detection: {sel: {EventID: 4740}, condition: sel}
            level: low
            ---
            title: Failed Logon Burst
            id: 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b
            correlation: {type: event_count, rules: [7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09], group-by: [user.name], timespan: 5m, condition: {gte: 5}}
            level: high
            """
        ),
        encoding="utf-8",
    )
    report = load_rules([bundled_rules_dir(), tmp_path], profile=profile)
    kept = {rule.title for rule in report.rules}
    assert "Failed Logon" in kept  # low, but the correlation counts it
    assert "Another Low Rule" not in kept
    assert [(rule.title, reason.split(" (")[0]) for rule, reason in report.switched_off] == [
        ("Another Low Rule", "level low, status test")
    ]
    # The project's rules are tested one by one: all stay, the low and experimental ones too.
    assert len(load_rules([bundled_rules_dir()]).rules) == len(report.rules) - 1


def test_rules_with_tests_beside_them_stay_wherever_they_are(
    profile: RuleProfile, tmp_path: Path
) -> None:
    # A copy of the project's rules elsewhere (another checkout, a package) stays curated...
    for name in ("crontab_replaced.yml", "crontab_replaced.tests.yml"):
        (tmp_path / name).write_bytes((bundled_rules_dir() / "linux" / name).read_bytes())
    assert [rule.title for rule in load_rules([tmp_path], profile=profile).rules] == [
        "Crontab Replaced"
    ]
    # ...and without its tests it is judged like any third-party rule (low, experimental).
    (tmp_path / "crontab_replaced.tests.yml").unlink()
    report = load_rules([tmp_path], profile=profile)
    assert report.rules == []
    assert "level low, status experimental" in report.switched_off[0][1]


def test_daemon_detect_stage_applies_the_configured_profile(tmp_path: Path) -> None:
    thirdparty = tmp_path / "thirdparty"
    thirdparty.mkdir()
    (thirdparty / "low.yml").write_text(LOW_RULE, encoding="utf-8")
    base = load_config()
    assert base.rules_profile_path() == bundled_profile_path()
    stages = replace(base.stages, rules=["rules", str(thirdparty)])
    profiled_detector = build_detector(replace(base, stages=stages))
    titles = {rule.title for rule in profiled_detector.engine.rules}
    assert "Low Third-Party Rule" not in titles and "Crontab Replaced" in titles
    unprofiled = replace(base, stages=replace(stages, rules_profile=None))
    assert unprofiled.rules_profile_path() is None
    assert "Low Third-Party Rule" in {
        rule.title for rule in build_detector(unprofiled).engine.rules
    }
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"stages\.rules_profile: .*default: required"):
        build_detector(replace(base, stages=replace(stages, rules_profile=str(broken))))
    path = tmp_path / "socpipe.yml"
    path.write_text("stages: {rules_profile: null}\n", encoding="utf-8")
    assert load_config(path).rules_profile_path() is None


# --- the SigmaHQ set over the bundled samples --------------------------------------------------


@pytest.fixture(scope="module")
def sigmahq_and_project() -> RuleLoadReport:
    """All SigmaHQ rules and the project's, loaded once (no profile)."""
    return load_rules([bundled_rules_dir(), shared_data("sigma")])


def profiled(report: RuleLoadReport) -> RuleLoadReport:
    copy = replace(report, rules=list(report.rules), switched_off=[])
    load_profile().apply(copy)
    return copy


def scan(paths: list[Path], rules: RuleLoadReport, out: Path) -> list[dict]:
    options = ScanOptions(paths=paths, out=out, progress=False, timezone="Asia/Ho_Chi_Minh")
    run_scan(options, rules=rules)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def firewall_day(tmp_path: Path) -> Path:
    """The bundled firewall sample, and beside each benign line the same host browsing over
    plain HTTP: what an agency's firewall logs every day (the bundled sample has only HTTPS,
    so on its own it shows no cleartext traffic at all)."""
    lines = []
    for line in (
        (SAMPLES / "firewall" / "fortigate-cef.log").read_text(encoding="utf-8").splitlines()
    ):
        lines.append(line)
        if "act=accept" in line and "dpt=443" in line:
            lines.append(line.replace("dpt=443", "dpt=80").replace("app=HTTPS", "app=HTTP"))
    path = tmp_path / "fortigate-day.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_profile_silences_sigmahq_cleartext_noise_and_attacks_still_raise(
    sigmahq_and_project: RuleLoadReport, tmp_path: Path
) -> None:
    log = firewall_day(tmp_path)
    everything = Counter(
        a["rule.id"] for a in scan([log], sigmahq_and_project, tmp_path / "all.jsonl")
    )
    assert everything[CLEARTEXT] > 100
    default = scan([log], profiled(sigmahq_and_project), tmp_path / "default.jsonl")
    titles = Counter(alert["rule.name"] for alert in default)
    assert CLEARTEXT not in {alert["rule.id"] for alert in default}
    # The attacks of the sample still raise, as they did with every rule loaded.
    for title in (
        "IDS Or IPS High Severity Event",
        "WAF Detected SQL Injection",
        "Network Sensor Detected Malware Or Command And Control",
        "Blocked Inbound Connection To Remote Administration Port",
    ):
        assert titles[title] >= 1, title
    assert sum(titles.values()) == sum(everything.values()) - everything[CLEARTEXT]


@pytest.fixture(scope="module")
def benign_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benign lines of the bundled samples.

    The samples are written by bench/corpus.py, which mixes attack scenarios into benign
    traffic. The generator is run again with its attack functions wrapped to record the lines
    they yield; it must reproduce the bundled files byte for byte (checked here), so the
    recorded lines are exactly the attack lines of the samples, and the rest is benign.
    """
    folder = tmp_path_factory.mktemp("samples")
    attack_lines: set[str] = set()

    def recording(attack):  # type: ignore[no-untyped-def]
        def wrapper(rng, clock) -> Iterator[str]:  # type: ignore[no-untyped-def]
            for line in attack(rng, clock):
                attack_lines.add(line)
                yield line

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        for kind, (benign, attack) in list(corpus.KINDS.items()):
            patch.setitem(corpus.KINDS, kind, (benign, recording(attack)))
        corpus.write_samples(folder / "regenerated")
    benign_folder = folder / "benign"
    for path in sorted(p for p in SAMPLES.rglob("*") if p.is_file()):
        name = path.relative_to(SAMPLES)
        regenerated = (folder / "regenerated" / name).read_bytes()
        original = path.read_bytes()
        assert regenerated == original or gzip.decompress(regenerated) == gzip.decompress(
            original
        ), name
        text = (gzip.decompress(original) if path.suffix == ".gz" else original).decode("utf-8")
        kept = [line for line in text.splitlines() if line not in attack_lines]
        target = benign_folder / (name.with_suffix("") if path.suffix == ".gz" else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(kept) + "\n", encoding="utf-8")
    assert len(attack_lines) > 50
    return benign_folder


def test_default_configuration_is_quiet_on_benign_samples(
    benign_samples: Path, sigmahq_and_project: RuleLoadReport, tmp_path: Path
) -> None:
    project = scan([benign_samples], load_rules([bundled_rules_dir()]), tmp_path / "project.jsonl")
    with_sigmahq = scan([benign_samples], profiled(sigmahq_and_project), tmp_path / "sigmahq.jsonl")
    loud = [
        (alert["rule.name"], alert["rule.level"])
        for alert in [*project, *with_sigmahq]
        if LEVELS.index(alert["rule.level"]) >= MEDIUM
    ]
    assert loud == []
    # The same configuration on the whole samples: the attacks are what raises.
    attacks = scan([SAMPLES], profiled(sigmahq_and_project), tmp_path / "whole.jsonl")
    assert sum(LEVELS.index(alert["rule.level"]) >= MEDIUM for alert in attacks) >= 40


# --- the command line --------------------------------------------------------------------------


def test_scan_applies_the_profile_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "thirdparty"
    rules.mkdir()
    (rules / "low.yml").write_text(LOW_RULE, encoding="utf-8")
    log = tmp_path / "auth.log"
    log.write_text(
        "Mar  3 10:00:00 web01 sshd[1]: Accepted publickey for deploy from 10.20.1.3 port 50000 ssh2\n"
    )
    out = tmp_path / "alerts.jsonl"
    common = ["scan", str(log), "--rules", str(rules), "--out", str(out), "--no-progress"]
    assert main(common) == 1  # the only rule is switched off: nothing left to run
    assert "1 third-party rules off" in capsys.readouterr().err
    assert main([*common, "--rules-profile", "none"]) == 0
    assert [json.loads(line)["rule.name"] for line in out.read_text().splitlines()] == [
        "Low Third-Party Rule"
    ]
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\n", encoding="utf-8")
    assert main([*common, "--rules-profile", str(broken)]) == 2
    assert "default: required" in capsys.readouterr().err
