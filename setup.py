"""Builds the hot path (parsing, matching, correlation) with mypyc; metadata is in setup.cfg.

The listed modules are plain, type-annotated Python compiled to C extensions: the same source
runs interpreted when compiling is switched off (``SOCPIPE_PURE_PYTHON=1``) or when no C
compiler is at hand (each extension is optional, so a failed build leaves the module
interpreted instead of failing the install).
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

COMPILED = [
    "collectors/event.py",
    "collectors/timestamps.py",
    "collectors/files.py",
    "collectors/parsers/access_line.py",
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


def native_extensions() -> list[Extension]:
    if os.environ.get("SOCPIPE_PURE_PYTHON") == "1":
        return []
    from mypyc.build import mypycify

    extensions = mypycify(COMPILED, opt_level="3")
    for extension in extensions:
        extension.optional = True
    return extensions


setup(ext_modules=native_extensions())
