#!/usr/bin/env bash
# mypy over the whole tree (the socpipe package, tests, benchmarks, scripts), zero errors.
#
# The repository root is the socpipe package (see setup.py), which mypy cannot know from the
# folders: it checks the sources through a folder named `socpipe` that links to the root, so
# modules get their installed names (socpipe.collectors...), and prints the paths back.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.venv/bin}
stage=${TMPDIR:-/tmp}/socpipe-typecheck-$(printf '%s' "$PWD" | cksum | cut -d' ' -f1)
mkdir -p "$stage"
ln -sfn "$PWD" "$stage/socpipe"
targets=()
for folder in core collectors detectors sinks forwarding daemon scanner console commands; do
  if compgen -G "$folder/*.py" >/dev/null; then targets+=("$stage/socpipe/$folder"); fi
done
targets+=("$stage/socpipe/pipeline.py" tests bench scripts)
MYPYPATH="$stage" "$bin/mypy" --explicit-package-bases "${targets[@]}" 2>&1 | sed "s|$stage/socpipe/||g"
