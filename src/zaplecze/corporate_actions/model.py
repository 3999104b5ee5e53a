"""Corporate-action events as the book folder describes them, validated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from zaplecze.kernel.fields import (
    Rejected,
    currency_field,
    decimal_field,
    enum_field,
    required,
    required_date,
    weekday,
)
from zaplecze.kernel.problems import Rule
from zaplecze.refdata.model import Instrument
from zaplecze.refdata.validate import isin_field

CA_COLUMNS = ("event_id", "kind", "isin", "ex_date", "record_date", "pay_date", "ratio_old",
              "ratio_new", "amount", "currency", "new_isin", "cost_fraction", "fraction_price")


class CaKind(StrEnum):
    SPLIT = "SPLIT"
    CASH_DIVIDEND = "CASH_DIVIDEND"
    STOCK_DIVIDEND = "STOCK_DIVIDEND"
    SPINOFF = "SPINOFF"
    MERGER = "MERGER"
    CASH_MERGER = "CASH_MERGER"


RATIO_KINDS = frozenset({CaKind.SPLIT, CaKind.STOCK_DIVIDEND, CaKind.SPINOFF, CaKind.MERGER})
CASH_KINDS = frozenset({CaKind.CASH_DIVIDEND, CaKind.CASH_MERGER})
NEW_ISIN_KINDS = frozenset({CaKind.SPINOFF, CaKind.MERGER})


@dataclass(frozen=True, slots=True)
class CorporateAction:
    event_id: str
    kind: CaKind
    isin: str
    ex_date: dt.date
    record_date: dt.date
    pay_date: dt.date
    ratio_old: Decimal = Decimal(0)
    ratio_new: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    currency: str = ""
    new_isin: str = ""
    cost_fraction: Decimal = Decimal(0)
    fraction_price: Decimal = Decimal(0)
    content_hash: str = ""

    @property
    def ratio(self) -> Fraction:
        """What one share held becomes (SPLIT, MERGER) or brings (STOCK_DIVIDEND, SPINOFF)."""
        return Fraction(self.ratio_new) / Fraction(self.ratio_old)

    @property
    def resulting_isin(self) -> str:
        return self.new_isin if self.kind in NEW_ISIN_KINDS else self.isin

    @property
    def cash_date(self) -> dt.date:
        """Cash (dividends, takeover cash, cash in lieu) is credited on pay_date, never before
        the event itself takes effect."""
        return max(self.pay_date, self.ex_date)


def corporate_action(values: Mapping[str, str], instruments: Mapping[str, Instrument],
                     content: str = "") -> CorporateAction:
    event_id = required(values, "event_id")
    kind = enum_field(values, "kind", CaKind)
    isin = isin_field(values, "isin")
    if isin not in instruments:
        raise Rejected(Rule.UNKNOWN_INSTRUMENT, f"isin {isin} is not in instruments.csv")
    ex_date = weekday(required_date(values, "ex_date"), "ex_date")
    record_date = required_date(values, "record_date")
    pay_date = weekday(required_date(values, "pay_date"), "pay_date")
    fields: dict[str, object] = {}
    if kind in RATIO_KINDS:
        old = decimal_field(values, "ratio_old")
        new = decimal_field(values, "ratio_new")
        if old is None or new is None or old <= 0 or new <= 0:
            raise Rejected(Rule.INVALID_RATIO, f"ratio_old {old} and ratio_new {new} must both "
                                               f"be positive")
        fields.update(ratio_old=old, ratio_new=new)
        price = decimal_field(values, "fraction_price", optional=True, default=Decimal(0))
        if price is not None and price < 0:
            raise Rejected(Rule.NON_POSITIVE_PRICE, f"fraction_price {price} is negative")
        fields["fraction_price"] = price
    if kind in CASH_KINDS:
        amount = decimal_field(values, "amount")
        if amount is None or amount <= 0:
            raise Rejected(Rule.AMOUNT_REQUIRED, f"amount {amount} must be positive")
        currency = currency_field(values, "currency")
        fields.update(amount=amount, currency=currency)
    if kind in NEW_ISIN_KINDS:
        if not values.get("new_isin"):
            raise Rejected(Rule.NEW_ISIN_REQUIRED, f"a {kind.value} needs new_isin")
        new_isin = isin_field(values, "new_isin")
        if new_isin == isin:
            raise Rejected(Rule.NEW_ISIN_REQUIRED, f"a {kind.value} needs a new_isin other "
                                                    f"than its isin {isin}")
        if new_isin not in instruments:
            raise Rejected(Rule.UNKNOWN_INSTRUMENT, f"new_isin {new_isin} is not in "
                                                    f"instruments.csv")
        fields["new_isin"] = new_isin
    if kind is CaKind.SPINOFF:
        cost_fraction = decimal_field(values, "cost_fraction")
        if cost_fraction is None or not Decimal(0) <= cost_fraction <= Decimal(1):
            raise Rejected(Rule.INVALID_RATE, f"cost_fraction {cost_fraction} must be a "
                                              f"fraction between 0 and 1")
        fields["cost_fraction"] = cost_fraction
    return CorporateAction(event_id=event_id, kind=kind, isin=isin, ex_date=ex_date,
                           record_date=record_date, pay_date=pay_date, content_hash=content,
                           **fields)  # type: ignore[arg-type]
