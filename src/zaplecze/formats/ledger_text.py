"""The general ledger as plain-text accounting files: Ledger (ledger-cli 3.x) and Beancount (v3).

Both writers are pure: they write to the text stream handed in, as they iterate over the
journal, and keep nothing per transaction once it is written (only one small dict entry per
distinct account and asset). A 5,000,000-posting journal streams in constant memory.

Signs. Our books keep an owner's balance positive (a client's credit) and a place that holds
assets for the firm negative (the bank holding our cash shows -60000). Ledger and Beancount
count debits positive, so both exports NEGATE every amount: bank -60000.00 USD is written
``Assets:Bank:USD  60000.00 USD``; a client's +60000.00 is written ``-60000.00 USD``.

Amounts are written exactly at the posting's scale (2 for USD, 0 for a whole-share security),
from the Decimal, never through a float. An amount with more decimals than its scale is refused
(ValueError), never rounded. Every transaction is checked to sum to zero per asset before it is
written; one that does not raises ValueError (Ledger would otherwise silently infer a price).

Account names (one chart for both files, see ``ledger_account_name``):

* the GL account ``prefix:rest[:more]`` is split on ':'; no part may be empty;
* the root is ``ROOTS[prefix]`` (exact, case-sensitive match); an unknown prefix goes under
  ``Equity`` so that nothing is dropped and the odd account stands out in the equity section;
* the prefix part is left out where it only repeats the root (``income:fees`` ->
  ``Income:Fees``, not ``Income:Income:Fees``) and the account has more parts;
* every part becomes one component: each character outside ``A-Z a-z 0-9 -`` is replaced by
  '-', then the first character is upper-cased; a part whose first character is still not a
  letter or digit gets an ``X`` in front. The prefix part is also capitalised after every '-'
  (``paying-agent`` -> ``Paying-Agent``); other parts keep their case (``c-01`` -> ``C-01``);
* so ``client:C01`` -> ``Liabilities:Client:C01`` and ``paying-agent:USD`` ->
  ``Assets:Paying-Agent:USD``. This is injective for the prefixes of ``ROOTS`` and ids made of
  ASCII letters, digits and '-' that do not differ only in the case of their first letter.
  Where two GL accounts of one export do map to one name (``client:c01`` and ``client:C01``,
  ``house:a_b`` and ``house:a.b``, ``equity:House:X`` and ``house:X``) the writer raises
  ValueError rather than merge them.

Assets. Ledger: a purely alphabetic asset is written bare (``USD``), any other one quoted
(``"US67066G1040"``); an asset must be printable ASCII without spaces or '"'. Beancount: an
asset must already be a valid commodity name, ``[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]`` (ISO 4217
codes and ISINs are), or the writer raises ValueError.

Flags. A pending (unsettled) entry gets the ``!`` flag in both files, every other entry ``*``.
The journal sequence is the Ledger transaction code ``(N)`` and the Beancount transaction
metadata ``sequence: N``.

Beancount needs an ``open`` directive per account and a ``commodity`` directive per asset,
dated no later than its first use. To stay streaming and correct for a journal not in date
order, they are written after the last transaction, each dated at the earliest transaction
date that uses it (Beancount orders directives by date, not by place in the file).
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

__all__ = [
    "LEDGER_BALANCE_ARGS",
    "ROOTS",
    "TextPosting",
    "TextTransaction",
    "ledger_account_name",
    "parse_ledger_balances",
    "write_beancount",
    "write_ledger",
]


@dataclass(frozen=True, slots=True)
class TextPosting:
    gl_account: str
    asset: str
    amount: Decimal  # our sign convention: an owner's balance positive, a holder's negative
    scale: int  # decimals to write (2 for USD, 0 for a whole-share security)


@dataclass(frozen=True, slots=True)
class TextTransaction:
    sequence: int
    date: datetime.date
    narration: str
    postings: tuple[TextPosting, ...]
    pending: bool = False  # a pending (unsettled) entry: the '!' flag in both files


# GL prefix -> Beancount root (Ledger uses the same names). An unknown prefix -> UNKNOWN_ROOT.
ROOTS: dict[str, str] = {
    "client": "Liabilities",
    "house": "Equity",
    "bank": "Assets",
    "depository": "Assets",
    "paying-agent": "Assets",
    "street": "Assets",
    "income": "Income",
    "tax": "Liabilities",
    "suspense": "Equity",
}
UNKNOWN_ROOT = "Equity"

# The arguments after ``ledger -f FILE``: one line per account, ``ACCOUNT<TAB>AMOUNT``, the
# account's own postings only (display_amount, not its sub-accounts' total), a multi-commodity
# balance continued one amount per line. --empty: without it --flat hides an account whose
# total with its sub-accounts is zero even where its own balance is not (``bank`` -0.01 EUR
# beside ``bank:0`` +0.01 EUR). --args-only: ignore ~/.ledgerrc and LEDGER_* variables.
LEDGER_BALANCE_ARGS: tuple[str, ...] = (
    "--args-only",
    "balance",
    "--flat",
    "--no-total",
    "--empty",
    "--balance-format",
    "%(account)\t%(scrub(display_amount))\n",
)

# Exact arithmetic for the balance check: refuse rather than round.
_CONTEXT = decimal.Context(
    prec=80, traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow]
)
_NOT_COMPONENT = re.compile(r"[^A-Za-z0-9-]")
_LEDGER_BARE = re.compile(r"[A-Za-z]+")
_LEDGER_QUOTABLE = re.compile(r"[!#-~]+")  # printable ASCII less space and '"'
_BEANCOUNT_COMMODITY = re.compile(r"[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]")
_WHITESPACE = re.compile(r"\s+")
_EXPONENTS: dict[int, Decimal] = {}
_ZERO = Decimal(0)

_LEDGER_INDENT = "    "
_BEANCOUNT_INDENT = "  "
_ACCOUNT_WIDTH = 40  # account column width, so amounts line up in the common case
_AMOUNT_WIDTH = 16


def _component(part: str, *, capitalise_words: bool) -> str:
    text = _NOT_COMPONENT.sub("-", part)
    if capitalise_words:
        text = "-".join(word[:1].upper() + word[1:] for word in text.split("-"))
    else:
        text = text[:1].upper() + text[1:]
    if not text[:1].isalnum():  # ASCII only here: the substitution removed everything else
        text = "X" + text
    return text


def ledger_account_name(gl_account: str) -> str:
    """The hierarchical name used in both files: ``client:C01`` -> ``Liabilities:Client:C01``.

    The rule is in the module docstring. Raises ValueError for an empty account or part.
    """
    parts = gl_account.split(":")
    if not all(parts):
        raise ValueError(f"GL account {gl_account!r} has an empty part")
    root = ROOTS.get(parts[0], UNKNOWN_ROOT)
    components = [root]
    if parts[0].lower() != root.lower() or len(parts) == 1:
        components.append(_component(parts[0], capitalise_words=True))
    components.extend(_component(part, capitalise_words=False) for part in parts[1:])
    return ":".join(components)


class _Chart:
    """GL account -> name and posting-line start; refuses two GL accounts sharing a name."""

    __slots__ = ("_gl_by_name", "indent", "names", "prefixes")

    def __init__(self, indent: str) -> None:
        self.indent = indent
        self.prefixes: dict[str, str] = {}  # GL account -> "    Name<padding>  "
        self.names: dict[str, str] = {}  # GL account -> Name
        self._gl_by_name: dict[str, str] = {}

    def prefix(self, gl_account: str) -> str:
        name = ledger_account_name(gl_account)
        other = self._gl_by_name.setdefault(name, gl_account)
        if other != gl_account:
            raise ValueError(
                f"GL accounts {other!r} and {gl_account!r} would both be written as {name!r}"
            )
        line = f"{self.indent}{name:<{_ACCOUNT_WIDTH}}  "
        self.names[gl_account] = name
        self.prefixes[gl_account] = line
        return line


def _exponent(scale: int) -> Decimal:
    exponent = _EXPONENTS.get(scale)
    if exponent is None:
        if not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= 30:
            raise ValueError(f"scale {scale!r} is not an integer from 0 to 30")
        exponent = _EXPONENTS[scale] = Decimal(1).scaleb(-scale)
    return exponent


def _clean(text: str) -> str:
    """One line of text: every run of whitespace or control characters becomes one space."""
    cleaned = _WHITESPACE.sub(" ", text).strip()
    if not cleaned.isprintable():
        cleaned = "".join(ch if ch.isprintable() else " " for ch in cleaned)
        cleaned = _WHITESPACE.sub(" ", cleaned).strip()
    return cleaned


def _beancount_string(text: str) -> str:
    return '"' + _clean(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ledger_commodity(asset: str) -> str:
    if _LEDGER_BARE.fullmatch(asset):
        return asset
    if _LEDGER_QUOTABLE.fullmatch(asset):
        return f'"{asset}"'
    raise ValueError(f"asset {asset!r} cannot be written as a Ledger commodity")


def _beancount_commodity(asset: str) -> str:
    if _BEANCOUNT_COMMODITY.fullmatch(asset):
        return asset
    raise ValueError(f"asset {asset!r} is not a valid Beancount commodity name")


def _unbalanced(transaction: TextTransaction, sums: dict[str, Decimal]) -> ValueError:
    off = ", ".join(f"{asset} {total}" for asset, total in sorted(sums.items()) if total)
    return ValueError(f"transaction {transaction.sequence} does not balance: {off}")


def _posting_lines(
    transaction: TextTransaction, chart: _Chart, suffixes: dict[str, str],
    to_commodity: Callable[[str], str], lines: list[str],
) -> None:
    """Append the posting lines of ``transaction`` (negated) to ``lines``; check the balance.

    ``suffixes`` caches asset -> " COMMODITY\n". The hot loop of both writers: plain str
    operations, one quantize and one exact addition per posting.
    """
    prefixes = chart.prefixes
    exponents = _EXPONENTS
    context = _CONTEXT
    add = context.add
    sums: dict[str, Decimal] = {}
    if not transaction.postings:
        raise ValueError(f"transaction {transaction.sequence} has no postings")
    for posting in transaction.postings:
        gl_account = posting.gl_account
        prefix = prefixes.get(gl_account) or chart.prefix(gl_account)
        asset = posting.asset
        suffix = suffixes.get(asset)
        if suffix is None:
            suffix = suffixes[asset] = f" {to_commodity(asset)}\n"
        amount = posting.amount
        try:  # the Inexact trap refuses an amount with more decimals than its scale
            exact = amount.quantize(exponents.get(posting.scale) or _exponent(posting.scale),
                                    context=context)
        except decimal.Inexact as error:
            raise ValueError(
                f"transaction {transaction.sequence}: {amount} {asset} has more than "
                f"{posting.scale} decimals"
            ) from error
        except (decimal.DecimalException, AttributeError, TypeError) as error:
            raise _not_finite(transaction, posting) from error
        sums[asset] = add(sums.get(asset, _ZERO), exact)
        text = str(exact.copy_negate()) if exact else str(exact.copy_abs())
        if "E" in text:  # str() of a scale above 6 may use an exponent
            text = format(exact.copy_negate(), "f") if exact else format(exact.copy_abs(), "f")
        lines.append(prefix + text.rjust(_AMOUNT_WIDTH) + suffix)
    for total in sums.values():
        if total:  # a quiet NaN passes quantize; it makes its asset's sum NaN
            for posting in transaction.postings:
                if not posting.amount.is_finite():
                    raise _not_finite(transaction, posting)
            raise _unbalanced(transaction, sums)


def _not_finite(transaction: TextTransaction, posting: TextPosting) -> ValueError:
    return ValueError(
        f"transaction {transaction.sequence}: amount {posting.amount!r} of {posting.asset} "
        f"is not a finite Decimal at scale {posting.scale}"
    )


def write_ledger(
    transactions: Iterable[TextTransaction], out: TextIO, *, title: str = ""
) -> int:
    """Write the journal as a Ledger 3 file; return the number of transactions written.

    Each transaction is ``DATE FLAG (SEQUENCE) NARRATION`` and its postings, one blank line
    between transactions. ``ledger -f FILE`` + ``LEDGER_BALANCE_ARGS`` lists the balances.
    """
    write = out.write
    if title:
        for line in title.splitlines() or [""]:
            write(f"; {_clean(line)}".rstrip() + "\n")
    chart = _Chart(_LEDGER_INDENT)
    commodities: dict[str, str] = {}
    count = 0
    for transaction in transactions:
        narration = _clean(transaction.narration)
        flag = "!" if transaction.pending else "*"
        header = f"{transaction.date.isoformat()} {flag} ({transaction.sequence})"
        lines = ["\n" if count or title else "", header,
                 f" {narration}\n" if narration else "\n"]
        _posting_lines(transaction, chart, commodities, _ledger_commodity, lines)
        write("".join(lines))
        count += 1
    return count


def write_beancount(
    transactions: Iterable[TextTransaction], out: TextIO, *, title: str = ""
) -> int:
    """Write the journal as a Beancount v3 file; return the number of transactions written.

    ``option "title"`` first (when a title is given), then the transactions in the order
    given, then the ``commodity`` and ``open`` directives dated at each one's first use.
    """
    write = out.write
    if title:
        write(f"option \"title\" {_beancount_string(title)}\n\n")
    chart = _Chart(_BEANCOUNT_INDENT)
    commodities: dict[str, str] = {}
    account_since: dict[str, datetime.date] = {}
    asset_since: dict[str, datetime.date] = {}
    count = 0
    for transaction in transactions:
        date = transaction.date
        flag = "!" if transaction.pending else "*"
        lines = [f"{date.isoformat()} {flag} {_beancount_string(transaction.narration)}\n"
                 f"{_BEANCOUNT_INDENT}sequence: {int(transaction.sequence)}\n"]
        _posting_lines(transaction, chart, commodities, _beancount_commodity, lines)
        lines.append("\n")
        write("".join(lines))
        count += 1
        for posting in transaction.postings:
            since = account_since.get(posting.gl_account)
            if since is None or date < since:
                account_since[posting.gl_account] = date
            since = asset_since.get(posting.asset)
            if since is None or date < since:
                asset_since[posting.asset] = date
    if asset_since or account_since:
        write("; Commodities and accounts, each dated at its first use.\n")
    for asset, since in sorted(asset_since.items(), key=lambda item: (item[1], item[0])):
        write(f"{since.isoformat()} commodity {commodities[asset].strip()}\n")
    names = sorted((since, chart.names[gl]) for gl, since in account_since.items())
    for since, name in names:
        write(f"{since.isoformat()} open {name}\n")
    return count


_LEDGER_AMOUNT_SUFFIX = re.compile(r'(-?[0-9]+(?:\.[0-9]+)?) ?("[^"]+"|[^\s"0-9.,-][^\s"]*)')
_LEDGER_AMOUNT_PREFIX = re.compile(r'("[^"]+"|[^\s"0-9.,-][^\s"]*?) ?(-?[0-9]+(?:\.[0-9]+)?)')


def _ledger_amount(text: str) -> tuple[str, Decimal] | None:
    if text == "0":
        return None
    match = _LEDGER_AMOUNT_SUFFIX.fullmatch(text)
    if match:
        number, commodity = match.groups()
    else:
        match = _LEDGER_AMOUNT_PREFIX.fullmatch(text)
        if not match:
            raise ValueError(f"cannot read the Ledger amount {text!r}")
        commodity, number = match.groups()
    return commodity.strip('"'), Decimal(number)


def parse_ledger_balances(output: str) -> dict[tuple[str, str], Decimal]:
    """Read what ``ledger -f FILE`` + ``LEDGER_BALANCE_ARGS`` prints.

    Returns (account, commodity) -> amount as Ledger shows it (debits positive), the account's
    own postings only; zero balances are left out (Ledger leaves them out too). A commodity is
    returned without Ledger's quotes (``US67066G1040``).
    """
    balances: dict[tuple[str, str], Decimal] = {}
    account: str | None = None
    for line in output.splitlines():
        if not line.strip():
            continue
        if "\t" in line:
            account, _, text = line.partition("\t")
        elif account is None:
            raise ValueError(f"a Ledger balance line without an account: {line!r}")
        else:
            text = line
        amount = _ledger_amount(text.strip())
        if amount is None:
            continue
        key = (account, amount[0])
        total = balances.get(key, Decimal(0)) + amount[1]
        if total:
            balances[key] = total
        else:
            balances.pop(key, None)
    return balances
