"""``socpipe scan`` and ``socpipe rules test``: the embedded, serverless runs of parsers and
detectors over files."""
