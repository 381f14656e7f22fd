"""Forwarding alerts to the national monitoring center: destinations (TAXII, CEF syslog over
TLS, HTTPS webhook, Kafka), policies, minimisation and delivery. The indicators the center
sends back are matched by socpipe.detectors.indicators."""
