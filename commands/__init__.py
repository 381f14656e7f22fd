"""The ``socpipe`` subcommands, one module each: its arguments and what it runs.

A command module imports only argparse-level things at the top; what a command needs (rule
loading, scikit-learn, Kafka, Elasticsearch) is imported inside ``run``, so a command pays
only for what it uses and a bad argument is reported before any heavy import.
"""

#: Module names under socpipe.commands, in the order ``socpipe --help`` lists them.
COMMANDS = (
    "scan",
    "rules",
    "train",
    "config",
    "setup",
    "prune",
    "run",
    "collect",
    "forward",
    "console",
    "users",
    "alerts",
)
