"""The streaming daemon: the detect and index stages as Kafka consumer groups, the loop that
runs them, and the state they rebuild after a restart."""

#: The stages `socpipe run --stages` can name.
STAGE_NAMES = ("detect", "index", "forward")
