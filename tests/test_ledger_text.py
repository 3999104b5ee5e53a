"""The Ledger and Beancount exports: golden text, the naming rule, and round trips through the
real tools (``ledger`` from Debian's package, ``beancount`` from PyPI) on random journals."""

from __future__ import annotations

import datetime
import io
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zaplecze.formats.ledger_text import (
    LEDGER_BALANCE_ARGS,
    ROOTS,
    TextPosting,
    TextTransaction,
    ledger_account_name,
    parse_ledger_balances,
    write_beancount,
    write_ledger,
)

ISIN = "US67066G1040"
D = Decimal


def P(gl_account: str, asset: str, amount: str, scale: int) -> TextPosting:
    return TextPosting(gl_account, asset, D(amount.replace("--", "")), scale)


# A deposit; a pending buy of a security with commission (its settlement only clears the flag,
# it is not a new transaction of the export); a dividend with withholding.
JOURNAL = (
    TextTransaction(1, datetime.date(2024, 3, 1), "Deposit from client C01", (
        P("client:C01", "USD", "60000.00", 2),
        P("bank:USD", "USD", "-60000.00", 2),
    )),
    TextTransaction(2, datetime.date(2024, 3, 4), "Buy 100 US67066G1040 @ 12.34", (
        P("client:C01", "USD", "-1239.00", 2),
        P("income:commission", "USD", "5.00", 2),
        P("street:NSCC", "USD", "1234.00", 2),
        P("client:C01", ISIN, "100", 0),
        P("street:NSCC", ISIN, "-100", 0),
    ), pending=True),
    TextTransaction(3, datetime.date(2024, 3, 15), 'Dividend US67066G1040 "NUVEEN" 0.50/sh', (
        P("paying-agent:USD", "USD", "-50.00", 2),
        P("client:C01", "USD", "42.50", 2),
        P("tax:withholding", "USD", "7.50", 2),
    )),
)

GOLDEN_LEDGER = """\
; Zaplecze sample

2024-03-01 * (1) Deposit from client C01
    Liabilities:Client:C01                           -60000.00 USD
    Assets:Bank:USD                                   60000.00 USD

2024-03-04 ! (2) Buy 100 US67066G1040 @ 12.34
    Liabilities:Client:C01                             1239.00 USD
    Income:Commission                                    -5.00 USD
    Assets:Street:NSCC                                -1234.00 USD
    Liabilities:Client:C01                                -100 "US67066G1040"
    Assets:Street:NSCC                                     100 "US67066G1040"

2024-03-15 * (3) Dividend US67066G1040 "NUVEEN" 0.50/sh
    Assets:Paying-Agent:USD                              50.00 USD
    Liabilities:Client:C01                              -42.50 USD
    Liabilities:Tax:Withholding                          -7.50 USD
"""

GOLDEN_BEANCOUNT = """\
option "title" "Zaplecze sample"

2024-03-01 * "Deposit from client C01"
  sequence: 1
  Liabilities:Client:C01                           -60000.00 USD
  Assets:Bank:USD                                   60000.00 USD

2024-03-04 ! "Buy 100 US67066G1040 @ 12.34"
  sequence: 2
  Liabilities:Client:C01                             1239.00 USD
  Income:Commission                                    -5.00 USD
  Assets:Street:NSCC                                -1234.00 USD
  Liabilities:Client:C01                                -100 US67066G1040
  Assets:Street:NSCC                                     100 US67066G1040

2024-03-15 * "Dividend US67066G1040 \\"NUVEEN\\" 0.50/sh"
  sequence: 3
  Assets:Paying-Agent:USD                              50.00 USD
  Liabilities:Client:C01                              -42.50 USD
  Liabilities:Tax:Withholding                          -7.50 USD

; Commodities and accounts, each dated at its first use.
2024-03-01 commodity USD
2024-03-04 commodity US67066G1040
2024-03-01 open Assets:Bank:USD
2024-03-01 open Liabilities:Client:C01
2024-03-04 open Assets:Street:NSCC
2024-03-04 open Income:Commission
2024-03-15 open Assets:Paying-Agent:USD
2024-03-15 open Liabilities:Tax:Withholding
"""

