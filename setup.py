"""Builds socpipe: one import root, ``socpipe``, over the repository's top-level folders, with
the per-event hot path compiled by mypyc. Metadata and dependencies are in setup.cfg.

The repository root is the ``socpipe`` package (``package_dir``: ``socpipe = .``), so the
folders the product card puts at the top (collectors/, detectors/, rules/, config/,
pipeline.py, ...) install as ``socpipe.collectors``, ``socpipe.rules``, ``socpipe.pipeline``:
one import name, no generic top-level names, and the same layout in a wheel, an editable
install and the checkout. The root has no ``__init__.py`` (it would make the checkout itself a
package for pytest and mypy), so ``socpipe`` is a namespace package.

The compiled modules are plain, type-annotated Python compiled to C extensions: the same
source runs interpreted when compiling is switched off (``SOCPIPE_PURE_PYTHON=1``) or when no
C compiler is at hand (each extension is optional, so a failed build leaves the module
interpreted instead of failing the install; socpipe warns at run time).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Top-level folders that are code packages of socpipe (``socpipe.<folder>``).
CODE_FOLDERS = (
    "core",
    "collectors",
    "detectors",
    "sinks",
    "forwarding",
    "daemon",
    "scanner",
    "console",
    "commands",
)
#: Top-level folders shipped as package data, read through importlib.resources.
DATA_FOLDERS = ("rules", "config")
#: The only modules of the repository root that belong to socpipe (not setup.py, bench/...).
ROOT_MODULES = {"pipeline"}

COMPILED = [
    "core/event.py",
    "collectors/timestamps.py",
    "collectors/lines.py",
    "collectors/files.py",
    "collectors/parsers/access_line.py",
    "collectors/parsers/audit_join.py",
    "collectors/parsers/audit_stream.py",
    "collectors/parsers/base.py",
    "collectors/parsers/auditd.py",
    "collectors/parsers/cef.py",
    "collectors/parsers/generic.py",
    "collectors/parsers/jsonlines.py",
    "collectors/parsers/linux_programs.py",
    "collectors/parsers/syslog.py",
    "collectors/parsers/web.py",
    "collectors/parsers/windows.py",
    "detectors/alert.py",
    "detectors/correlation.py",
    "detectors/correlation_rules.py",
    "detectors/detection.py",
    "detectors/engine.py",
    "detectors/event_view.py",
    "detectors/logsource.py",
    "detectors/regex.py",
    "detectors/sweep.py",
    "detectors/values.py",
    "scanner/run.py",
    "scanner/summary.py",
]


def packages() -> list[str]:
    """``socpipe`` and every folder below the code and data folders that holds an
    ``__init__.py``, named as installed."""
    found = ["socpipe"]
    for folder in (*CODE_FOLDERS, *DATA_FOLDERS):
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT)
            found.append(".".join(("socpipe", *relative.parts)))
    return found


class BuildPy(build_py):
    """Leaves the repository root's other modules (setup.py) out of the ``socpipe`` package."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        if package == "socpipe":
            return [module for module in modules if module[1] in ROOT_MODULES]
        return modules


def c_compiler_available() -> bool:
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(compiler) is not None


def native_extensions() -> list[Extension]:
    if os.environ.get("SOCPIPE_PURE_PYTHON") == "1":
        return []
    if not c_compiler_available():
        print(
            "socpipe: no C compiler found: installing without the compiled hot path"
            " (socpipe works the same, about half as fast; install gcc and the Python headers"
            " for the compiled build)",
            file=sys.stderr,
        )
        return []
    from mypyc.build import mypycify

    # mypyc names a module after its path: it compiles the sources through a folder called
    # ``socpipe`` that links to the repository root, so modules get their installed names.
    stage = ROOT / "build" / "mypyc-src"
    stage.mkdir(parents=True, exist_ok=True)
    link = stage / "socpipe"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(ROOT, target_is_directory=True)
    os.environ["MYPYPATH"] = str(stage)
    try:
        extensions = mypycify(
            ["--explicit-package-bases", *(str(link / path) for path in COMPILED)],
            opt_level="3",
            group_name="socpipe.native",
        )
    finally:
        # The C sources are generated: the link is not needed to build them, and a link to
        # the root inside the root would send tools walking the tree round in circles.
        link.unlink()
    for extension in extensions:
        extension.optional = True
    return extensions


setup(packages=packages(), ext_modules=native_extensions(), cmdclass={"build_py": BuildPy})
