"""Shared fixtures for the whole suite (defined in tests/support/fixtures.py and clock.py)."""

pytest_plugins = ["tests.support.fixtures", "tests.support.clock"]
