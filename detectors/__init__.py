"""Detection: the Sigma engine and its compiler, correlation, indicator matching, anomaly
models, and the alert type they produce. Knows events (socpipe.core), never where they came
from or where alerts go."""
