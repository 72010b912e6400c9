"""Shared fixtures for the whole suite: chain back-ends and a running teller
(tests/support/fixtures.py), the time zone (clock.py), the web pages' teller (web.py),
Debian's chromium (browser.py), redis-server (redis.py) and a webhook receiver (webhook.py)."""

pytest_plugins = ["tests.support.fixtures", "tests.support.clock", "tests.support.web",
                  "tests.support.browser", "tests.support.redis", "tests.support.webhook"]
