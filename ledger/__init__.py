"""Deposit records: the record and its key, statuses and allowed transitions, the
compare-and-set store, the rate snapshot, payouts and accounting."""
