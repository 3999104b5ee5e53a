"""Reference-data records and the snapshot the domain resolves trades against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from zaplecze.kernel.money import currency_scale, round_half_up


class AccountKind(StrEnum):
    CLIENT = "CLIENT"
    HOUSE = "HOUSE"


class LotMethod(StrEnum):
    FIFO = "FIFO"
    LIFO = "LIFO"
    HIFO = "HIFO"
    AVERAGE = "AVERAGE"


@dataclass(frozen=True, slots=True)
class Instrument:
    isin: str
    symbol: str
    name: str
    kind: str
    currency: str
    mic: str
    issuer_country: str
    quantity_scale: int


@dataclass(frozen=True, slots=True)
class Account:
    account: str
    name: str
    kind: AccountKind
    base_currency: str
    tax_residence: str
    lot_method: LotMethod


@dataclass(frozen=True, slots=True)
class FeeRule:
    mic: str
    currency: str
    rate_bps: Decimal
    minimum: Decimal


@dataclass(frozen=True, slots=True)
class WithholdingRate:
    issuer_country: str
    tax_residence: str  # an ISO 3166 code or "*"
    rate: Decimal


@dataclass(frozen=True)
class RefData:
    """Everything a booking rule needs to resolve an input against; built once per command."""

    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    accounts: Mapping[str, Account] = field(default_factory=dict)
    fees: Mapping[tuple[str, str], FeeRule] = field(default_factory=dict)
    withholding: Mapping[tuple[str, str], WithholdingRate] = field(default_factory=dict)

    def commission(self, mic: str, currency: str, gross: Decimal) -> Decimal:
        """max(minimum, gross × rate_bps / 10000), rounded half-up; no schedule row: 0."""
        rule = self.fees.get((mic, currency))
        scale = currency_scale(currency)
        if rule is None:
            return round_half_up(Decimal(0), scale)
        computed = round_half_up(abs(gross) * rule.rate_bps / Decimal(10000), scale)
        return max(round_half_up(rule.minimum, scale), computed)

    def withholding_rate(self, issuer_country: str, tax_residence: str) -> Decimal:
        for key in ((issuer_country, tax_residence), (issuer_country, "*")):
            rate = self.withholding.get(key)
            if rate is not None:
                return rate.rate
        return Decimal(0)
