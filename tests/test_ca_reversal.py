"""Reversal of an applied corporate action, through the command line, on SQLite and PostgreSQL.

Over the golden book (see tests/test_ca_desk.py), three events applied by end of day, each on
a security nobody trades in July 2024:

- ``PKO-DVCA-2024-1``: the announced PKO dividend (MT564, computed by alice, approved by bob):
  ex Mon 07-15, record 07-16, pay Thu 07-25, PLN 5.47 a share, 19% withheld: C01 500 shares
  gross 2,735.00, net 2,215.35; C02 300 shares gross 1,641.00, net 1,329.21;
- ``PZU-SPLIT-2024`` (corporate_actions.csv): PZU 2 for 1, ex Wed 07-17: C02 400 → 800,
  H01 2,000 → 4,000, the lots' cost unchanged;
- ``CDR-BONUS-2024`` (corporate_actions.csv): a CD Projekt stock dividend of 3 for 40, ex Thu
  07-18, pay Fri 07-26, fractions paid at 120.00: H01 600 → +45; C01 20 → 1.5, so +1 share and
  0.5 × 120.00 = 60.00 PLN cash in lieu on the pay date.

End of day runs through Tue 07-30; the open day is then Wed 07-31. carol requests each reversal
(``ca reverse``), dave approves it (``user approve``); end of day then runs through 08-02. As
of 07-31 (and 08-02) positions with their cost, cash on both bases, the trial balance and the
stock record are exactly those of the golden book where none of the three was ever announced
or loaded.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Done, pg_admin
from test_ca_desk import (
    AT_5_47,
    EVENT,
    PAY,
    THROUGH,
    Desk,
    figures,
    golden_book,
    mt564,
)
from zaplecze.services import audit_trail
from zaplecze.store.db import open_engine

SPLIT, BONUS = "PZU-SPLIT-2024", "CDR-BONUS-2024"
PZU, CDR = "PLPZU0000011", "PLOPTTC00011"
ACTIONS = ("event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,ratio_new,amount,currency,"
           "new_isin,cost_fraction,fraction_price\n"
           f"{SPLIT},SPLIT,{PZU},2024-07-17,2024-07-18,2024-07-17,1,2,,,,,\n"
           f"{BONUS},STOCK_DIVIDEND,{CDR},2024-07-18,2024-07-19,2024-07-26,40,3,,,,,120.00\n")
APPLIED_THROUGH, OPEN_DAY = "2024-07-30", "2024-07-31"
VIEWS = (("positions", "--basis", "trade"), ("positions", "--basis", "settlement"),
         ("cash", "--basis", "trade"), ("cash", "--basis", "settlement"), ("trial-balance",),
         ("stock-record",))


@pytest.fixture
def plain_url(book_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty book on the same database as ``book_url``."""
    if book_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'plain.db'}"
        return
    name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield f"{book_url.rpartition('/')[0]}/{name}"
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def views(desk: Desk, day: str) -> dict[str, list[dict[str, str]]]:
    return {" ".join(view): desk.rows(view[0], "--as-of", day, *view[1:]) for view in VIEWS}


def request_reversal(desk: Desk, event_id: str, by: str = "carol", *options: str,
                     reason: str = "announced in error") -> tuple[Done, str, str]:
    done = desk.run("ca", "reverse", event_id, "--reason", reason, "--by", by, *options)
    found = re.search(r"request (\w+) \(hash (\w{64})\)", done.stdout)
    return done, (found.group(1) if found else ""), (found.group(2) if found else "")


def approve(desk: Desk, request_id: str, digest: str, by: str) -> Done:
    return desk.run("user", "approve", request_id, "--hash", digest, "--by", by)


def reverse(desk: Desk, event_id: str, *options: str) -> None:
    done, request_id, digest = request_reversal(desk, event_id, "carol", *options)
    assert done.returncode == 0 and request_id, done
    assert f"reverse {event_id} on {OPEN_DAY}" in done.stdout, done
    refused = approve(desk, request_id, digest, "carol")  # the maker cannot decide it
    assert refused.returncode == 2 and "four_eyes_required" in refused.stderr, refused
    approved = approve(desk, request_id, digest, "dave")
    assert approved.returncode == 0 and "approved by dave" in approved.stdout, approved


