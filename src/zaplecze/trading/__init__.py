"""Trade capture: rows and messages become validated trades, trades become ledger entries."""
