"""The hash chain over the journal: each entry's hash covers its content and the previous hash.

``audit verify`` recomputes it; its head can be anchored outside the system, so a changed,
deleted, inserted, reordered or truncated entry is detected.
"""

from __future__ import annotations

import hashlib
import json

from zaplecze.ledger.model import Entry

GENESIS = "0" * 64


def canonical(entry: Entry, sequence: int) -> bytes:
    body = {
        "seq": sequence,
        "key": entry.key,
        "kind": entry.kind.value,
        "phase": entry.phase.value,
        "date": entry.business_date.isoformat(),
        "settle": entry.settle_date.isoformat() if entry.settle_date else None,
        "ref": entry.ref,
        "account": entry.account,
        "target": entry.target_key,
        "link": entry.linked_key,
        "memo": entry.memo,
        "postings": [[p.gl_account, p.asset, p.amount] for p in entry.postings],
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def entry_hash(previous: str, entry: Entry, sequence: int) -> str:
    return hashlib.sha256(previous.encode() + canonical(entry, sequence)).hexdigest()
