"""Forwarding incidents to the national monitoring center, and indicators coming back."""
