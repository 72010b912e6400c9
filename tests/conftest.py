"""Shared fixtures for the whole suite: chain back-ends and a running teller
(tests/support/fixtures.py), the time zone (clock.py), the web pages' teller (web.py),
Debian's chromium (browser.py), redis-server (redis.py), a webhook receiver (webhook.py)
and a `teller core run` subprocess (core_process.py)."""

pytest_plugins = ["tests.support.fixtures", "tests.support.clock", "tests.support.web",
                  "tests.support.browser", "tests.support.redis", "tests.support.webhook",
                  "tests.support.core_process"]
