"""Reference data: instruments, accounts, the commission schedule and withholding rates.

Immutable snapshots, passed to the domain as arguments (never globals).
"""
