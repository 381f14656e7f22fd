"""The ``socpipe`` command line: parses arguments, runs one command, turns errors into exit codes.

Every subcommand is a module of socpipe.commands (see its ``COMMANDS``). This is the only
place where a ``SocpipeError`` becomes a message and an exit status: 0 when the command ran,
1 when it failed, 2 for bad arguments, paths or configuration, 130 when stopped with Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from socpipe.commands import COMMANDS
from socpipe.core.errors import ConfigError, SocpipeError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: 128 + SIGINT, what shells report for a command stopped with Ctrl-C.
EXIT_INTERRUPTED = 130
#: The commands whose speed depends on the compiled hot path.
PER_EVENT_COMMANDS = ("scan", "run", "collect")
#: Commands that log their state changes and addresses at INFO by default (collectors: Kafka
#: connected, listening on...); the others log warnings and errors unless -v.
INFO_COMMANDS = ("collect",)

log = logging.getLogger("socpipe")


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("socpipe")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def hot_path_compiled() -> bool:
    """Whether `pip install` compiled the per-event modules (setup.py) or they run interpreted.
    Asked of the import system without importing the engine (that costs a tenth of a second)."""
    from importlib.util import find_spec

    spec = find_spec("socpipe.detectors.engine")
    return spec is not None and not str(spec.origin).endswith(".py")


def _warn_if_interpreted() -> None:
    # The install falls back to interpreted modules without a compiler, silently: the operator
    # should hear of the halved throughput from the tool, not from a lagging consumer group.
    if not hot_path_compiled():
        log.warning(
            "hot path not compiled: parsing and detection run interpreted, at about half the "
            "speed (install with a C compiler and without SOCPIPE_PURE_PYTHON=1; README, "
            "'Compiled hot path')"
        )


class _VersionAction(argparse.Action):
    """``--version``, reading the installed version only when asked (it costs an import)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_arguments: object) -> None:
        print(f"socpipe {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="socpipe", description="SOC log pipeline")
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines on stderr as text, or as one JSON object each (for log shippers)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"socpipe.commands.{name}")
        command = commands.add_parser(
            module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP)
        )
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    if args.command in PER_EVENT_COMMANDS:
        _warn_if_interpreted()
    try:
        status: int = args.handler(args)
    except SocpipeError as error:
        label = "config error" if isinstance(error, ConfigError) else "error"
        _report(args, f"socpipe: {label}: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        _report(args, "socpipe: interrupted")
        return EXIT_INTERRUPTED
    return status


def _configure_logging(args: argparse.Namespace) -> None:
    """One place for every command: level and format of the lines on stderr."""
    quiet = args.command not in INFO_COMMANDS and not args.verbose
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, handlers=[handler])


def _report(args: argparse.Namespace, message: str) -> None:
    """The last word of a failed command: a log record when logs are JSON, so that a log
    shipper reading stderr gets it; else a plain line."""
    if args.log_format == "json":
        log.error(message)
    else:
        print(message, file=sys.stderr)


class JsonLogFormatter(logging.Formatter):
    """A log record as one line of strict JSON: ``time`` (UTC, ISO 8601), ``level``,
    ``logger``, ``message`` and, for an exception, ``exception``. Messages carry log content
    (a sender's address, a file name): strict JSON keeps any of it parseable."""

    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        from socpipe.core import jsontext

        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[
                :-6
            ]
            + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return jsontext.dumps(document).decode()


if __name__ == "__main__":
    sys.exit(main())