# What `ledger bal` must say of the golden journal: our balances, negated.
GOLDEN_BALANCES = {
    ("Assets:Bank:USD", "USD"): D("60000.00"),
    ("Assets:Paying-Agent:USD", "USD"): D("50.00"),
    ("Assets:Street:NSCC", "USD"): D("-1234.00"),
    ("Assets:Street:NSCC", ISIN): D("100"),
    ("Income:Commission", "USD"): D("-5.00"),
    ("Liabilities:Client:C01", "USD"): D("-58803.50"),
    ("Liabilities:Client:C01", ISIN): D("-100"),
    ("Liabilities:Tax:Withholding", "USD"): D("-7.50"),
}

NO_LEDGER = "the `ledger` binary is not on PATH (install Debian's package `ledger` to run this)"


def ledger_or_skip() -> str:
    path = shutil.which("ledger")
    if path is None:
        pytest.skip(NO_LEDGER)
    return path


def run_ledger(text: str) -> dict[tuple[str, str], Decimal]:
    binary = ledger_or_skip()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "journal.ledger"
        path.write_text(text, encoding="utf-8")
        done = subprocess.run([binary, "-f", str(path), *LEDGER_BALANCE_ARGS],
                              capture_output=True, text=True, encoding="utf-8", check=False,
                              timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return parse_ledger_balances(done.stdout)


def fold(journal: tuple[TextTransaction, ...]) -> dict[tuple[str, str], Decimal]:
    """Our own per-account, per-asset sums, negated as both exports write them; zeros left out."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for transaction in journal:
        for posting in transaction.postings:
            totals[ledger_account_name(posting.gl_account), posting.asset] -= posting.amount
    return {key: total for key, total in totals.items() if total}


# ---- golden text ------------------------------------------------------------------------------

def test_ledger_golden_text() -> None:
    out = io.StringIO()
    assert write_ledger(JOURNAL, out, title="Zaplecze sample") == 3
    assert out.getvalue() == GOLDEN_LEDGER


def test_beancount_golden_text() -> None:
    out = io.StringIO()
    assert write_beancount(JOURNAL, out, title="Zaplecze sample") == 3
    assert out.getvalue() == GOLDEN_BEANCOUNT


def test_golden_fold_is_the_expected_balances() -> None:
    assert fold(JOURNAL) == GOLDEN_BALANCES


def test_ledger_reads_the_golden_file() -> None:
    assert run_ledger(GOLDEN_LEDGER) == GOLDEN_BALANCES


def test_ledger_reports_a_parent_account_s_own_balance() -> None:
    # `bank` is the parent of `bank:0`; their sum is zero, their own balances are not.
    journal = (TextTransaction(1, datetime.date(2000, 1, 1), "", (
        P("bank", "EUR", "0.01", 2), P("bank:0", "EUR", "-0.01", 2))),)
    out = io.StringIO()
    write_ledger(journal, out)
    assert run_ledger(out.getvalue()) == fold(journal) == {
        ("Assets:Bank", "EUR"): D("-0.01"), ("Assets:Bank:0", "EUR"): D("0.01")}


def test_empty_journal_and_no_title() -> None:
    for writer in (write_ledger, write_beancount):
        out = io.StringIO()
        assert writer(iter(()), out) == 0
        assert out.getvalue() == ""


def test_no_title_starts_with_the_first_transaction() -> None:
    out = io.StringIO()
    write_ledger(JOURNAL[:1], out)
    assert out.getvalue() == GOLDEN_LEDGER.split("\n\n")[1] + "\n"


# ---- names, commodities, amounts --------------------------------------------------------------

@pytest.mark.parametrize(("gl_account", "name"), [
    ("client:C01", "Liabilities:Client:C01"),
    ("client:c-01", "Liabilities:Client:C-01"),
    ("house:H01", "Equity:House:H01"),
    ("bank:USD", "Assets:Bank:USD"),
    ("depository:DTC", "Assets:Depository:DTC"),
    ("income:commission", "Income:Commission"),
    ("income:fees", "Income:Fees"),
    ("tax:withholding", "Liabilities:Tax:Withholding"),
    ("paying-agent:USD", "Assets:Paying-Agent:USD"),
    ("suspense:adjustments", "Equity:Suspense:Adjustments"),
    ("street:NSCC", "Assets:Street:NSCC"),
    ("mystery:X1", "Equity:Mystery:X1"),
    ("depository:DTC:sub_1.a", "Assets:Depository:DTC:Sub-1-a"),
    ("client:_x", "Liabilities:Client:X-x"),
    ("client:0042", "Liabilities:Client:0042"),
    ("client:Żółw", "Liabilities:Client:X---w"),
    ("bank", "Assets:Bank"),
    ("income", "Income:Income"),
])
def test_account_names(gl_account: str, name: str) -> None:
    assert ledger_account_name(gl_account) == name


def test_every_root_is_a_beancount_root() -> None:
    assert set(ROOTS.values()) <= {"Assets", "Liabilities", "Equity", "Income", "Expenses"}


@pytest.mark.parametrize("gl_account", ["", "client:", ":C01", "client::C01"])
def test_empty_parts_are_refused(gl_account: str) -> None:
    with pytest.raises(ValueError, match="empty part"):
        ledger_account_name(gl_account)


@pytest.mark.parametrize(("first", "second"), [
    ("client:c01", "client:C01"), ("house:a_b", "house:a.b"), ("equity:House:X", "house:X"),
])
def test_two_accounts_with_one_name_are_refused(first: str, second: str) -> None:
    journal = [TextTransaction(1, datetime.date(2024, 1, 2), "x", (
        P(first, "USD", "1.00", 2), P(second, "USD", "-1.00", 2)))]
    for writer in (write_ledger, write_beancount):
        with pytest.raises(ValueError, match="would both be written"):
            writer(journal, io.StringIO())


def _one(asset: str, amount: str, scale: int) -> list[TextTransaction]:
    return [TextTransaction(7, datetime.date(2024, 1, 2), "x", (
        P("client:C01", asset, amount, scale), P("bank:X", asset, f"-{amount}", scale)))]


def test_commodity_quoting() -> None:
    out = io.StringIO()
    write_ledger(_one("usd", "1", 0) + _one("BRK.B", "1", 0) + _one("X1", "1", 0), out)
    text = out.getvalue()
    assert " usd\n" in text and ' "BRK.B"\n' in text and ' "X1"\n' in text


@pytest.mark.parametrize("asset", ['A"B', "A B", "", "Ä"])
def test_ledger_refuses_unwritable_commodities(asset: str) -> None:
    with pytest.raises(ValueError, match="Ledger commodity"):
        write_ledger(_one(asset, "1", 0), io.StringIO())


@pytest.mark.parametrize("asset", ["usd", "U", "1ABC", "A" * 25, "ABC-", "A B"])
def test_beancount_refuses_invalid_commodities(asset: str) -> None:
    with pytest.raises(ValueError, match="Beancount commodity"):
        write_beancount(_one(asset, "1", 0), io.StringIO())


def test_amounts_are_exact_at_scale_and_never_rounded() -> None:
    out = io.StringIO()
    journal = _one("USD", "1.5", 2) + _one("JPY", "1E+3", 0) + _one("BTC", "0.00000001", 8)
    journal += _one("USD", "0", 2) + _one("USD", "-0.00", 2)
    journal += _one("USD", "123456789012345678901234567890.12", 2)
    write_ledger(journal, out)
    text = out.getvalue()
    assert "-1.50 USD\n" in text and "1.50 USD\n" in text
    assert "-1000 JPY\n" in text
    assert "-0.00000001 BTC\n" in text
    assert "-0.00 USD" not in text and " 0.00 USD\n" in text
    assert "-123456789012345678901234567890.12 USD\n" in text
    for amount, scale in (("1.005", 2), ("0.5", 0)):
        with pytest.raises(ValueError, match="more than"):
            write_ledger(_one("USD", amount, scale), io.StringIO())
    for amount in ("NaN", "Infinity"):
        with pytest.raises(ValueError, match="not a finite Decimal"):
            write_beancount(_one("USD", amount, 2), io.StringIO())


def test_an_unbalanced_transaction_is_refused() -> None:
    journal = [TextTransaction(9, datetime.date(2024, 1, 2), "x", (
        P("client:C01", "USD", "1.00", 2), P("bank:USD", "USD", "-0.99", 2),
        P("client:C01", ISIN, "1", 0), P("bank:USD", ISIN, "-1", 0)))]
    for writer in (write_ledger, write_beancount):
        with pytest.raises(ValueError, match=r"transaction 9 does not balance: USD 0.01"):
            writer(journal, io.StringIO())


def test_a_transaction_without_postings_is_refused() -> None:
    journal = [TextTransaction(4, datetime.date(2024, 1, 2), "x", ())]
    with pytest.raises(ValueError, match="no postings"):
        write_ledger(journal, io.StringIO())


def test_narration_is_one_line() -> None:
    journal = [TextTransaction(5, datetime.date(2024, 1, 2), 'a\n  ;b\t"c"\\ \x00d', (
        P("client:C01", "USD", "0.00", 2),))]
    ledger, beancount = io.StringIO(), io.StringIO()
    write_ledger(journal, ledger, title="two\nlines")
    write_beancount(journal, beancount, title='say "hi"')
    assert ledger.getvalue().splitlines()[:4] == [
        "; two", "; lines", "", '2024-01-02 * (5) a ;b "c"\\ d']
    assert beancount.getvalue().splitlines()[0] == 'option "title" "say \\"hi\\""'
    assert beancount.getvalue().splitlines()[2] == '2024-01-02 * "a ;b \\"c\\"\\\\ d"'


def test_writers_stream_as_they_iterate() -> None:
    for writer in (write_ledger, write_beancount):
        out = io.StringIO()
        seen: list[int] = []

        def journal(out: io.StringIO = out, seen: list[int] = seen) -> Iterator[TextTransaction]:
            for transaction in JOURNAL:
                seen.append(len(out.getvalue()))
                yield transaction

        assert writer(journal(), out) == 3
        assert seen[0] == 0 and seen[0] < seen[1] < seen[2]


def test_open_directives_are_dated_at_the_earliest_use_whatever_the_order() -> None:
    late = TextTransaction(1, datetime.date(2024, 5, 1), "late", (
        P("client:C01", "USD", "1.00", 2), P("bank:USD", "USD", "-1.00", 2)))
    early = TextTransaction(2, datetime.date(2024, 1, 1), "early", (
        P("client:C01", "USD", "2.00", 2), P("bank:USD", "USD", "-2.00", 2)))
    out = io.StringIO()
    write_beancount([late, early], out)
    tail = out.getvalue().split("; Commodities and accounts, each dated at its first use.\n")[1]
    assert tail == ("2024-01-01 commodity USD\n"
                    "2024-01-01 open Assets:Bank:USD\n"
                    "2024-01-01 open Liabilities:Client:C01\n")


def test_parse_ledger_balances() -> None:
    output = ('Assets:Bank\t0\n'
              'Assets:Bank:USD\t100 EUR\n'
              '60000.00 USD\n'
              'Assets:Street:X\t-10 "US67066G1040"\n'
              'Income:Fees\t$ -1.5\n')
    assert parse_ledger_balances(output) == {
        ("Assets:Bank:USD", "EUR"): D(100),
        ("Assets:Bank:USD", "USD"): D("60000.00"),
        ("Assets:Street:X", ISIN): D(-10),
        ("Income:Fees", "$"): D("-1.5"),
    }
    with pytest.raises(ValueError, match="without an account"):
        parse_ledger_balances("5 USD\n")
    with pytest.raises(ValueError, match="cannot read"):
        parse_ledger_balances("A\t1,000.00 USD\n")


# ---- random journals through the real tools ---------------------------------------------------

ASSETS = {"USD": 2, "EUR": 2, "PLN": 2, "JPY": 0, ISIN: 0}
PREFIXES = ("client", "house", "bank", "depository", "paying-agent", "street", "income", "tax",
            "suspense", "clearing-other")
IDS = st.from_regex(r"[A-Z0-9][A-Za-z0-9-]{0,5}(:[A-Z0-9][A-Za-z0-9]{0,3})?", fullmatch=True)
GL_ACCOUNTS = st.one_of(
    st.builds(lambda prefix, rest: f"{prefix}:{rest}", st.sampled_from(PREFIXES), IDS),
    st.sampled_from(("bank", "income:fees", "tax:withholding", "depository:DTC")),
)
NARRATIONS = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from('"\\;|#()[]{}@=* \t\n')),
    max_size=30)


@st.composite
def journals(draw: st.DrawFn) -> tuple[TextTransaction, ...]:
    accounts = draw(st.lists(GL_ACCOUNTS, min_size=2, max_size=8, unique=True))
    transactions = []
    for sequence in range(1, draw(st.integers(0, 12)) + 1):
        postings = []
        for asset in draw(st.lists(st.sampled_from(sorted(ASSETS)), min_size=1, max_size=3,
                                   unique=True)):
            scale = ASSETS[asset]
            counts = draw(st.lists(st.integers(-10**14, 10**14), min_size=1, max_size=4))
            counts.append(-sum(counts))
            for count in counts:
                amount = Decimal(count).scaleb(-scale)
                if draw(st.booleans()):
                    amount = amount.normalize()  # fewer digits than the scale: written padded
                postings.append(TextPosting(draw(st.sampled_from(accounts)), asset, amount, scale))
        transactions.append(TextTransaction(
            sequence,
            draw(st.dates(datetime.date(2000, 1, 1), datetime.date(2040, 12, 31))),
            draw(NARRATIONS),
            tuple(draw(st.permutations(postings))),
            pending=draw(st.booleans()),
        ))
    return tuple(transactions)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journal=journals())
def test_ledger_balances_equal_our_fold(journal: tuple[TextTransaction, ...]) -> None:
    ledger_or_skip()
    out = io.StringIO()
    assert write_ledger(journal, out, title="random") == len(journal)
    assert run_ledger(out.getvalue()) == fold(journal)


def beancount_balances(text: str, title: str) -> dict[tuple[str, str], Decimal]:
    loader = pytest.importorskip("beancount.loader", reason="beancount is not installed")
    realization = pytest.importorskip("beancount.core.realization")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "journal.beancount"
        path.write_text(text, encoding="utf-8")
        entries, errors, options = loader.load_file(str(path))
    assert errors == []
    assert options["title"] == title
    balances: dict[tuple[str, str], Decimal] = {}
    for real_account in realization.iter_children(realization.realize(entries)):
        for position in real_account.balance:  # the account's own postings, not its children's
            assert position.cost is None
            if position.units.number:
                balances[real_account.account, position.units.currency] = position.units.number
    return balances


def test_beancount_reads_the_golden_file() -> None:
    assert beancount_balances(GOLDEN_BEANCOUNT, "Zaplecze sample") == GOLDEN_BALANCES


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journal=journals())
def test_beancount_balances_equal_our_fold(journal: tuple[TextTransaction, ...]) -> None:
    out = io.StringIO()
    assert write_beancount(journal, out, title="random") == len(journal)
    assert beancount_balances(out.getvalue(), "random") == fold(journal)
