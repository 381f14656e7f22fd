"""Package data: the default configuration, the Sigma field mappings and the Elasticsearch
index templates, read through socpipe.core.resources (importlib.resources)."""
