"""Coverage-guided fuzzing of what reads hostile input (tests/test_fuzz.py runs it)."""
