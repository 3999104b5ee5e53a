"""The holiday-override table: an ad-hoc closure moves settlement dates (book-folder extension
``calendar_overrides.csv``)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli


def _settled_pko(url: str, day: str) -> dict[str, str]:
    rows = json.loads(run_cli(url, "report", "positions", "--as-of", day, "--basis",
                              "settlement", "--format", "json", check=True).stdout)
    return {r["account"]: r["quantity"] for r in rows if r["isin"] == "PLPKO0000016"}


def test_an_ad_hoc_closure_moves_settlement(tmp_path: Path, golden_folder: Path) -> None:
    # Warsaw closed on Friday 2024-08-16: C02's PKO sale of Wed 08-14 settles T+2 in settlement
    # days: Thu 15 is a Polish holiday, Fri 16 is now closed, Mon 19, Tue 20 -> 2024-08-20.
    (golden_folder / "calendar_overrides.csv").write_text(
        "calendar,date,closed,reason\nXWAR,2024-08-16,true,exchange outage\n")
    url = f"sqlite:///{tmp_path / 'book.db'}"
    run_cli(url, "init", check=True)
    run_cli(url, "load", str(golden_folder))
    run_cli(url, "eod", "--through", "2024-08-30", check=True)
    assert _settled_pko(url, "2024-08-19").get("C02") == "300"
    assert "C02" not in _settled_pko(url, "2024-08-20")


def test_without_the_closure_it_settles_on_the_19th(tmp_path: Path, golden_folder: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    run_cli(url, "init", check=True)
    run_cli(url, "load", str(golden_folder))
    run_cli(url, "eod", "--through", "2024-08-30", check=True)
    assert "C02" not in _settled_pko(url, "2024-08-19")
    assert _settled_pko(url, "2024-08-16").get("C02") == "300"
