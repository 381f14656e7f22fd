"""``socpipe rules check|test``: validate rule files, and run the test events beside them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from socpipe.commands.common import require_paths

NAME = "rules"
HELP = "validate and test Sigma rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="rules_command", required=True)
    check = commands.add_parser("check", help="validate rules; list every problem")
    check.add_argument("paths", nargs="+", type=Path)
    test = commands.add_parser("test", help="run the test events beside each rule")
    test.add_argument(
        "paths", nargs="*", type=Path, help="rule files or folders (default: the shipped rules)"
    )
    coverage = commands.add_parser(
        "coverage",
        help="ATT&CK coverage per log source, from the rules' tags and tests",
        description="Write the ATT&CK techniques the rules cover, per log source, with the"
        " tests that prove it (docs/coverage.md). Exit 1 when a rule has no passing test.",
    )
    coverage.add_argument(
        "paths", nargs="*", type=Path, help="rule files or folders (default: the shipped rules)"
    )
    coverage.add_argument(
        "--out",
        type=Path,
        default=Path("docs/coverage.md"),
        help="Markdown file to write ('-' for stdout; default: %(default)s)",
    )
    coverage.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when --out is out of date or a rule has no passing test",
    )


def run(args: argparse.Namespace) -> int:
    require_paths(args.paths)
    from socpipe.core.resources import bundled_rules_dir

    paths = args.paths or [bundled_rules_dir()]
    if args.rules_command == "coverage":
        return _coverage(paths, args.out, args.check)

    from socpipe.detectors.rules import load_rules

    report = load_rules(paths)
    for problem in report.errors:
        print(f"error: {problem}")
    if args.rules_command == "check":
        for problem in report.unsupported:
            print(f"unsupported: {problem}")
        print(
            f"{report.files} files: {len(report.rules)} rules and"
            f" {len(report.correlations)} correlations compiled,"
            f" {len(report.errors)} with errors, {len(report.unsupported)} unsupported"
        )
        return 1 if report.errors else 0

    from socpipe.scanner.rule_tests import run_rule_tests

    results = run_rule_tests(report)
    failed = [result for result in results if not result.passed]
    for result in failed:
        print(f"FAIL {result.case}: {result.rule.title}: {result.reason}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or report.errors else 0


def _coverage(paths: list[Path], out: Path, check: bool) -> int:
    from socpipe.scanner.coverage import build_coverage, problems, render

    coverage = build_coverage(paths)
    text = render(coverage)
    issues = problems(coverage)
    for problem in issues:
        print(f"socpipe: {problem}", file=sys.stderr)
    if check:
        try:
            current = out.read_text(encoding="utf-8")
        except OSError:
            current = ""
        if current != text:
            print(f"socpipe: {out} is out of date; run `socpipe rules coverage`", file=sys.stderr)
            return 1
    elif str(out) == "-":
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        print(f"coverage of {coverage.rules} rules written to {out}", file=sys.stderr)
    return 1 if issues else 0
