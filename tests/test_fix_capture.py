"""A FIX 4.4 drop copy books through the same capture path as trades.csv."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

SOH = "\x01"


def fix_message(fields: list[tuple[int, str]]) -> str:
    """A FIX message with a correct BodyLength(9) and CheckSum(10)."""
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8=FIX.4.4{SOH}9={len(body.encode())}{SOH}"
    checksum = sum((head + body).encode()) % 256
    return f"{head}{body}10={checksum:03d}{SOH}"


def fill(sequence: int, exec_id: str, side: str, quantity: str, price: str,
         day: str = "20240604") -> str:
    return fix_message([(35, "8"), (49, "BROKER"), (56, "ZAPLECZE"), (34, str(sequence)),
                        (52, f"{day}-15:00:00"), (1, "ACC-1"), (17, exec_id), (150, "F"),
                        (39, "2"), (55, "NVDA"), (48, "US67066G1040"), (22, "4"), (54, side),
                        (32, quantity), (31, price), (15, "USD"), (75, day),
                        (60, f"{day}-15:00:00")])


def test_fills_book_once_and_bad_messages_are_located(book_url: str, golden_folder: Path,
                                                      tmp_path: Path) -> None:
    run_cli(book_url, "init", check=True)
    run_cli(book_url, "load", str(golden_folder))
    mapping = tmp_path / "map.csv"
    mapping.write_text("kind,fix_value,zaplecze_value\naccount,ACC-1,C02\n")
    good = fill(7, "E1", "1", "3", "1160.00") + "\n" + fill(8, "E2", "1", "2", "1170.50")
    broken = fill(9, "E3", "1", "1", "1180.00").replace("1180.00", "1180.01")  # checksum off
    drop = tmp_path / "dropcopy.fix"
    drop.write_text(good + "\n" + broken + "\n")

    first = run_cli(book_url, "load-fix", str(drop), "--account-map", str(mapping))
    assert first.returncode == 1, first.stderr
    assert "dropcopy.fix:9: fix_bad_checksum" in first.stdout
    again = run_cli(book_url, "load-fix", str(drop), "--account-map", str(mapping))
    assert "2 new" not in again.stderr and "0 new" in again.stderr

    rows = json.loads(run_cli(book_url, "report", "positions", "--as-of", "2024-06-04",
                              "--basis", "trade", "--format", "json", check=True).stdout)
    nvda = {r["account"]: r for r in rows if r["isin"] == "US67066G1040"}
    # C02 held 5 NVDA (T003, 2024-06-05 is later: so none yet on 06-04) + 3 + 2 from the fills.
    assert nvda["C02"]["quantity"] == "5"
    # Cost: 3 × 1160.00 = 3480.00 + 15 bp 5.22; 2 × 1170.50 = 2341.00 + minimum 5.00.
    assert nvda["C02"]["cost_basis"] == "5831.22"
