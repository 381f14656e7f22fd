"""``socpipe run``: the daemon's stages as Kafka consumer groups, until SIGTERM."""

from __future__ import annotations

import argparse

from socpipe.commands.common import add_config_argument, load_config
from socpipe.core.errors import UsageError
from socpipe.daemon import STAGE_NAMES

NAME = "run"
HELP = "run the daemon stages"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--stages", default="detect,index", help="comma-separated: detect,index,forward"
    )


def run(args: argparse.Namespace) -> int:
    names = [name.strip() for name in args.stages.split(",") if name.strip()]
    unknown = sorted(set(names) - set(STAGE_NAMES))
    if unknown or not names:
        raise UsageError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGE_NAMES)}")
    from socpipe.daemon import runner

    runner.run(load_config(args), names)
    return 0
