"""Counting the work a function does, in machine instructions, with valgrind's callgrind.

Instruction counts are deterministic (to a few hundred instructions), unlike time on a shared
machine, so "does the work grow linearly with the input?" becomes a comparison of counts: a
linear function does about four times the work on an input four times as long, a quadratic
one sixteen times. The measured calls run in a child process under callgrind; each goes
through ``sys.call_tracing``, on which collection is switched on and after which callgrind
writes the count of that call alone (``--toggle-collect``, ``--dump-after``), so neither the
interpreter's start nor building the inputs is counted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_CHILD = textwrap.dedent(
    """
    import importlib, json, sys
    plan = json.loads(open(sys.argv[1]).read())
    sys.path.insert(0, plan["root"])
    module = importlib.import_module(plan["module"])
    for case in plan["cases"]:
        for size in plan["sizes"]:
            argument = module.make_input(case, size)
            sys.call_tracing(module.work, (case, argument))
    """
)


def callgrind() -> str:
    """The valgrind command, or a skip naming what is missing."""
    found = shutil.which("valgrind")
    if found is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind): work is counted with it")
    return found


def count_instructions(
    module: str, cases: list[str], sizes: list[int], folder: Path, timeout: float
) -> dict[str, list[int]]:
    """Instructions of ``module.work(case, module.make_input(case, size))`` for each case
    and size. ``module`` is imported by the child: it names the work, never runs it here."""
    plan = folder / "plan.json"
    root = str(Path(__file__).resolve().parent.parent)
    plan.write_text(json.dumps({"module": module, "cases": cases, "sizes": sizes, "root": root}))
    script = folder / "child.py"
    script.write_text(_CHILD)
    out = folder / "callgrind.out"
    environment = dict(os.environ, PYTHONHASHSEED="0")
    result = subprocess.run(
        [
            callgrind(),
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=_PyEval_CallTracing",
            "--dump-after=_PyEval_CallTracing",
            "--dump-line=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(script),
            str(plan),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    totals = []
    number = 1
    while (dump := folder / f"callgrind.out.{number}").exists():
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                totals.append(int(line.split()[1]))
                break
        dump.unlink()
        number += 1
    assert len(totals) == len(cases) * len(sizes), "a measured call wrote no count"
    return {
        case: totals[index * len(sizes) : (index + 1) * len(sizes)]
        for index, case in enumerate(cases)
    }
