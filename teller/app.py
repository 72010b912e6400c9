"""The app factory: one Flask app per HTTP surface (public, admin, dummy).

Each surface's routes are a Blueprint in its own module (``api_public``, ``api_admin``,
``api_dummy``); this factory builds the app, puts the running services on it and lets the
module add the app-wide hooks it needs (the public API's throttle, headers and /api/status fast
path). The wiring (``teller.service``) calls it; nothing here starts a server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from . import api_admin, api_dummy, api_public
from .context import EXTENSION
from .http import install_error_handlers
from .openapi import register_openapi

if TYPE_CHECKING:
    from .config import Config
    from .service import Service

# surface -> (module with init_app, the 405 message of that surface)
SURFACES = {
    "public": (api_public, "Invalid request method"),
    "admin": (api_admin, "Method Not Allowed"),
    "dummy": (api_dummy, "Method Not Allowed"),
}


def create_app(config: Config, services: Service, surface: str = "public") -> Flask:
    """The Flask app of ``surface`` serving ``services`` (whose config is ``config``)."""
    if surface not in SURFACES:
        raise ValueError(f"unknown HTTP surface {surface!r} (one of {', '.join(SURFACES)})")
    if services.config is not config:
        raise ValueError("create_app: services were built from another config")
    module, method_not_allowed = SURFACES[surface]
    app = Flask(f"teller.{surface}", static_folder=None)
    app.extensions[EXTENSION] = services
    install_error_handlers(app, method_not_allowed)
    register_openapi(app, surface)
    module.init_app(app, services)
    return app
