"""The bottom layer: what every other layer shares (the event and envelope, configuration,
metrics, errors, resources). It imports nothing else of socpipe."""
