"""Standing settlement instructions (SSIs): where and how we settle with each counterparty.

An SSI says, for one counterparty and one market and currency, at which depository (the place
of settlement, PSET, named by the CSD's BIC) the securities move, the counterparty's agent BIC
and its account there, our own safekeeping account at that CSD, whether cash moves against the
securities (DVP → ``Payment.AGAINST``) or separately (FOP → ``Payment.FREE``), and whether our
obligations with that counterparty are netted (a CCP or a CNS-style continuous net settlement:
one net long or short per security and day) or settled gross (bilateral: one per trade).

Market and currency may be ``*`` (any). The most specific SSI wins, in this order:

1. exact market and exact currency,
2. any market (``*``) with the exact currency,
3. the exact market with any currency (``*``),
4. any market and any currency (``*``, ``*``).

One (counterparty, market, currency) has at most one SSI: a second is refused (DUPLICATE_SSI)
and the first one stays. BICs are ISO 9362 (8 or 11 characters) as checked by python-stdnum,
written in capitals without blanks, as SWIFT writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stdnum import bic as bic_number

from zaplecze.kernel.fields import Rejected, currency_field, required
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.refdata.validate import mic_field
from zaplecze.settlement.model import Payment

ANY = "*"
COLUMNS = ("counterparty", "market", "currency", "place_of_settlement", "counterparty_bic",
           "counterparty_account", "safekeeping_account", "payment", "netting")
PAYMENT_CODES: dict[str, Payment] = {"DVP": Payment.AGAINST, "FOP": Payment.FREE}
NETTING_CODES: dict[str, bool] = {"GROSS": False, "NET": True}

SSIKey = tuple[str, str, str]  # (counterparty, market, currency)


@dataclass(frozen=True, slots=True)
class SSI:
    """One standing settlement instruction."""

    counterparty: str  # our code of the counterparty (the trades' ``counterparty``)
    market: str  # ISO 10383 MIC, or ``*``
    currency: str  # ISO 4217, or ``*``
    place_of_settlement: str  # the CSD's BIC (PSET)
    counterparty_bic: str  # the counterparty's agent at the CSD (DEAG / REAG)
    counterparty_account: str  # the counterparty's (agent's) account at the CSD
    safekeeping_account: str  # our securities account at the CSD (SAFE)
    payment: Payment  # AGAINST (DVP) or FREE (FOP)
    netting: bool  # True: net (CCP, CNS-style); False: gross (bilateral)

    @property
    def key(self) -> SSIKey:
        return (self.counterparty, self.market, self.currency)


def is_valid_bic(code: str) -> bool:
    """ISO 9362, 8 or 11 characters (python-stdnum), in capitals without blanks."""
    return code == code.strip().upper() and " " not in code and bool(bic_number.is_valid(code))


def bic_field(values: Mapping[str, str], column: str) -> str:
    code = required(values, column)
    if not is_valid_bic(code):
        raise Rejected(Rule.INVALID_BIC, f"{column} {code!r} is not a valid BIC (ISO 9362: "
                                         f"4 letters bank, 2 letters country, 2 location, "
                                         f"optional 3 branch; capitals)")
    return code


def _code_field(values: Mapping[str, str], column: str, codes: Mapping[str, object]) -> str:
    text = values.get(column, "")
    if text not in codes:
        raise Rejected(Rule.INVALID_ENUM_VALUE,
                       f"{column} {text!r} is not one of {', '.join(codes)}")
    return text


def ssi_row(values: Mapping[str, str]) -> SSI:
    """One row of ``ssis.csv`` validated into an SSI; a broken rule raises ``Rejected``."""
    counterparty = required(values, "counterparty")
    market = required(values, "market")
    if market != ANY:
        market = mic_field(values, "market")
    currency = required(values, "currency")
    if currency != ANY:
        currency = currency_field(values, "currency")
    place = bic_field(values, "place_of_settlement")
    counterparty_bic = bic_field(values, "counterparty_bic")
    counterparty_account = required(values, "counterparty_account")
    safekeeping_account = required(values, "safekeeping_account")
    payment = PAYMENT_CODES[_code_field(values, "payment", PAYMENT_CODES)]
    netting = NETTING_CODES[_code_field(values, "netting", NETTING_CODES)]
    return SSI(counterparty=counterparty, market=market, currency=currency,
               place_of_settlement=place, counterparty_bic=counterparty_bic,
               counterparty_account=counterparty_account,
               safekeeping_account=safekeeping_account, payment=payment, netting=netting)


def _lookup_order(counterparty: str, market: str, currency: str) -> tuple[SSIKey, ...]:
    return ((counterparty, market, currency), (counterparty, ANY, currency),
            (counterparty, market, ANY), (counterparty, ANY, ANY))


@dataclass(frozen=True, slots=True)
class SSIBook:
    """The SSIs by (counterparty, market, currency); build it with ``SSIBook.build``."""

    by_key: Mapping[SSIKey, SSI] = field(default_factory=dict)

    @classmethod
    def build(cls, ssis: Iterable[SSI]) -> tuple[SSIBook, list[Problem]]:
        """The book of ``ssis``; a second SSI for a key already seen is refused (the first
        stays) with a DUPLICATE_SSI problem naming the key."""
        book, problems = cls.build_located((ssi, "", None) for ssi in ssis)
        return book, problems

    @classmethod
    def build_located(cls, ssis: Iterable[tuple[SSI, str, int | None]],
                      ) -> tuple[SSIBook, list[Problem]]:
        """Like ``build`` for SSIs read from a file: (ssi, source, line) each, so a refused
        duplicate is reported where it stands."""
        by_key: dict[SSIKey, SSI] = {}
        first_line: dict[SSIKey, int | None] = {}
        problems: list[Problem] = []
        for ssi, source, line in ssis:
            earlier = by_key.get(ssi.key)
            if earlier is not None:
                where = f" (line {first_line[ssi.key]})" if first_line[ssi.key] else ""
                same = "the same" if earlier == ssi else "other"
                problems.append(Problem(Rule.DUPLICATE_SSI,
                                        f"an SSI for counterparty {ssi.counterparty}, market "
                                        f"{ssi.market}, currency {ssi.currency} is already "
                                        f"given{where} with {same} content; the first is kept",
                                        source, line))
                continue
            by_key[ssi.key] = ssi
            first_line[ssi.key] = line
        return cls(by_key), problems

    def find(self, counterparty: str, market: str, currency: str) -> SSI | None:
        """The most specific SSI for a trade with ``counterparty`` on ``market`` in
        ``currency``: exact > any market > any currency > both any; None when there is none."""
        for key in _lookup_order(counterparty, market, currency):
            found = self.by_key.get(key)
            if found is not None:
                return found
        return None

    def __len__(self) -> int:
        return len(self.by_key)


def load_ssis(rows: Iterable[tuple[int, Mapping[str, str]]],
              source: str = "ssis.csv") -> tuple[SSIBook, list[Problem]]:
    """``ssis.csv`` rows (physical line, values) into a book: rejected rows and refused
    duplicates come back as problems located at their line; the other rows make the book."""
    accepted: list[tuple[SSI, str, int | None]] = []
    problems: list[Problem] = []
    for line, values in rows:
        try:
            accepted.append((ssi_row(values), source, line))
        except Rejected as rejected:
            problems.append(Problem(rejected.rule, rejected.detail, source, line))
    book, duplicates = SSIBook.build_located(accepted)
    return book, sorted(problems + duplicates, key=lambda problem: problem.line or 0)
