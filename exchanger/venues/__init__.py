"""Buy venues: where a passthrough deposit buys the token (our exchange core, or ccxt)."""
