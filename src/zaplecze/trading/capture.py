"""Capture: one trades.csv / cash.csv row (or a FIX fill in the same shape) validated and
resolved against reference data, the calendar and the commission schedule.

Checks run in a fixed order, so a row that breaks several rules is rejected once, always
naming the same rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.fields import (
    Rejected,
    currency_field,
    date_field,
    decimal_field,
    enum_field,
    required,
    required_date,
    required_decimal,
    weekday,
)
from zaplecze.kernel.money import currency_scale, fits_scale, round_half_up
from zaplecze.kernel.problems import Rule
from zaplecze.refdata.model import RefData
from zaplecze.refdata.validate import isin_field
from zaplecze.trading.model import Cancel, CashKind, CashMovement, Side, Trade

TRADE_COLUMNS = ("trade_id", "action", "account", "isin", "side", "quantity", "price",
                 "currency", "trade_date", "venue", "counterparty", "commission",
                 "settlement_date")
CASH_COLUMNS = ("movement_id", "account", "date", "currency", "amount", "kind", "description")


def content_hash(values: Mapping[str, str], columns: tuple[str, ...]) -> str:
    """The fingerprint of a row's content: same key + same hash = the same instruction."""
    text = "\x1f".join(values.get(column, "") for column in columns)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def action_of(values: Mapping[str, str]) -> str:
    action = values.get("action", "") or "NEW"
    if action not in ("NEW", "CANCEL"):
        raise Rejected(Rule.INVALID_ENUM_VALUE, f"action {action!r} is not NEW or CANCEL")
    return action


def _known_account(values: Mapping[str, str], refdata: RefData) -> str:
    account = required(values, "account")
    if account not in refdata.accounts:
        raise Rejected(Rule.UNKNOWN_ACCOUNT, f"account {account!r} is not in accounts.csv")
    return account


def trade(values: Mapping[str, str], refdata: RefData, calendar: SettlementCalendar,
          sequence: int = 0, digest: str | None = None) -> Trade:
    """A NEW trade row resolved: settlement date, gross, commission."""
    trade_id = required(values, "trade_id")
    isin = isin_field(values, "isin")
    instrument = refdata.instruments.get(isin)
    if instrument is None:
        raise Rejected(Rule.UNKNOWN_INSTRUMENT, f"isin {isin} is not in instruments.csv")
    account = _known_account(values, refdata)
    side = enum_field(values, "side", Side)
    quantity = required_decimal(values, "quantity")
    if quantity <= 0:
        raise Rejected(Rule.NON_POSITIVE_QUANTITY, f"quantity {quantity} must be positive")
    if not fits_scale(quantity, instrument.quantity_scale):
        raise Rejected(Rule.QUANTITY_EXCEEDS_SCALE,
                       f"quantity {quantity} has more than {instrument.quantity_scale} decimals "
                       f"allowed for {isin}")
    price = required_decimal(values, "price")
    if price <= 0:
        raise Rejected(Rule.NON_POSITIVE_PRICE, f"price {price} must be positive")
    currency = currency_field(values, "currency")
    if currency != instrument.currency:
        raise Rejected(Rule.CURRENCY_MISMATCH,
                       f"currency {currency} differs from {isin}'s trading currency "
                       f"{instrument.currency}")
    trade_date = required_date(values, "trade_date")
    if not calendar.is_trading_session(trade_date, instrument.mic):
        raise Rejected(Rule.NOT_A_BUSINESS_DAY,
                       f"trade_date {trade_date} is not a trading session of {instrument.mic}")
    settlement_date = _settlement_date(values, trade_date, instrument.mic, currency, calendar)
    scale = currency_scale(currency)
    gross = round_half_up(quantity * price, scale)
    given = decimal_field(values, "commission", optional=True)
    if given is not None and given < 0:
        raise Rejected(Rule.NEGATIVE_COMMISSION, f"commission {given} must not be negative")
    if given is not None and not fits_scale(given, scale):
        raise Rejected(Rule.AMOUNT_EXCEEDS_SCALE,
                       f"commission {given} has more than {scale} decimals for {currency}")
    commission = (round_half_up(given, scale) if given is not None
                  else refdata.commission(instrument.mic, currency, gross))
    return Trade(trade_id=trade_id, account=account, isin=isin, side=side, quantity=quantity,
                 price=price, currency=currency, trade_date=trade_date,
                 settlement_date=settlement_date, venue=values.get("venue", "") or instrument.mic,
                 counterparty=values.get("counterparty", "") or "STREET", gross=gross,
                 commission=commission,
                 content_hash=digest or content_hash(values, TRADE_COLUMNS),
                 sequence=sequence)


def _settlement_date(values: Mapping[str, str], trade_date: dt.date, mic: str, currency: str,
                     calendar: SettlementCalendar) -> dt.date:
    given = date_field(values, "settlement_date", optional=True)
    if given is None:
        return calendar.settlement_date(trade_date, mic, currency)
    if given < trade_date:
        raise Rejected(Rule.SETTLEMENT_DATE_BEFORE_TRADE_DATE,
                       f"settlement_date {given} is before trade_date {trade_date}")
    if not calendar.is_settlement_day(given, mic, currency):
        raise Rejected(Rule.NOT_A_BUSINESS_DAY,
                       f"settlement_date {given} is not a settlement day of {mic}/{currency}")
    return given


def cancel(values: Mapping[str, str], refdata: RefData) -> Cancel:
    """A CANCEL row's own fields; whether the trade can still be cancelled is the ledger's call."""
    trade_id = required(values, "trade_id")
    account = _known_account(values, refdata)
    cancel_date = weekday(required_date(values, "trade_date"), "trade_date")
    return Cancel(trade_id=trade_id, account=account, cancel_date=cancel_date,
                  content_hash=content_hash(values, TRADE_COLUMNS))


def cash_movement(values: Mapping[str, str], refdata: RefData) -> CashMovement:
    movement_id = required(values, "movement_id")
    account = _known_account(values, refdata)
    value_date = weekday(required_date(values, "date"), "date")
    currency = currency_field(values, "currency")
    amount = required_decimal(values, "amount")
    kind = enum_field(values, "kind", CashKind)
    scale = currency_scale(currency)
    if not fits_scale(amount, scale):
        raise Rejected(Rule.AMOUNT_EXCEEDS_SCALE,
                       f"amount {amount} has more than {scale} decimals for {currency}")
    if amount == 0:
        raise Rejected(Rule.ZERO_AMOUNT, "amount is zero: nothing to book")
    if (kind is CashKind.DEPOSIT and amount < 0) or (kind is CashKind.WITHDRAWAL and amount > 0):
        raise Rejected(Rule.AMOUNT_SIGN_CONTRADICTS_KIND,
                       f"a {kind.value} of {amount}: deposits pay in (positive), withdrawals "
                       f"pay out (negative)")
    return CashMovement(movement_id=movement_id, account=account, value_date=value_date,
                        currency=currency, amount=amount, kind=kind,
                        description=values.get("description", ""),
                        content_hash=content_hash(values, CASH_COLUMNS))
