"""Tests of reasoning generation (a package, so its conftest never shadows tests/conftest.py)."""
