"""socpipe installed the way users install it: a wheel built from the checkout, put into a
fresh virtualenv, and run from a folder outside the checkout.

This is what catches a resource that only the checkout has (rules, field mappings, templates,
the default configuration): from a wheel, a missing mapping would make Windows rules load and
never match, and only a comparison with the checkout's own alerts shows it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

#: Minutes a build and install may take (mypyc compiles the hot path; pip fetches the
#: dependencies, from its cache after the first run). A bound so a stuck pip fails the test.
INSTALL_TIMEOUT_SECS = 900


def run(
    command: list[str],
    cwd: Path,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout, env=env
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def clean_copy(destination: Path) -> Path:
    """The files git tracks or would track (not ignored), as a release holds them: no
    compiled modules, no build folders, nothing else that happens to lie in the checkout."""
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(command, cwd=REPO, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if not (REPO / name).is_file():
            continue  # deleted in the checkout, not yet in git
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    return destination


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtualenv holding socpipe installed from its wheel."""
    work = tmp_path_factory.mktemp("user-install")
    source = clean_copy(work / "source")
    wheels = work / "wheels"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        cwd=work,
        timeout=INSTALL_TIMEOUT_SECS,
    )
    [wheel] = wheels.glob("socpipe-*.whl")
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        cwd=work,
        timeout=INSTALL_TIMEOUT_SECS,
    )
    return bin_dir


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder that is not the checkout, with no socpipe sources in it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_wheel_installs_one_import_root_and_runs_compiled(
    user_venv: Path, outside: Path
) -> None:
    result = run([str(user_venv / "socpipe"), "--version"], cwd=outside)
    assert result.stdout.startswith("socpipe ")
    installed_by_pip = run(
        [str(user_venv / "python"), "-m", "pip", "show", "-f", "socpipe"], cwd=outside
    ).stdout
    top_level = {
        line.strip().split("/")[0]
        for line in installed_by_pip.splitlines()
        # Files in site-packages; the entry-point script is listed as ../../../bin/socpipe.
        if line.startswith("  ") and "/" in line and ".dist-info" not in line and ".." not in line
    }
    assert top_level == {"socpipe"}, f"socpipe installed other top-level names: {top_level}"
    engine = run(
        [
            str(user_venv / "python"),
            "-c",
            "import socpipe.detectors.engine as e; print(e.__file__)",
        ],
        cwd=outside,
    ).stdout.strip()
    assert engine.endswith(".so"), f"the hot path is not compiled in the wheel: {engine}"


def test_every_shipped_rule_passes_its_tests(user_venv: Path, outside: Path) -> None:
    result = run([str(user_venv / "socpipe"), "rules", "test"], cwd=outside)
    passed, failed = result.stdout.strip().splitlines()[-1].split(", ")
    assert failed == "0 failed", result.stdout
    assert int(passed.split()[0]) > 100


def test_a_scan_gives_the_alerts_of_the_checkout(user_venv: Path, outside: Path) -> None:
    arguments = ["scan", str(REPO / "samples"), "--agency", "so-tttt", "--no-progress"]
    arguments += ["--timezone", "Asia/Ho_Chi_Minh"]
    from_wheel, from_checkout = outside / "wheel.jsonl", outside / "checkout.jsonl"
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run(
        [str(user_venv / "socpipe"), *arguments, "--out", str(from_wheel)],
        cwd=outside,
        env=environment,
    )
    run(
        [sys.executable, "-m", "socpipe.pipeline", *arguments, "--out", str(from_checkout)],
        cwd=outside,
    )
    wheel_alerts = from_wheel.read_text()
    assert wheel_alerts == from_checkout.read_text()
    alerts = [json.loads(line) for line in wheel_alerts.splitlines()]
    # Windows rules need the field mappings: without them they load and never match.
    assert any(alert["rule.ruleset"].startswith("rules/windows/") for alert in alerts)
    assert len(alerts) > 50
