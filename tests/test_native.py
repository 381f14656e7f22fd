"""The compiled hot path (mypyc, see setup.py) against the source it was compiled from.

`pip install` compiles the parsers, the engine and correlation to C; without a compiler, or
with SOCPIPE_PURE_PYTHON=1, the same modules run interpreted. Both must raise the same alerts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

#: What `socpipe scan` needs to run from a copy of the repository.
SOURCES = ["core", "collectors", "detectors", "scanner", "commands", "sinks", "forwarding"]
SOURCES += ["daemon", "config", "rules"]


def interpreted_copy(destination: Path) -> Path:
    """The sources without their compiled extension modules, as a ``socpipe`` package folder
    that comes first on the path (the namespace package then finds its modules there)."""
    package = destination / "socpipe"
    for name in SOURCES:
        shutil.copytree(
            REPO / name, package / name, ignore=shutil.ignore_patterns("*.so", "__pycache__")
        )
    shutil.copy(REPO / "pipeline.py", package / "pipeline.py")
    return destination


def scan_samples(root: Path, out: Path) -> tuple[str, str]:
    """Scan the bundled samples with the code under ``root``: where the engine came from,
    and what the scan wrote on stderr."""
    script = (
        f"import sys; sys.path.insert(0, {str(root)!r}); "
        "import socpipe.detectors.engine, socpipe.pipeline; "
        "print(socpipe.detectors.engine.__file__, file=sys.stderr); "
        f"sys.exit(socpipe.pipeline.main(['scan', {str(REPO / 'samples')!r}, '--agency', 'so-tttt', "
        f"'--rules', {str(REPO / 'rules')!r}, '--timezone', 'Asia/Ho_Chi_Minh', '--no-progress', "
        f"'--out', {str(out)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    engine_file, _, stderr = result.stderr.partition("\n")
    return engine_file, stderr


def test_interpreted_source_raises_the_alerts_of_the_installed_build(tmp_path: Path) -> None:
    installed_out, interpreted_out = tmp_path / "installed.jsonl", tmp_path / "interpreted.jsonl"
    installed_engine, installed_stderr = scan_samples(REPO, installed_out)
    engine_file, stderr = scan_samples(interpreted_copy(tmp_path / "src"), interpreted_out)

    assert engine_file.endswith(".py") and engine_file.startswith(str(tmp_path))
    # The operator is told when the hot path runs interpreted, and only then.
    assert "hot path not compiled" in stderr
    assert ("hot path not compiled" in installed_stderr) == installed_engine.endswith(".py")
    alerts = installed_out.read_text()
    assert alerts.count("\n") > 30
    assert interpreted_out.read_text() == alerts
