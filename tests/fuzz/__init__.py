"""The schemathesis fuzz runner (run.py) and its CI run (test_fuzz.py)."""