def booked_keys(desk: Desk) -> list[str]:
    return [str(row[0]) for row in desk.sql("SELECT entry_key FROM entries ORDER BY sequence")]


def test_a_reversal_restores_every_account_exactly(book_url: str, golden_folder: Path,
                                                   tmp_path: Path, plain_url: str) -> None:
    desk = golden_book(book_url, golden_folder, tmp_path / "desk")
    assert desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM")).returncode == 0
    assert desk.compute(EVENT, "alice")[0].returncode == 0
    assert desk.approve(EVENT, "bob").returncode == 0
    more = tmp_path / "actions"
    more.mkdir()
    (more / "corporate_actions.csv").write_text(ACTIONS, encoding="utf-8")
    desk.run("load", str(more), check=True)
    desk.eod(APPLIED_THROUGH)

    plain = golden_book(plain_url, golden_folder, tmp_path / "plain")
    plain.eod(THROUGH)

    # Applied: the three events moved the books (checked against the plain book).
    events = desk.events()
    assert {events[e]["status"] for e in (EVENT, SPLIT, BONUS)} == {"APPLIED"}
    assert figures(desk.dividends(EVENT)) == AT_5_47
    held = {(r["account"], r["isin"]): r["quantity"] for r in
            desk.rows("positions", "--as-of", APPLIED_THROUGH, "--basis", "trade")}
    plain_held = {(r["account"], r["isin"]): r["quantity"] for r in
                  plain.rows("positions", "--as-of", APPLIED_THROUGH, "--basis", "trade")}
    assert {key: (plain_held.get(key), value) for key, value in held.items()
            if plain_held.get(key) != value} == {
        ("C02", PZU): ("400", "800"), ("H01", PZU): ("2000", "4000"),
        ("H01", CDR): ("600", "645"), ("C01", CDR): ("20", "21")}
    moved = {key: value - plain.cash(APPLIED_THROUGH)[key]
             for key, value in desk.cash(APPLIED_THROUGH).items()
             if value != plain.cash(APPLIED_THROUGH)[key]}
    assert {key: str(value) for key, value in moved.items()} == {
        ("C01", "PLN"): "2275.35", ("C02", "PLN"): "1329.21"}  # 2,215.35 + 60.00 in lieu
    applied_keys = booked_keys(desk)
    applications = desk.sql("SELECT * FROM ca_applications ORDER BY event_id")

    # Four eyes: carol requests, dave approves (carol may not); the date is the open day.
    reverse(desk, EVENT)
    reverse(desk, SPLIT, "--date", OPEN_DAY)
    reverse(desk, BONUS)
    again, _, _ = request_reversal(desk, EVENT, "erin")
    assert again.returncode == 2 and "event_already_reversed" in again.stderr, again

    reversal_keys = [key for key in booked_keys(desk) if key not in applied_keys]
    event_keys = [key for key in applied_keys
                  if key.split(":")[1] in (EVENT, SPLIT, BONUS) and key.startswith("ca")]
    assert sorted(reversal_keys) == sorted(f"reversal:{key}" for key in event_keys), (
        reversal_keys, event_keys)
    desk.eod(THROUGH)
    after_eod = booked_keys(desk)
    assert not [key for key in after_eod[len(applied_keys) + len(reversal_keys):]
                if key.startswith(("ca:", "ca-cash:", "reversal:"))], \
        "end of day applied or credited a reversed event again"
    assert desk.sql("SELECT * FROM ca_applications ORDER BY event_id") == applications

    for day in (OPEN_DAY, THROUGH):
        ours, theirs = views(desk, day), views(plain, day)
        for view in VIEWS:
            name = " ".join(view)
            assert ours[name] == theirs[name], (day, name)
    assert desk.rows("realized", "--from", "2024-06-01", "--to", OPEN_DAY) \
        == plain.rows("realized", "--from", "2024-06-01", "--to", OPEN_DAY)

    # The dividends report leaves the reversed payment out from the reversal on; a period
    # that ended before it is reported as it was.
    window = ("--from", "2024-06-01")
    assert desk.rows("dividends", *window, "--to", THROUGH) \
        == plain.rows("dividends", *window, "--to", THROUGH)
    assert figures([row for row in desk.rows("dividends", *window, "--to", APPLIED_THROUGH)
                    if row["event_id"] == EVENT]) == AT_5_47

    events = desk.events()
    assert {events[e]["status"] for e in (EVENT, SPLIT, BONUS)} == {"REVERSED"}
    assert [row[2:4] for row in desk.log() if row[1] == EVENT] == [
        ("announce", "alice"), ("compute", "alice"), ("approve", "bob"), ("reverse", "dave")]
    assert sorted(desk.sql("SELECT event_id, business_date, requested_by, approved_by, reason "
                           "FROM ca_reversals")) == sorted(
        (e, OPEN_DAY, "carol", "dave", "announced in error") for e in (EVENT, SPLIT, BONUS))

    # The journal's chain and the audit trail are intact; the trail names both people.
    verified = desk.run("audit", "verify")
    assert verified.returncode == 0 and "journal intact" in verified.stdout, verified
    engine = open_engine(desk.url)
    try:
        trail = audit_trail.verify(engine)
    finally:
        engine.dispose()
    assert trail.problems == []
    reversed_in_trail = desk.sql("SELECT actor, object_id, after FROM audit_trail WHERE action "
                                 "= 'ca.reverse' ORDER BY seq")
    assert [(row[0], row[1]) for row in reversed_in_trail] == [
        ("dave", EVENT), ("dave", SPLIT), ("dave", BONUS)]
    assert json.loads(reversed_in_trail[0][2])["requested_by"] == "carol"

    # Reversed is not booked again: computing it anew is refused.
    recompute, _ = desk.compute(EVENT, "alice")
    assert recompute.returncode == 2 and "event_already_reversed" in recompute.stderr


