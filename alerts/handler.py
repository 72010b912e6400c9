"""Log records → alerts: every ERROR, and every line that says ``notice=WATCH``.

The codebase already marks what an operator must act on with ``notice=WATCH`` (the Go teller's
convention); this handler is how those lines reach someone who is not reading the log. The
kind of an alert is the record's ``alert_kind`` extra when the code names its condition, else
the logger plus the message template (the format string before its arguments), so one
recurring problem is one kind whatever the ids in it.
"""

from __future__ import annotations

import logging

from common.notices import WATCH, for_operator

from .center import AlertCenter


class AlertHandler(logging.Handler):
    def __init__(self, center: AlertCenter) -> None:
        super().__init__(level=logging.DEBUG)
        self.center = center

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "alerts" or record.name.startswith("alerts."):
            return  # the alert center's own lines: never alert on alerting
        template = str(record.msg)
        if not for_operator(record, template):  # decided before formatting: most lines are not
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed log call must not break logging
            message = template
        kind = getattr(record, "alert_kind", None) or alert_kind(record.name, template)
        self.center.fire(kind, message.replace(WATCH, "").strip())


def alert_kind(logger: str, template: str) -> str:
    words = template.replace(WATCH, "").split()
    return f"log:{logger}:{' '.join(words)[:80]}"
