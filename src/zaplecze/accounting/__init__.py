"""Accounting: lots and realised gains, valuation."""
