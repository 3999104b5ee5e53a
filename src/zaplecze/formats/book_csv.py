"""The book folder's CSV files, read as spreadsheets write them.

A UTF-8 byte-order mark, CRLF line endings, quoted fields and a trailing empty line are all
accepted. Line numbers are physical lines: the header is line 1, the first data row line 2
(a quoted field spanning lines counts every line it spans).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zaplecze.kernel.limits import FIELD_CHARS_MAX
from zaplecze.kernel.problems import Problem, Rule

# The files of a book folder, in load order, with their required and optional columns.
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "instruments": (("isin", "kind", "currency", "mic"),
                    ("symbol", "name", "issuer_country", "quantity_scale")),
    "accounts": (("account", "name", "kind", "base_currency", "tax_residence"), ("lot_method",)),
    "fees": (("mic", "currency", "rate_bps", "minimum"), ()),
    "withholding": (("issuer_country", "tax_residence", "rate"), ()),
    "prices": (("date", "isin", "close", "currency"), ()),
    "fx": (("date", "base", "quote", "rate"), ()),
    # The project's own optional file: ad-hoc market or payment-system closures (and openings).
    "calendar_overrides": (("calendar", "date"), ("closed", "reason")),
    # The project's own optional file: standing settlement instructions per counterparty.
    "ssis": (("counterparty", "market", "currency", "place_of_settlement", "counterparty_bic",
              "counterparty_account", "safekeeping_account", "payment", "netting"), ()),
    "cash": (("movement_id", "account", "date", "currency", "amount", "kind"), ("description",)),
    "trades": (("trade_id", "account"),
               ("action", "isin", "side", "quantity", "price", "currency", "trade_date", "venue",
                "counterparty", "commission", "settlement_date")),
    "corporate_actions": (("event_id", "kind", "isin", "ex_date", "record_date", "pay_date"),
                          ("ratio_old", "ratio_new", "amount", "currency", "new_isin",
                           "cost_fraction", "fraction_price")),
}
LOAD_ORDER = tuple(COLUMNS)


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")


class CsvReader:
    """One book-folder file, read lazily: the header is checked at once, rows as iterated.

    Iterating yields a ``Row`` for every data row and a ``Problem`` for a row that cannot be
    read at all (wrong field count, an oversized field); blank lines are skipped.
    """

    def __init__(self, stream: Iterable[str], stem: str) -> None:
        self.stem = stem
        self.name = f"{stem}.csv"
        self.fatal: Problem | None = None
        self.warnings: list[str] = []
        self._reader = csv.reader(stream, strict=False)
        required, optional = COLUMNS[stem]
        try:
            self.header = [name.strip().lstrip("\ufeff") for name in next(self._reader)]
            if self.header and self.header[0].startswith(UNDECODABLE):
                self.fatal = Problem(Rule.UNREADABLE_FILE, "the header is not UTF-8: save the "
                                     "file as UTF-8", self.name, 1)
                return
        except StopIteration:
            self.header = []
            self.fatal = Problem(Rule.MISSING_REQUIRED_COLUMN,
                                 "the file is empty: expected a header row", self.name, 1)
            return
        except (csv.Error, UnicodeDecodeError) as error:
            self.header = []
            self.fatal = Problem(Rule.UNREADABLE_FILE, str(error), self.name, 1)
            return
        missing = [column for column in required if column not in self.header]
        if missing:
            self.fatal = Problem(Rule.MISSING_REQUIRED_COLUMN,
                                 f"header lacks {', '.join(missing)}", self.name, 1)
        unknown = [name for name in self.header if name and name not in required + optional]
        if unknown:
            self.warnings.append(f"{self.name}: unknown column(s) ignored: {', '.join(unknown)}")

    def __iter__(self) -> Iterator[Row | Problem]:
        if self.fatal is not None:
            return
        previous_end = 1
        width = len(self.header)
        names = list(enumerate(self.header))
        reader = self._reader
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as error:
                yield Problem(Rule.UNREADABLE_FILE, str(error), self.name, previous_end + 1)
                return
            line = previous_end + 1
            previous_end = reader.line_num
            if not fields or all(not field.strip() for field in fields):
                continue  # blank or trailing empty line
            if fields[0].startswith(UNDECODABLE):
                yield Problem(Rule.UNREADABLE_FILE,
                              f"not UTF-8 (byte {fields[0][len(UNDECODABLE):]} of the line): "
                              f"save the file as UTF-8", self.name, line)
                continue
            if len(fields) > width and any(field.strip() for field in fields[width:]):
                yield Problem(Rule.WRONG_FIELD_COUNT,
                              f"{len(fields)} fields, the header has {width}", self.name, line)
                continue
            if any(len(field) > FIELD_CHARS_MAX for field in fields):
                yield Problem(Rule.LIMIT_EXCEEDED,
                              f"a field longer than {FIELD_CHARS_MAX} characters", self.name, line)
                continue
            count = len(fields)
            yield Row(line, {name: (fields[i].strip() if i < count else "")
                             for i, name in names if name})


UNDECODABLE = "\x00undecodable:"  # stands in for a line that is not UTF-8


def _decoded_lines(binary: BinaryIO) -> Iterator[str]:
    """The file's physical lines as text, one at a time, so that a byte that is not UTF-8
    rejects its own line (located) and never the rows around it."""
    first = True
    for raw in binary:
        try:
            text = raw.decode("utf-8-sig" if first else "utf-8")
        except UnicodeDecodeError as error:
            text = f"{UNDECODABLE}{error.start + 1}\n"
        first = False
        yield text


def open_book_file(path: Path) -> tuple[BinaryIO, CsvReader]:
    """Open ``path`` (UTF-8, with or without a byte-order mark) for lazy reading."""
    stream = path.open("rb")
    return stream, CsvReader(_decoded_lines(stream), path.stem)


def read_text(text: str, stem: str) -> CsvReader:
    """A reader over text already in memory (tests, the FIX path)."""
    return CsvReader(io.StringIO(text, newline=""), stem)
