"""The general ledger exported for auditors gives, under independent tools, the same balances
as our own trial balance (cash) and stock record (securities)."""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import run_cli
from zaplecze.formats.ledger_text import (
    LEDGER_BALANCE_ARGS,
    ledger_account_name,
    parse_ledger_balances,
)

AS_OF = "2024-09-30"


def _book(url: str, folder: Path) -> None:
    run_cli(url, "init", check=True)
    assert run_cli(url, "load", str(folder)).returncode == 1  # the golden book's two rejections
    run_cli(url, "eod", "--through", AS_OF, check=True)


def _trial_balance(url: str) -> dict[tuple[str, str], Decimal]:
    """Our trial balance in Ledger's sign (debits positive), by Ledger account name."""
    rows = json.loads(run_cli(url, "report", "trial-balance", "--as-of", AS_OF, "--format",
                              "json", check=True).stdout)
    return {(ledger_account_name(r["gl_account"]), r["currency"]):
            Decimal(r["debit"]) - Decimal(r["credit"]) for r in rows}


def test_ledger_program_agrees_with_our_trial_balance(book_url: str, golden_folder: Path,
                                                      tmp_path: Path) -> None:
    if shutil.which("ledger") is None:
        pytest.skip("the `ledger` binary is not on PATH (Debian package `ledger`; `make test` "
                    "installs it)")
    _book(book_url, golden_folder)
    export = tmp_path / "books.ledger"
    run_cli(book_url, "export", "--format", "ledger", "--out", str(export), check=True)
    done = subprocess.run(["ledger", "-f", str(export), *LEDGER_BALANCE_ARGS],
                          capture_output=True, text=True, check=True)
    balances = parse_ledger_balances(done.stdout)
    cash = {key: value for key, value in balances.items() if len(key[1]) == 3}
    assert cash == _trial_balance(book_url)
    assert cash, "the export held no cash at all"
    # Securities: what owners hold under Ledger equals the stock record's ownership side.
    stock = json.loads(run_cli(book_url, "report", "stock-record", "--as-of", AS_OF,
                               "--format", "json", check=True).stdout)
    owned: dict[str, Decimal] = {}
    for (account, asset), amount in balances.items():
        if len(asset) == 12 and account.split(":")[0] in ("Liabilities", "Equity"):
            owned[asset] = owned.get(asset, Decimal(0)) - amount
    assert {r["isin"]: Decimal(r["owned"]) for r in stock} == {
        isin: amount for isin, amount in owned.items() if amount}


def test_beancount_accepts_our_export(tmp_path: Path, golden_folder: Path) -> None:
    loader = pytest.importorskip("beancount.loader", reason="beancount is not installed")
    url = f"sqlite:///{tmp_path / 'book.db'}"
    _book(url, golden_folder)
    export = tmp_path / "books.beancount"
    run_cli(url, "export", "--format", "beancount", "--out", str(export), check=True)
    entries, errors, _ = loader.load_file(str(export))
    assert errors == []
    assert len(entries) > 40
