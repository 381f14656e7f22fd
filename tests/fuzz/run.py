"""One fuzzing run: ``python -m tests.fuzz.run TARGET SECONDS CORPUS CRASHES [SOURCES]``.

atheris (libFuzzer for Python) mutates the inputs in CORPUS, guided by the lines of socpipe
(and of PyYAML and pySigma for rules) each input reaches, for SECONDS; new interesting
inputs are added to CORPUS, and an input that makes the target fail is written to CRASHES.
Coverage is measured on Python code: with a compiled install, pass SOURCES, a copy of the
sources without their compiled modules (tests.test_native.interpreted_copy), to guide on
them; the corpus is then replayed on the compiled build (tests.fuzz.replay).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    target, seconds, corpus, crashes = sys.argv[1:5]
    if len(sys.argv) > 5:
        sys.path.insert(0, sys.argv[5])
    import atheris

    with atheris.instrument_imports(include=["socpipe", "sigma", "yaml"]):
        from tests.fuzz.targets import TARGETS
    atheris.Setup(
        [
            sys.argv[0],
            corpus,
            f"-max_total_time={seconds}",
            f"-seed={os.environ.get('SOCPIPE_FUZZ_SEED', '1')}",
            "-timeout=30",  # one input taking longer is a failure (a hang)
            "-rss_limit_mb=3072",
            "-max_len=65536",
            f"-artifact_prefix={crashes}/",
            "-print_final_stats=1",
        ],
        TARGETS[target],
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()
