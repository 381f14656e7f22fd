"""Every destination type; importing this package registers them all."""

from socpipe.forwarding.destinations import kafka, syslog, taxii, webhook

__all__ = ["kafka", "syslog", "taxii", "webhook"]
