"""Unit tests of the console's pure logic (no server)."""
