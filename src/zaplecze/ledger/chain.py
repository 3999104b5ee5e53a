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


def canonical(entry: Entry, sequence: int) -> bytes:
    """The entry's content in a fixed, unambiguous text: fields separated by US (0x1f),
    postings by RS (0x1e), every text field escaped."""
    head = "\x1f".join((
        str(sequence), _text(entry.key), entry.kind.value, entry.phase.value,
        entry.business_date.isoformat(),
        entry.settle_date.isoformat() if entry.settle_date else "", _text(entry.ref),
        _text(entry.account), _text(entry.target_key), _text(entry.linked_key),
        _text(entry.memo)))
    body = "\x1e".join(f"{_text(p.gl_account)}\x1f{_text(p.asset)}\x1f{p.amount}"
                        for p in entry.postings)
    return f"{head}\x1e{body}".encode()


def entry_hash(previous: str, entry: Entry, sequence: int) -> str:
    return hashlib.sha256(previous.encode() + canonical(entry, sequence)).hexdigest()
