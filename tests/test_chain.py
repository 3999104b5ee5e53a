"""The hash chain's canonical text: the quick path (no field needs escaping) and the escaped
path give exactly the text the rule defines, for any text in any field."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from zaplecze.ledger.chain import canonical_tail
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting
from zaplecze.store.journal import flatten

# Separators and the escape character among ordinary letters, so most examples hold some.
TEXT = st.text(alphabet=st.sampled_from(["a", "Z", "1", ":", " ", "\\", "\x1e", "\x1f", "ł"]),
               max_size=8)


def escaped(value: str) -> str:
    """The rule, written out: backslash first, then the two separators."""
    return value.replace("\\", "\\\\").replace("\x1e", "\\x1e").replace("\x1f", "\\x1f")


def by_the_rule(entry: Entry) -> str:
    head = "\x1f".join((
        escaped(entry.key), entry.kind.value, entry.phase.value, entry.business_date.isoformat(),
        entry.settle_date.isoformat() if entry.settle_date else "", escaped(entry.ref),
        escaped(entry.account), escaped(entry.target_key), escaped(entry.linked_key),
        escaped(entry.memo)))
    body = "\x1e".join(f"{escaped(p.gl_account)}\x1f{escaped(p.asset)}\x1f{p.amount}"
                        for p in entry.postings)
    return f"{head}\x1e{body}"


entries = st.builds(
    Entry,
    key=TEXT, kind=st.sampled_from(list(EntryKind)), phase=st.sampled_from(list(Phase)),
    business_date=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    postings=st.lists(st.builds(Posting, TEXT, TEXT, st.integers(-10**20, 10**20)),
                      min_size=1, max_size=6).map(tuple),
    ref=TEXT, account=TEXT,
    settle_date=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    target_key=TEXT, linked_key=TEXT, memo=TEXT)


@settings(max_examples=400, deadline=None)
@given(entries)
def test_the_canonical_text_is_the_rule_whatever_the_fields_hold(entry: Entry) -> None:
    assert canonical_tail(entry) == by_the_rule(entry)
    assert flatten(entry).tail == by_the_rule(entry)


def test_a_separator_in_a_field_cannot_forge_another_entry() -> None:
    """Two entries whose plain texts would join the same differ once escaped."""
    day = dt.date(2024, 6, 3)
    one = Entry("k", EntryKind.CASH, Phase.POSTED, day, (Posting("a\x1fb", "c", 1),), memo="m")
    other = Entry("k", EntryKind.CASH, Phase.POSTED, day, (Posting("a", "b\x1fc", 1),), memo="m")
    assert canonical_tail(one) != canonical_tail(other)
    assert canonical_tail(one) == by_the_rule(one)
