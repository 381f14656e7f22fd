"""``socpipe rules check|test``: validate rule files, and run the test events beside them."""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> int:
    require_paths(args.paths)
    from socpipe.core.resources import bundled_rules_dir
    from socpipe.detectors.rules import load_rules

    report = load_rules(args.paths or [bundled_rules_dir()])
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