def test_a_reversal_before_the_pay_date_keeps_the_cash_from_being_credited(
        book_url: str, golden_folder: Path, tmp_path: Path, plain_url: str) -> None:
    desk = golden_book(book_url, golden_folder, tmp_path / "desk")
    unapproved = "PKO-DVCA-2024-2"
    assert desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM")).returncode == 0
    assert desk.announce_text("second.fin", mt564(unapproved, "PKO2-NEWM", ex="2024-07-22",
                                                  record="2024-07-23",
                                                  pay="2024-08-01")).returncode == 0
    assert desk.compute(EVENT, "alice")[0].returncode == 0
    assert desk.approve(EVENT, "bob").returncode == 0
    desk.eod("2024-07-16")  # applied on its ex date 07-15; the pay date 07-25 is to come

    # What a request must say, refused when it is made.
    for options, rule in ((("--date", "2024-07-16"), "day_already_closed"),
                          (("--date", "2024-07-18"), "dates_out_of_order")):
        done, _, _ = request_reversal(desk, EVENT, "carol", *options)
        assert done.returncode == 2 and rule in done.stderr, (options, done)
    done, _, _ = request_reversal(desk, EVENT, "carol", reason=" ")
    assert done.returncode == 2 and "missing_required_value" in done.stderr, done
    done, _, _ = request_reversal(desk, unapproved, "carol")
    assert done.returncode == 2 and "event_not_applied" in done.stderr, done
    done, _, _ = request_reversal(desk, "NO-SUCH-EVENT", "carol")
    assert done.returncode == 2 and "unknown_event" in done.stderr, done

    done, request_id, digest = request_reversal(desk, EVENT, "carol")
    assert done.returncode == 0 and "on 2024-07-17" in done.stdout, done
    # A second request for the same event may be made; once the first is approved, approving
    # it is refused and changes nothing.
    second, second_id, second_digest = request_reversal(desk, EVENT, "erin")
    assert second.returncode == 0, second
    assert approve(desk, request_id, "0" * 64, "dave").returncode == 2  # not the hash shown
    assert approve(desk, request_id, digest, "dave").returncode == 0
    keys = booked_keys(desk)
    refused = approve(desk, second_id, second_digest, "carol")
    assert refused.returncode == 2 and "event_already_reversed" in refused.stderr, refused
    assert booked_keys(desk) == keys

    desk.eod()
    plain = golden_book(plain_url, golden_folder, tmp_path / "plain")
    plain.eod()
    for day in ("2024-07-17", PAY, THROUGH):
        assert desk.cash(day) == plain.cash(day), day
        assert views(desk, day) == views(plain, day), day
    assert desk.dividends(EVENT) == []
    assert not [key for key in booked_keys(desk) if key.startswith("ca-cash:")
                and EVENT in key]
