"""Logging set-up: stdout always, plus ``logfile`` if set; SIGHUP reopens the file.

Lines carry the level and the module; problems are ERROR, and anything an operator must act on
says ``notice=WATCH`` (the Go teller's convention, easy to grep or alert on).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def setup_logging(debug: bool, logfile: str | None) -> logging.handlers.WatchedFileHandler | None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(stream)
    # Third-party chatter stays at INFO even in debug mode.
    for noisy in ("urllib3", "web3", "waitress", "BitcoinRPC", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.INFO if not debug else logging.WARNING)
    file_handler = None
    if logfile:
        file_handler = logging.handlers.WatchedFileHandler(logfile)
        file_handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(file_handler)
    return file_handler


def reopen(handler: logging.handlers.WatchedFileHandler | None) -> None:
    """Reopen the log file (after logrotate moved it), as the Go teller did on SIGHUP."""
    if handler is None:
        return
    handler.acquire()
    try:
        if handler.stream:
            handler.stream.close()
        handler.stream = handler._open()
    finally:
        handler.release()
