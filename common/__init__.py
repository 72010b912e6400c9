"""What every layer needs: coin units, failpoints, the JSON depth guard, viabtc decimals,
the core's invalid-argument error and the LMDB storage layer. Imports nothing of the project."""
