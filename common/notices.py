"""What an operator must see in the log: every ERROR, and every line marked ``notice=WATCH``.

The Go teller's convention, kept: code marks a line an operator must act on with
``notice=WATCH``. The console's recent events and the alert center both pick lines by this
one rule.
"""

from __future__ import annotations

import logging

WATCH = "notice=WATCH"


def for_operator(record: logging.LogRecord, message: str) -> bool:
    """True when ``record`` (whose formatted text is ``message``) is an operator's business."""
    return record.levelno >= logging.ERROR or WATCH in message
