"""Where events and alerts leave the pipeline: Elasticsearch (and, later, the national center)."""
