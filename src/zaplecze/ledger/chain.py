"""The hash chain over the journal: each entry's hash covers its content and the previous hash.

``audit verify`` recomputes it; its head can be anchored outside the system, so a changed,
deleted, inserted, reordered or truncated entry is detected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum

from zaplecze.ledger.model import Entry, EntryKind, Phase

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
    return canonical_text(entry_columns(entry),
                          [(p.gl_account, p.asset, p.amount) for p in entry.postings])


def entry_columns(entry: Entry) -> tuple[str, str, str, str, str, str, str, str, str, str]:
    """The entry's fields as plain text, in the canonical order: key, kind, phase, business
    date, settlement date ("" for none), ref, account, target key, linked key, memo."""
    return (entry.key, _PLAIN[entry.kind], _PLAIN[entry.phase], entry.business_date.isoformat(),
            entry.settle_date.isoformat() if entry.settle_date else "", entry.ref,
            entry.account, entry.target_key, entry.linked_key, entry.memo)


def canonical_text(columns: Sequence[str], postings: Sequence[tuple[str, str, int]]) -> str:
    """``canonical_tail`` from the entry's plain columns (``entry_columns``) and its postings
    as (GL account, asset, amount). Escaping changes nothing unless some field holds a
    backslash or a separator; the text is joined once, and escaped field by field only then."""
    head = "\x1f".join(columns)
    body = "\x1e".join(f"{account}\x1f{asset}\x1f{amount}" for account, asset, amount in postings)
    text = f"{head}\x1e{body}"
    if ("\\" not in text and text.count("\x1e") == len(postings)
            and text.count("\x1f") == len(columns) - 1 + 2 * len(postings)):
        return text
    head = "\x1f".join(_text(column) for column in columns)
    body = "\x1e".join(f"{_text(account)}\x1f{_text(asset)}\x1f{amount}"
                        for account, asset, amount in postings)
    return f"{head}\x1e{body}"


# Each enum member's plain text (a StrEnum's ``.value`` goes through Python code each time).
_PLAIN: dict[StrEnum, str] = {member: member.value for kind in (EntryKind, Phase)
                              for member in kind}


def chained_hash(previous: str, sequence: int, tail: str) -> str:
    """The hash of the entry at ``sequence`` whose canonical tail is ``tail``: sha256 over the
    previous hash, the sequence number, US, and the tail."""
    return hashlib.sha256(f"{previous}{sequence}\x1f{tail}".encode()).hexdigest()


def entry_hash(previous: str, entry: Entry, sequence: int) -> str:
    return chained_hash(previous, sequence, canonical_tail(entry))
