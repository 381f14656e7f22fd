"""Coverage-guided fuzzing (atheris) of everything that reads hostile input, for a budget.

Each target (tests/fuzz/targets.py) is fuzzed from seeds made of the samples and the tests'
files (tests/fuzz/seeds.py) for SOCPIPE_FUZZ_SECONDS (20 in ``make test``; ``make fuzz``
gives 600), guided by coverage of the interpreted sources; then every input it kept is
replayed on the installed build, which with ``pip install`` is the mypyc-compiled one: the
native paths (compiled parsers, the EVTX parser, RE2, orjson) see the inputs the guided run
found. An input that fails the target is copied to tests/fuzz/crashes/<target>/ and the test
fails naming it: commit it with the fix, and tests/test_fuzz_regressions.py replays it in
every run from then on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fuzz.seeds import SEEDS, write_seeds
from tests.test_native import interpreted_copy

CRASHES = REPO / "tests" / "fuzz" / "crashes"
SECONDS = int(os.environ.get("SOCPIPE_FUZZ_SECONDS", "20"))

pytestmark = pytest.mark.fuzz


def compiled_install() -> bool:
    from importlib.util import find_spec

    spec = find_spec("socpipe.collectors.parsers.syslog")
    return spec is not None and not str(spec.origin).endswith(".py")


def replay(target: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """The inputs through the target in a process of their own, on the installed build."""
    return subprocess.run(
        [sys.executable, "-m", "tests.fuzz.replay", target, *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("target", sorted(SEEDS))
def test_fuzz(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is a test dependency: pip install -e '.[test]'")
    corpus, crashes = tmp_path / "corpus", tmp_path / "crashes"
    crashes.mkdir()
    assert write_seeds(target, corpus) > 0
    sources = [str(interpreted_copy(tmp_path / "src"))] if compiled_install() else []
    fuzzing = subprocess.run(
        [
            *(sys.executable, "-m", "tests.fuzz.run", target),
            *(str(SECONDS), str(corpus), str(crashes), *sources),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=SECONDS + 600,
        check=False,
    )
    found = sorted(crashes.iterdir())
    if found:
        kept = CRASHES / target
        kept.mkdir(parents=True, exist_ok=True)
        for crash in found:
            shutil.copy(crash, kept / crash.name)
        pytest.fail(
            f"fuzzing {target} found failing inputs, kept in {kept}: {[c.name for c in found]}"
            f"\n{fuzzing.stderr[-4000:]}"
        )
    assert fuzzing.returncode == 0, fuzzing.stderr[-4000:]
    assert "Done" in fuzzing.stderr, "the fuzzer did not run"
    replayed = replay(target, corpus)
    last = [line for line in replayed.stderr.splitlines() if line.startswith("replaying ")]
    assert replayed.returncode == 0, (
        f"the installed build failed ({replayed.returncode}) on {last[-1] if last else '?'}:"
        f"\n{replayed.stderr[-4000:]}"
    )
