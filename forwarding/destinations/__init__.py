"""Every destination type; importing this package registers them all."""

from forwarding.destinations import kafka, syslog, taxii, webhook

__all__ = ["kafka", "syslog", "taxii", "webhook"]
