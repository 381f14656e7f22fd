"""``socpipe scan``: the embedded, serverless run of parsers and detectors over files."""
