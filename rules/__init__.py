"""Package data: socpipe's own Sigma rules, grouped by log source, each with its test events.

Read through socpipe.core.resources (importlib.resources), never through a source path."""
