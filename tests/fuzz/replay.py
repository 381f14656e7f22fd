"""Every input of the given files and folders through one target, in this process:
``python -m tests.fuzz.replay TARGET PATH...``. Before each input its name is written to
stderr, so when a native crash ends the process the last name says which input it was."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.fuzz.targets import TARGETS


def inputs(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        found.extend(
            sorted(item for item in path.iterdir() if item.is_file()) if path.is_dir() else [path]
        )
    return found


def main() -> None:
    target = TARGETS[sys.argv[1]]
    for path in inputs(sys.argv[2:]):
        print(f"replaying {path}", file=sys.stderr, flush=True)
        target(path.read_bytes())
    print("replayed all", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
