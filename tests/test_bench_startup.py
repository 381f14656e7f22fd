"""The start-up benchmark's pure parts: reading ``-X importtime``, summing it, finding who
imported what, and the medians of the runs."""

from __future__ import annotations

import pytest

from bench.measure import Run
from bench.startup import (
    Import,
    by_package,
    entry_module,
    import_chain,
    median_packages,
    memory_modules,
    parse_importtime,
    summarise,
    timing_rows,
)

# A run of `python -X importtime` in miniature, the program's own output mixed in.
IMPORTTIME = """import time: self [us] | cumulative | imported package
import time:       113 |        113 |   _io
import time:       238 |        621 | _frozen_importlib_external
socpipe scan summary
import time:       300 |        300 |       scipy
import time:       500 |        500 |       scipy.sparse._base
import time:      2000 |       2800 |     scipy.sparse
import time:       400 |        400 |     sklearn
import time:      1000 |       4200 |   sklearn.ensemble
import time:        40 |         40 |   numpy
import time:        60 |       4300 | detectors.anomaly.artifact
import time:       100 |        100 |     sigma
import time:       900 |       1000 |   sigma.rule
import time:       700 |       1700 | pipeline
import time:     30000 |      30000 | json
"""


def test_importtime_lines_are_parsed_with_their_depth_and_others_skipped() -> None:
    imports = parse_importtime(IMPORTTIME)
    assert len(imports) == 13
    assert imports[0] == Import("_io", 113, 113, 1)
    assert imports[2] == Import("scipy", 300, 300, 3)
    assert imports[-2] == Import("pipeline", 700, 1700, 0)


def test_own_time_is_summed_per_top_level_package_largest_first() -> None:
    assert by_package(parse_importtime(IMPORTTIME)) == {
        "json": 30000,
        "scipy": 2800,
        "sklearn": 1400,
        "sigma": 1000,
        "pipeline": 700,
        "_frozen_importlib_external": 238,
        "_io": 113,
        "detectors": 60,
        "numpy": 40,
    }


def test_the_chain_of_importers_goes_up_to_the_programs_own_import() -> None:
    imports = parse_importtime(IMPORTTIME)
    # Python prints a package's own line under the submodule whose import brought it in.
    assert import_chain(imports, "scipy") == [
        "scipy",
        "scipy.sparse",
        "sklearn.ensemble",
        "detectors.anomaly.artifact",
    ]
    assert import_chain(imports, "sigma") == ["sigma", "sigma.rule", "pipeline"]
    assert import_chain(imports, "pipeline") == ["pipeline"]
    assert import_chain(imports, "torch") == []


def test_a_package_is_imported_alone_through_its_outermost_module_in_the_chain() -> None:
    imports = parse_importtime(IMPORTTIME)
    assert entry_module(imports, "scipy") == "scipy.sparse"
    assert entry_module(imports, "sigma") == "sigma.rule"
    assert entry_module(imports, "torch") is None


def test_memory_is_measured_for_the_programs_heavy_imports_then_the_slow_packages() -> None:
    imports = parse_importtime(IMPORTTIME.replace("4300 |", "43000 |"))
    # The program's own import of 20 ms or more first, then the slowest packages' entries;
    # the standard library (json here, slowest of all) never.
    assert memory_modules(imports, by_package(imports)) == [
        "detectors.anomaly.artifact",
        "scipy.sparse",
        "sklearn.ensemble",
        "sigma.rule",
        "pipeline",
    ]


def test_median_of_packages_counts_a_run_without_the_package_as_zero() -> None:
    assert median_packages([{"a": 10, "b": 5}, {"a": 30}, {"a": 20, "b": 7}]) == {
        "a": 20,
        "b": 5,
    }


def test_runs_summarise_to_the_first_run_apart_and_the_medians() -> None:
    runs = [Run(3.0, 2.5, 160), Run(1.0, 0.9, 150), Run(2.0, 1.8, 170), Run(1.5, 1.2, 155)]
    summary = summarise(runs)
    assert (summary.first, summary.median, summary.fastest, summary.slowest) == (
        3.0,
        1.75,
        1.0,
        3.0,
    )
    assert (summary.cpu_median, summary.rss_median) == (1.5, 157.5)
    assert timing_rows({"`socpipe scan`": summary})[2] == (
        "| `socpipe scan` | **1.75** | 3.00 | 1.00 | 3.00 | 1.50 | 158 |"
    )
    with pytest.raises(ValueError):
        summarise([])
