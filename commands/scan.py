"""``socpipe scan``: parse files and run the detectors in-process, with no servers."""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from socpipe.collectors.lines import DEFAULT_MAX_LINE_BYTES
from socpipe.commands.common import add_rule_cache_argument, require_paths, require_zone
from socpipe.core.errors import SocpipeError, UsageError

if TYPE_CHECKING:
    from socpipe.detectors.indicators import IndicatorStore
    from socpipe.detectors.suppression import Suppressor
    from socpipe.detectors.watcher import EventWatcher

NAME = "scan"
HELP = "scan log files with the detectors, no servers needed"
#: Exit status of a scan stopped with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from socpipe.collectors.parsers import PARSERS

    parser.add_argument("paths", nargs="+", type=Path, help="files or folders (.gz and .evtx too)")
    parser.add_argument(
        "--rules",
        action="append",
        type=Path,
        help="rule file or folder (repeatable; default: the rules shipped with socpipe)",
    )
    parser.add_argument(
        "--format", default="auto", choices=["auto", *sorted(PARSERS)], help="force one log format"
    )
    parser.add_argument("--agency", default="unknown", help="agency id stamped on every event")
    parser.add_argument("--agency-name", help="agency display name")
    parser.add_argument(
        "--timezone",
        help="zone of timestamps without offset (e.g. Asia/Ho_Chi_Minh; default: read as UTC,"
        " with a warning for each file that has such times)",
    )
    parser.add_argument("--out", type=Path, help="write alerts as JSON Lines here ('-' for stdout)")
    parser.add_argument(
        "--incidents-out",
        type=Path,
        help="write incidents (alerts grouped, see docs/correlation.md) as JSON Lines here",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        help="longer lines are truncated and tagged (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    add_rule_cache_argument(parser)
    parser.add_argument(
        "--no-rule-cache",
        action="store_true",
        help="load the rules from their files, without reading or writing the rule cache",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes that parse and match (default: 1; 0: one per CPU);"
        " alerts are the same as with one",
    )
    parser.add_argument(
        "--indicators",
        action="append",
        type=Path,
        default=[],
        help="STIX 2.1 bundle of indicators to match every event against (repeatable)",
    )
    parser.add_argument(
        "--model",
        action="append",
        type=Path,
        default=[],
        help="anomaly model folder from `socpipe train` (repeatable); it must be inside"
        " --trusted-models or have its SHA-256 given with --model-sha256",
    )
    parser.add_argument(
        "--trusted-models",
        type=Path,
        metavar="DIR",
        help="load models from inside this folder (writable by its owner only)",
    )
    parser.add_argument(
        "--model-sha256",
        action="append",
        default=[],
        metavar="HEX",
        help="load a model whose model.joblib has this SHA-256, as `socpipe train` printed it"
        " (repeatable)",
    )
    parser.add_argument(
        "--suppressions",
        type=Path,
        help="suppressions exported from the console (/suppressions/export.json): matching"
        " alerts are counted instead of written",
    )
    parser.add_argument(
        "--rules-profile",
        metavar="FILE|none",
        help="which third-party (SigmaHQ) rules run: levels and statuses per log source,"
        " rules switched off (default: the profile shipped with socpipe; 'none' runs them all)",
    )


def run(args: argparse.Namespace) -> int:
    profile_path = _profile_path(args.rules_profile)
    extra = [args.suppressions] if args.suppressions else []
    extra += [args.trusted_models] if args.trusted_models else []
    require_paths([*args.paths, *(args.rules or []), *args.model, *args.indicators, *extra])
    if profile_path is not None:
        require_paths([profile_path])
    for digest in args.model_sha256:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise UsageError(f"--model-sha256 {digest[:80]!r} is not a SHA-256 (64 hex digits)")
    require_inputs(args.paths)
    if args.timezone is not None:
        require_zone(args.timezone)
    if args.max_line_bytes < 1024:
        raise UsageError("--max-line-bytes must be at least 1024")
    if args.jobs < 0:
        raise UsageError("--jobs must be 0 (one per CPU) or more")

    from socpipe.core.resources import bundled_profile_path, bundled_rules_dir
    from socpipe.scanner.run import ScanOptions, run_scan

    rule_paths = args.rules or [bundled_rules_dir()]
    if args.rules_profile is None:
        profile_path = bundled_profile_path()
    if args.no_rule_cache:
        from socpipe.detectors.profile import load_profile
        from socpipe.detectors.rules import load_rules

        profile = load_profile(profile_path) if profile_path is not None else None
        report = load_rules(rule_paths, profile=profile)
    else:
        from socpipe.detectors.rule_cache import RuleCache

        report = RuleCache(args.rule_cache).load(rule_paths, profile_path=profile_path)
    for problem in report.errors:
        print(f"socpipe: rule skipped: {problem}", file=sys.stderr)
    if report.switched_off:
        print(
            f"socpipe: rules profile {report.profile_name}: {len(report.switched_off):,}"
            f" third-party rules off by level, status or choice ({report.profile_source};"
            " --rules-profile none runs them all)",
            file=sys.stderr,
        )
    if not report.rules:
        raise SocpipeError("no usable rule was loaded")
    scorers = _load_models(args.model, args.trusted_models, args.model_sha256)
    indicators = _load_indicators(args.indicators)
    suppressor = _load_suppressions(args.suppressions)
    options = ScanOptions(
        paths=args.paths,
        rule_paths=rule_paths,
        format_name=args.format,
        agency_id=args.agency,
        agency_name=args.agency_name,
        timezone=args.timezone,
        out=args.out,
        incidents_out=args.incidents_out,
        max_line_bytes=args.max_line_bytes,
        progress=not args.no_progress,
        jobs=args.jobs or len(os.sched_getaffinity(0)),
        process_started=process_started(),
    )
    try:
        summary = run_scan(
            options, rules=report, models=scorers, indicators=indicators, suppressor=suppressor
        )
    except OSError as error:
        raise SocpipeError(f"scan stopped: {error}") from None
    except KeyboardInterrupt:
        kept = f"; the alerts found so far are in {args.out}" if args.out else ""
        print(f"\nsocpipe: scan interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary.render(), file=sys.stderr)
    if suppressor is not None:
        print(_suppressed_summary(suppressor), file=sys.stderr)
    if args.out and str(args.out) != "-":
        print(f"  alerts written to {args.out}", file=sys.stderr)
    if args.incidents_out and str(args.incidents_out) != "-":
        print(f"  incidents written to {args.incidents_out}", file=sys.stderr)
    return 0


def process_started() -> float | None:
    """When this process started, on the ``time.monotonic()`` clock (10 ms resolution), from
    the kernel's record of it (Linux); None elsewhere. The interpreter's own start-up and the
    imports before any socpipe code runs are part of what a user waits for."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            # Fields after the command name (which may hold spaces and parentheses).
            fields = handle.read().rsplit(b")", 1)[1].split()
        started_after_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        running_for = time.clock_gettime(time.CLOCK_BOOTTIME) - started_after_boot
    except (OSError, IndexError, ValueError, AttributeError):
        return None
    return time.monotonic() - max(running_for, 0.0)


def require_inputs(paths: list[Path]) -> None:
    """Every path named is a regular file or a folder: a FIFO would block the scan and
    /dev/zero never end (inside folders, such entries are reported and skipped)."""
    refused = []
    for path in paths:
        mode = path.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            refused.append(str(path))
    if refused:
        raise UsageError(f"not a regular file or folder: {', '.join(refused)}")


def _profile_path(value: str | None) -> Path | None:
    """The file ``--rules-profile`` names; None for the shipped profile or for ``none``."""
    if value is None or value.lower() == "none":
        return None
    return Path(value)


def _load_suppressions(path: Path | None) -> Suppressor | None:
    if path is None:
        return None
    from socpipe.detectors.suppression import Suppressor, load_file

    return Suppressor(load_file(path))


def _suppressed_summary(suppressor: Suppressor) -> str:
    counts = suppressor.counts()
    lines = [
        f"  suppressed: {sum(counts.values())} alerts by {len(counts)} of"
        f" {len(suppressor)} suppressions"
    ]
    names = {s.id: s.rule_name or s.rule_id for s in suppressor.suppressions}
    lines += [f"    {count:>7}  {names[ident]} ({ident})" for ident, count in counts.most_common(5)]
    return "\n".join(lines)


def _load_models(
    paths: list[Path], trusted_dir: Path | None, digests: list[str]
) -> list[EventWatcher]:
    """Anomaly models; scikit-learn is imported only when one is given."""
    if not paths:
        return []
    from socpipe.detectors.anomaly.artifact import ModelTrust, load_scorer

    trust = ModelTrust(trusted_dir, frozenset(digest.lower() for digest in digests))
    return [load_scorer(path, trust) for path in paths]


def _load_indicators(paths: list[Path]) -> IndicatorStore | None:
    """The indicators of STIX bundle files, or None when no file was given."""
    if not paths:
        return None
    from socpipe.detectors.indicators import load_bundle_files

    return load_bundle_files(paths)
