"""Where events and alerts are written: Elasticsearch (templates, replay-safe bulk writes,
retention) and JSON Lines files."""
