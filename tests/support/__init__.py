"""Helpers shared by the tests, imported as ``tests.support.<module>``.

Fixtures live in the nearest conftest.py; no test imports a conftest or another test folder.
"""
