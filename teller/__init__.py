"""teller: an OTC deposit-to-token service (config, CLI, wiring, HTTP APIs, logging)."""

__version__ = "0.1.0"
