"""The Zircolite comparison's pure parts: reading both tools' outputs, joining their detections,
the speed ratio and the Markdown tables; and its refusal to start when a path is missing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.measure import BenchError, Run
from bench.zircolite import (
    Detections,
    Result,
    Scenario,
    build_set,
    check_paths,
    detections_table,
    evtx_files,
    flat_name,
    overlap_rows,
    ratio_table,
    rule_differences,
    socpipe_counts,
    socpipe_detections,
    speed_ratio,
    timing_table,
    zircolite_counts,
    zircolite_detections,
)


def socpipe_alert(title: str, *events: tuple[str, str]) -> str:
    """An alert line as `socpipe scan --out` writes it, reduced to the fields read."""
    return json.dumps(
        {
            "rule.name": title,
            "rule.level": "high",
            "events": [
                {"log.file.path": path, "winlog.record_id": record, "event.code": "1"}
                for path, record in events
            ],
        }
    )


SOCPIPE_OUTPUT = [
    socpipe_alert("Whoami Execution", ("/sets/x1/Discovery__whoami.evtx", "17")),
    "",
    socpipe_alert("Whoami Execution", ("/sets/x1/Execution__wmic.evtx", "5")),
    socpipe_alert("Mimikatz Use", ("/sets/x1/Discovery__whoami.evtx", "17")),
    json.dumps({"rule.name": "Brute Force", "events": []}),
]

ZIRCOLITE_OUTPUT = [
    {
        "title": "Whoami Execution",
        "rule_level": "high",
        "count": 2,
        "matches": [
            {"OriginalLogfile": "Discovery__whoami.evtx", "EventRecordID": 17, "EventID": 1},
            {"OriginalLogfile": "Discovery__whoami.evtx", "EventRecordID": 17, "EventID": 1},
        ],
    },
    {
        "title": "Regsvr32 DNS Query",
        "count": 2,
        "matches": [
            {"OriginalLogfile": "Execution__wmic.evtx", "EventRecordID": 9},
            {"EventID": 22},
        ],
    },
]


def test_socpipe_alerts_become_rule_file_record_keys() -> None:
    found = socpipe_detections(SOCPIPE_OUTPUT)
    assert found.alerts == 4
    assert found.pairs == {
        ("Whoami Execution", "Discovery__whoami.evtx", "17"),
        ("Whoami Execution", "Execution__wmic.evtx", "5"),
        ("Mimikatz Use", "Discovery__whoami.evtx", "17"),
    }
    assert found.rules == {"Whoami Execution", "Mimikatz Use", "Brute Force"}
    assert found.events == {("Discovery__whoami.evtx", "17"), ("Execution__wmic.evtx", "5")}
    # The alert without an event names no record: counted, not joined.
    assert found.unjoinable == 1


def test_a_line_that_is_not_an_alert_is_an_error_naming_the_line() -> None:
    with pytest.raises(BenchError, match="line 2"):
        socpipe_detections([SOCPIPE_OUTPUT[0], '{"alert": 1}'])


def test_zircolite_matches_become_the_same_keys_and_duplicates_count_as_alerts() -> None:
    found = zircolite_detections(ZIRCOLITE_OUTPUT)
    # Two conversions of one rule matching one event: two alerts, one (rule, event) pair.
    assert found.alerts == 4
    assert found.pairs == {
        ("Whoami Execution", "Discovery__whoami.evtx", "17"),
        ("Regsvr32 DNS Query", "Execution__wmic.evtx", "9"),
    }
    assert found.rules == {"Whoami Execution", "Regsvr32 DNS Query"}
    assert found.unjoinable == 1


@pytest.mark.parametrize("output", [{"title": "x"}, [{"title": "x", "matches": None}], ["x"]])
def test_zircolite_output_of_another_shape_is_an_error(output: object) -> None:
    with pytest.raises(BenchError, match="Zircolite output"):
        zircolite_detections(output)


def test_overlap_counts_what_both_found_and_what_only_one_did() -> None:
    ours = socpipe_detections(SOCPIPE_OUTPUT)
    theirs = zircolite_detections(ZIRCOLITE_OUTPUT)
    assert overlap_rows("original", "merged", ours, theirs) == [
        "| original | merged | (rule, event) pairs | 1 | 2 | 1 |",
        "| original | merged | rules fired | 1 | 2 | 1 |",
        "| original | merged | events matched | 1 | 1 | 1 |",
    ]


def test_rule_differences_list_the_largest_gaps_first_and_stop_at_equal_counts() -> None:
    ours = Detections(
        3,
        frozenset({("A", "f", "1"), ("A", "f", "2"), ("B", "f", "1"), ("C", "f", "1")}),
        frozenset({"A", "B", "C"}),
    )
    theirs = Detections(
        2, frozenset({("B", "f", "1"), ("C", "f", "1"), ("C", "f", "2")}), frozenset({"B", "C"})
    )
    assert rule_differences(ours, theirs) == [
        "| rule | socpipe events | Zircolite events |",
        "| --- | ---: | ---: |",
        "| A | 2 | 0 |",
        "| C | 1 | 2 |",
    ]


SOCPIPE_SUMMARY = """socpipe scan summary
  files read        277
  events            8,255  (12,480 events/s in 0.7 s)
  not parsed        0 (kept as generic events)
  rules             2,407 loaded, 0 with errors, 0 unsupported; 0 correlations
  alerts            4,118  (high 1,200)
