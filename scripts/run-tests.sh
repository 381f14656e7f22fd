#!/usr/bin/env bash
# Runs the whole test suite with the project's virtualenv. pytest's exit code 5 ("no tests
# collected") is a failure here: a suite that ran nothing proves nothing.
set -uo pipefail
bin=${1:-.venv/bin}
"$bin/python" -m pytest "${@:2}"
status=$?
if [ "$status" -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
