"""The running services as the HTTP views see them.

``create_app`` puts the composed ``Service`` on the Flask app; views fetch it here per request,
so a view module holds no state and imports nothing of the wiring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from .config import Config
    from .service import Service

EXTENSION = "teller"


def services() -> Service:
    """The ``Service`` of the app handling the current request."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def config() -> Config:
    """The effective config of the app handling the current request."""
    return services().config