"""

ZIRCOLITE_LOG = """2026-12-04 14:24:45 INFO     [+] Loading ruleset(s)
2026-12-04 14:24:45 INFO     [+] 4243 rules loaded
2026-12-04 14:24:45 INFO     [+] Total events processed: [magenta]8,255[/]
2026-12-04 14:24:45 INFO     [+] Executing ruleset against unified database ([magenta]8,255[/] events)
"""


def test_event_and_rule_counts_are_read_from_each_tools_own_report() -> None:
    assert socpipe_counts(SOCPIPE_SUMMARY) == (8255, 2407)
    assert zircolite_counts(ZIRCOLITE_LOG) == (8255, 4243)
    assert socpipe_counts("socpipe: error: no such file") == (None, None)


def test_the_speed_ratio_is_zircolites_time_over_socpipes() -> None:
    assert speed_ratio(2.0, 5.0) == 2.5
    assert speed_ratio(4.0, 2.0) == 0.5
    with pytest.raises(ValueError):
        speed_ratio(0.0, 1.0)


def result(key: str, tool: str, mode: str, walls: list[float], versus: str | None = None):
    scenario = Scenario(key, "original", tool, mode, ("cmd",), Path("out"), Path("log"), versus)
    runs = [Run(wall, wall * 0.9, 100 + index) for index, wall in enumerate(walls)]
    return Result(scenario, runs, events=8255, rules=2407, files=277)


def test_tables_give_the_best_and_slowest_runs_and_the_ratio_of_each_pair() -> None:
    ours = result("s1", "socpipe", "one core", [4.0, 3.0, 5.0])
    theirs = result("z1", "Zircolite", "one core", [9.0, 12.0], versus="s1")
    assert timing_table([ours, theirs])[2:] == [
        "| original | socpipe, one core | 277 | 8,255 | 2,407 | 3.00 | 5.00 | 2,752 | 2.70 | 102 |",
        "| original | Zircolite, one core | 277 | 8,255 | 2,407 | 9.00 | 12.00 | 917 | 8.10 | 101 |",
    ]
    assert ratio_table([ours, theirs])[2:] == [
        "| original | one core | one core | 3.00 | 9.00 | **3.00x** | 2.40x |"
    ]


def test_detections_table_says_when_runs_disagreed() -> None:
    steady = result("s1", "socpipe", "one core", [1.0])
    steady.detections = socpipe_detections(SOCPIPE_OUTPUT)
    wavering = result("z1", "Zircolite", "one core", [1.0])
    wavering.detections = zircolite_detections(ZIRCOLITE_OUTPUT)
    wavering.inconsistent = 1
    assert detections_table([steady, wavering])[2:] == [
        "| original | socpipe, one core | 4 | 3 | 3 | 2 | 1 | yes |",
        "| original | Zircolite, one core | 4 | 2 | 2 | 2 | 1 | no (1 differed) |",
    ]


def samples(tmp_path: Path) -> Path:
    """A samples checkout in miniature: the same file name in two folders, other files, .git."""
    root = tmp_path / "samples"
    for relative in ("Discovery/a.evtx", "Execution/a.evtx", "b.evtx", ".git/c.evtx"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(relative.encode())
    (root / "README.md").write_text("not a log")
    return root


def test_sets_get_one_unique_flat_name_per_file_and_copy(tmp_path: Path) -> None:
    root = samples(tmp_path)
    files = evtx_files(root)
    assert [flat_name(file.relative_to(root)) for file in files] == [
        "Discovery__a.evtx",
        "Execution__a.evtx",
        "b.evtx",
    ]
    original = build_set(root, files, tmp_path / "x1", 1)
    assert sorted(p.name for p in original.iterdir() if p.name != ".complete") == [
        "Discovery__a.evtx",
        "Execution__a.evtx",
        "b.evtx",
    ]
    tenfold = build_set(root, files, tmp_path / "x10", 10)
    copied = sorted(p.relative_to(tenfold).as_posix() for p in tenfold.rglob("*.evtx"))
    assert len(copied) == 30
    assert copied[:3] == [
        "copy01/c01__Discovery__a.evtx",
        "copy01/c01__Execution__a.evtx",
        "copy01/c01__b.evtx",
    ]
    assert (tenfold / "copy10" / "c10__b.evtx").read_bytes() == b"b.evtx"


def test_a_complete_set_is_reused_and_a_set_of_other_files_is_rebuilt(tmp_path: Path) -> None:
    root = samples(tmp_path)
    files = evtx_files(root)
    target = build_set(root, files, tmp_path / "x1", 1)
    (target / "b.evtx").write_bytes(b"kept")
    build_set(root, files, target, 1)
    assert (target / "b.evtx").read_bytes() == b"kept"
    build_set(root, files[:1], target, 1)
    assert sorted(p.name for p in target.iterdir()) == [".complete", "Discovery__a.evtx"]


def test_every_missing_path_is_named_before_anything_runs(tmp_path: Path) -> None:
    args = argparse.Namespace(
        zircolite=str(tmp_path / "no-zircolite"),
        samples=str(tmp_path / "no-samples"),
        python=str(tmp_path / "no-python"),
        socpipe=str(tmp_path / "no-socpipe"),
        rules=str(tmp_path / "no-rules"),
        work=None,
    )
    with pytest.raises(BenchError) as raised:
        check_paths(args)
    message = str(raised.value)
    for option in ("--zircolite", "--samples", "--python", "--socpipe", "--rules"):
        assert option in message
    assert str(tmp_path / "no-samples") in message


def test_a_samples_folder_without_evtx_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    args = argparse.Namespace(
        zircolite=str(tmp_path),
        samples=str(tmp_path / "empty"),
        python=None,
        socpipe=None,
        rules=str(tmp_path),
        work=None,
    )
    with pytest.raises(BenchError, match=r"no \.evtx file"):
        check_paths(args)
