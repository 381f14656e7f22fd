"""Anomaly models: learned baselines that flag what rules cannot describe."""
