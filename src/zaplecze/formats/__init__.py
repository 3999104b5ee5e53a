"""Readers and writers of outside formats: the book folder's CSV, FIX, Ledger/Beancount text."""
