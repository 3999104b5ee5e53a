"""The hash chain over the journal: each entry's hash covers its content and the previous hash.

``audit verify`` recomputes it; its head can be anchored outside the system, so a changed,
deleted, inserted, reordered or truncated entry is detected.
"""

from __future__ import annotations

import hashlib

from zaplecze.ledger.model import Entry

GENESIS = "0" * 64


def _text(value: str) -> str:
    """Free text escaped so that it can never forge a separator."""
    if "\\" in value or "\x1e" in value or "\x1f" in value:
        return value.replace("\\", "\\\\").replace("\x1e", "\\x1e").replace("\x1f", "\\x1f")
    return value


def canonical_tail(entry: Entry) -> str:
    """The entry's content without its sequence number, in a fixed, unambiguous text: fields
    separated by US (0x1f), postings by RS (0x1e), every text field escaped. It does not
    depend on where the entry lands in the journal, so it can be written ahead of the chain."""
    head = "\x1f".join((
        _text(entry.key), entry.kind.value, entry.phase.value,
        entry.business_date.isoformat(),
        entry.settle_date.isoformat() if entry.settle_date else "", _text(entry.ref),
        _text(entry.account), _text(entry.target_key), _text(entry.linked_key),
        _text(entry.memo)))
    body = "\x1e".join(f"{_text(p.gl_account)}\x1f{_text(p.asset)}\x1f{p.amount}"
                        for p in entry.postings)
    return f"{head}\x1e{body}"


def chained_hash(previous: str, sequence: int, tail: str) -> str:
    """The hash of the entry at ``sequence`` whose canonical tail is ``tail``: sha256 over the
    previous hash, the sequence number, US, and the tail."""
    return hashlib.sha256(f"{previous}{sequence}\x1f{tail}".encode()).hexdigest()


def entry_hash(previous: str, entry: Entry, sequence: int) -> str:
    return chained_hash(previous, sequence, canonical_tail(entry))
