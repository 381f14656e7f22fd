"""Detection: the Sigma engine, and the alert type it produces."""
