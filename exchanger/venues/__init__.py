"""Buy venues for passthrough deposits: the interface (base.py), our exchange core (core.py),
any ccxt exchange (ccxt_venue.py)."""
