"""The streaming daemon: configuration, Kafka stages, process lifecycle and metrics."""
