"""What tests share: one module per job, imported by test modules and conftests alike.

Test modules (`test_*.py`) and conftests are never imported; tests/test_layout.py keeps it so.
"""
