"""``zaplecze eod --through DATE``: run each business day once, in order.

A day is one transaction, an ordered list of same-shaped steps:
    1. settle what is due: a trade without standing settlement instructions settles on its
       settlement date; an instrumented one (see services/settlement.py) only as confirmed
    2. instruct: settlement instructions for the instrumented trades booked (gross or net),
       cancellation messages for cancelled ones; what nets to nothing settles by netting
    3. apply the corporate actions whose ex date has come (entitlements, transformations) and
       raise the market claims of cash dividends for instrumented trades pending over the
       record date (services/ca_claims.py); an event reversed is never applied again
    4. credit corporate-action cash whose pay date has come (not that of a reversed event),
       and book the market claims whose pay date has come
    5. value positions at the latest closing prices
    6. age the fails and accrue their CSDR cash penalties at the day's closing prices
    7. check the invariants (stock record and cash book balanced per asset)
and is then marked as run. Running a day again finds it marked and changes nothing. After the
last day the whole journal is folded and compared with the materialised balances.
(`zaplecze eod --statements DIR` then reconciles the statements that arrived: see
services/reconciling.py; breaks age by the calendar when they are reported.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, Engine

from zaplecze.corporate_actions.apply import (
    Entitlement,
    Holding,
    PendingTrade,
    apply,
    cash_entry,
)
from zaplecze.corporate_actions.lifecycle import EventRecord, payload_hash
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.calendar import SettlementCalendar, weekdays
from zaplecze.kernel.money import currency_scale, decimal_of, is_currency, round_half_up, units
from zaplecze.kernel.problems import InvariantBroken
from zaplecze.ledger import accounts as gl
from zaplecze.ledger.model import Entry, Phase, settle, void
from zaplecze.refdata.model import RefData
from zaplecze.services import ca_claims, ca_events, lot_books, settlement
from zaplecze.store import bulk_indexes, repo, schema
from zaplecze.store.db import read_connection, refresh_statistics, with_retries
from zaplecze.store.journal import JournalWriter


@dataclass
class DayResult:
    day: dt.date
    settled: int = 0
    corporate_actions: list[str] = field(default_factory=list)
    held_actions: list[str] = field(default_factory=list)  # announced, not applicable as is
    cash_credits: int = 0
    claims_raised: int = 0
    claims_booked: int = 0
    valued_accounts: int = 0
    instructed: int = 0
    settled_by_netting: int = 0
    fails: int = 0
    penalties: int = 0
    entries: int = 0
    checkpoint: bool = False  # the day's balances and lots kept (services/lot_books.py)


@dataclass
class EodReport:
    days: list[DayResult] = field(default_factory=list)
    skipped: int = 0


class PositionFold:
    """Owner balances on trade basis, folded forward day by day within one run."""

    def __init__(self) -> None:
        self.balances: dict[tuple[str, str], int] = {}
        self.prices: dict[str, tuple[str, Decimal]] = {}  # isin -> (date, latest close)
        self.day: dt.date | None = None

    def advance(self, connection: Connection, day: dt.date) -> None:
        m = repo.mark(connection)
        since = self.day.isoformat() if self.day else "0000-00-00"
        for isin, price_date, close in connection.exec_driver_sql(
                f"SELECT isin, business_date, close FROM prices WHERE business_date > {m} AND "
                f"business_date <= {m} ORDER BY business_date", (since, day.isoformat())):
            self.prices[str(isin)] = (str(price_date), Decimal(close))
        if self.day is None:
            self.balances = repo.balances_as_of(connection, day, "trade", ("client", "house"))
        else:
            for account, asset, amount in connection.exec_driver_sql(
                    f"SELECT gl_account, asset, amount FROM postings WHERE business_date > {m} "
                    f"AND business_date <= {m} AND basis IN ('B', 'T') AND "
                    f"(gl_account LIKE {m} OR gl_account LIKE {m})",
                    (self.day.isoformat(), day.isoformat(), "client:%", "house:%")):
                key = (str(account), str(asset))
                self.balances[key] = self.balances.get(key, 0) + int(amount)
        self.day = day


def run_eod(engine: Engine, through: dt.date,
            progress: Callable[[DayResult, int, int], None] | None = None) -> EodReport:
    report = EodReport()
    bulk_indexes.build(engine)  # what a load stopped before its end left unbuilt
    with read_connection(engine) as connection:
        start = repo.earliest_date(connection)
        done = {row[0] for row in connection.exec_driver_sql(
            "SELECT business_date FROM eod_runs")}
        refdata = repo.refdata(connection)
        calendar = repo.calendar(connection)
        # Announced events as approved: read once, approvals do not change during a run.
        operation = ca_events.records(connection) if _announced(connection) else {}
    if start is None:
        return report
    days = [day for day in weekdays(start, through) if day.isoformat() not in done]
    report.skipped = len(weekdays(start, through)) - len(days)
    fold = PositionFold()
    for index, day in enumerate(days, start=1):
        # After a big load, and as a long run settles the journal: the planner's statistics.
        refresh_statistics(engine)

        def work(connection: Connection, day: dt.date = day) -> DayResult:
            return _run_day(connection, day, refdata, fold, calendar, operation)

        result = with_retries(engine, work)
        report.days.append(result)
        if progress:
            progress(result, index, len(days))
    if days:
        with read_connection(engine) as connection:
            check_stored_balances(connection)
    return report


def _run_day(connection: Connection, day: dt.date, refdata: RefData, fold: PositionFold,
             calendar: SettlementCalendar, operation: Mapping[str, EventRecord]) -> DayResult:
    result = DayResult(day)
    writer = JournalWriter(connection)
    result.settled = _settle_due(connection, writer, day, refdata)
    writer.flush()
    instructed = settlement.instruct(connection, writer, day, refdata)
    result.instructed = len(instructed.created)
    result.settled_by_netting = instructed.settled_by_netting
    writer.flush()
    for event in _due_actions(connection, day):
        record = operation.get(event.event_id)
        if record is not None:  # announced: applied only as approved (four eyes)
            reason = ca_events.hold_reason(record, _payload(connection, event, refdata))
            if reason:
                result.held_actions.append(reason)
                continue
        _apply_action(connection, writer, event, refdata)
        result.corporate_actions.append(event.event_id)
        writer.flush()
    result.claims_raised = len(ca_claims.raise_claims(connection, day, refdata,
                                                      result.corporate_actions))
    result.cash_credits = _credit_cash(connection, writer, day, refdata)
    result.claims_booked = ca_claims.book_claims(connection, writer, day)
    writer.flush()
    fold.advance(connection, day)
    result.valued_accounts = _value(connection, day, fold, refdata)
    closes = {isin: close for isin, (_, close) in fold.prices.items()}
    accrued, result.fails = settlement.accrue_penalties(connection, writer, day, refdata,
                                                        calendar, closes)
    result.penalties = len(accrued)
    writer.flush()
    _check_day(connection, day)
    if lot_books.is_checkpoint_day(day):
        lot_books.write(connection, day, writer.head.sequence)
        result.checkpoint = True
    result.entries = writer.written
    connection.execute(schema.eod_runs.insert(), [{
        "business_date": day.isoformat(),
        "completed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "entries_booked": writer.written, "head_sequence": writer.head.sequence,
        "journal_head": writer.head.hash}])
    return result


def _settle_due(connection: Connection, writer: JournalWriter, day: dt.date,
                refdata: RefData) -> int:
    due = repo.due_trades(connection, day)
    for key in settlement.instrumented_keys(connection, due, refdata):
        del due[key]  # settles as the depository confirms, not from the calendar
    if not due:
        return 0
    linked = repo.open_pending(connection, linked_to=list(due))
    by_trade: dict[str, list[Entry]] = {}
    for entry in linked.values():
        by_trade.setdefault(entry.linked_key, []).append(entry)
    for key, entry in due.items():
        assert entry.settle_date is not None
        writer.append(settle(entry, entry.settle_date))
        for transformation in by_trade.get(key, ()):
            writer.append(settle(transformation, entry.settle_date))
    return len(due)


def projected_action_cash(connection: Connection, account_id: str, currency: str,
                          day: dt.date, refdata: RefData) -> int:
    """Corporate-action cash the account will have received by the end of ``day`` that is not
    booked yet: entitlements computed but not credited, and events not yet applied, projected
    from the journal as it stands (what a withdrawal decided at load must count)."""
    m = repo.mark(connection)
    scale = currency_scale(currency)
    total = Decimal(0)
    for (net,) in connection.exec_driver_sql(
            f"SELECT n.net FROM entitlements n WHERE n.account = {m} AND n.currency = {m} AND "
            f"n.credit_date <= {m} AND NOT EXISTS (SELECT 1 FROM entries e WHERE "
            f"e.entry_key = {_CASH_KEY}) AND NOT EXISTS (SELECT 1 FROM ca_reversals r WHERE "
            f"r.event_id = n.event_id AND r.business_date <= {m})",
            (account_id, currency, day.isoformat(), day.isoformat())):
        total += Decimal(net)
    applied = {str(row[0]) for row in connection.exec_driver_sql(
        "SELECT event_id FROM ca_applications")}
    for event in repo.corporate_actions(connection):
        if event.event_id in applied or event.cash_date > day:
            continue
        for holding in holdings(connection, event, refdata):
            if holding.account != account_id:
                continue
            _, entitlement = apply(event, holding, refdata)
            if entitlement is not None and entitlement.currency == currency:
                total += entitlement.net
    return units(round_half_up(total, scale), scale)


def _announced(connection: Connection) -> bool:
    return connection.exec_driver_sql("SELECT 1 FROM ca_event_log LIMIT 1").first() is not None


def _payload(connection: Connection, event: CorporateAction, refdata: RefData) -> str:
    """The hash of the entitlements the event would give now (what an approval binds to)."""
    entitled = [entitlement for holding in holdings(connection, event, refdata)
                if (entitlement := apply(event, holding, refdata)[1]) is not None]
    return payload_hash(entitled)


def _due_actions(connection: Connection, day: dt.date) -> list[CorporateAction]:
    applied = {row[0] for row in connection.exec_driver_sql(
        "SELECT event_id FROM ca_applications")}
    return [event for event in repo.corporate_actions(connection)
            if event.ex_date <= day and event.event_id not in applied]


def holdings(connection: Connection, event: CorporateAction,
              refdata: RefData) -> list[Holding]:
    eve = event.ex_date - dt.timedelta(days=1)
    m = repo.mark(connection)
    positions: dict[str, int] = {}
    resulting: dict[str, int] = {}
    for (account, asset), amount in repo.balances_as_of(
            connection, eve, "trade", ("client", "house")).items():
        account_id = gl.account_id_of(account)
        if account_id is None:
            continue
        if asset == event.isin:
            positions[account_id] = amount
        elif asset == event.resulting_isin:
            resulting[account_id] = amount
    # Events already applied on this same ex date (file order) count: the second of two
    # events on one day sees the first one's result.
    owners = ("client:%", "house:%")
    for account, asset, amount in connection.exec_driver_sql(
            f"SELECT p.gl_account, p.asset, SUM(p.amount) FROM entries e JOIN postings p "
            f"ON p.entry_sequence = e.sequence WHERE e.kind IN ('CORPORATE_ACTION', "
            f"'TRANSFORMATION') AND e.business_date = {m} AND p.basis IN ('B', 'T') "
            f"AND p.asset IN ({m}, {m}) AND (p.gl_account LIKE {m} OR p.gl_account LIKE {m}) "
            f"GROUP BY p.gl_account, p.asset",
            (event.ex_date.isoformat(), event.isin, event.resulting_isin, *owners)):
        account_id = gl.account_id_of(str(account))
        if account_id is None:
            continue
        target = positions if asset == event.isin else resulting
        target[account_id] = target.get(account_id, 0) + int(amount)
    pending: dict[str, list[PendingTrade]] = {}
    # A trade cancelled on the ex date itself is, from that day on, as if never booked: it
    # carries no entitlement. (One cancelled later did carry it; its transformation is voided
    # with it below, and its cash entitlement is a market claim.)
    voided_by_ex = _voided_keys(connection, event.ex_date)
    # Each trade pending across the ex date, with what its transformations so far made of it.
    rows = connection.exec_driver_sql(
        f"SELECT t.trade_key, t.account, SUM(p.amount) FROM (SELECT e.sequence, e.account, "
        f"CASE WHEN e.kind = 'TRADE' THEN e.entry_key ELSE e.linked_key END AS trade_key "
        f"FROM entries e WHERE e.phase = 'PENDING' AND ((e.kind = 'TRADE' AND "
        f"e.business_date <= {m}) OR (e.kind = 'TRANSFORMATION' AND e.business_date <= {m}))"
        f") t JOIN postings p ON p.entry_sequence = t.sequence WHERE p.asset = {m} AND "
        f"(p.gl_account LIKE {m} OR p.gl_account LIKE {m}) AND NOT EXISTS (SELECT 1 FROM "
        f"entries x WHERE x.target_key = t.trade_key AND x.business_date <= {m}) "
        f"GROUP BY t.trade_key, t.account ORDER BY MIN(t.sequence)",
        (eve.isoformat(), event.ex_date.isoformat(), event.isin, *owners, eve.isoformat()))
    for key, account_id, amount in rows:
        if str(key) in voided_by_ex:
            positions[str(account_id)] = positions.get(str(account_id), 0) - int(amount)
            continue
        if int(amount):
            pending.setdefault(str(account_id), []).append(PendingTrade(str(key), int(amount)))
    # An account whose trades net to nothing on the eve still has its pending trades to
    # transform (bought and sold the day before: the sell settles in new shares).
    return [Holding(account_id, positions.get(account_id, 0), resulting.get(account_id, 0),
                    tuple(pending.get(account_id, ())))
            for account_id in sorted(positions.keys() | pending.keys()) if account_id in
            refdata.accounts]


def _apply_action(connection: Connection, writer: JournalWriter, event: CorporateAction,
                  refdata: RefData) -> None:
    entitled_holdings = holdings(connection, event, refdata)
    entitled = 0
    records = []
    keys = [t.entry_key for h in entitled_holdings for t in h.pending]
    posted_trades = _posted_keys(connection, keys)
    voided_trades = _void_dates(connection, keys)
    for holding in entitled_holdings:
        entries, entitlement = apply(event, holding, refdata)
        for entry in entries:
            writer.append(entry)
            if entry.phase is not Phase.PENDING:
                continue
            if entry.linked_key in posted_trades:
                writer.append(settle(entry, event.ex_date))
            elif entry.linked_key in voided_trades:  # cancelled before this day was run
                day = max(voided_trades[entry.linked_key], event.ex_date)
                writer.append(void(entry, day, f"trade {entry.linked_key} cancelled"))
        if entitlement is not None:
            entitled += 1
            records.append(_entitlement_record(entitlement))
    if records:
        connection.execute(schema.entitlements.insert(), records)
    connection.execute(schema.ca_applications.insert(), [{
        "event_id": event.event_id, "applied_on": event.ex_date.isoformat(),
        "accounts_entitled": entitled}])


def _voided_keys(connection: Connection, through: dt.date) -> set[str]:
    m = repo.mark(connection)
    return {str(row[0]) for row in connection.exec_driver_sql(
        f"SELECT target_key FROM entries WHERE phase = 'VOID' AND business_date <= {m}",
        (through.isoformat(),))}


def _void_dates(connection: Connection, keys: list[str]) -> dict[str, dt.date]:
    found = repo.entries_by_key(connection, [f"void:{key}" for key in keys])
    return {entry.target_key: entry.business_date for entry in found.values()}


def _posted_keys(connection: Connection, keys: list[str]) -> set[str]:
    found = repo.entries_by_key(connection, [f"post:{key}" for key in keys])
    return {key.split(":", 1)[1] for key in found}


def _entitlement_record(entitlement: Entitlement) -> dict[str, object]:
    return {"event_id": entitlement.event_id, "account": entitlement.account,
            "kind": entitlement.kind.value, "isin": entitlement.isin,
            "quantity": str(entitlement.quantity), "new_quantity": str(entitlement.new_quantity),
            "gross": str(entitlement.gross), "withholding": str(entitlement.withholding),
            "net": str(entitlement.net), "currency": entitlement.currency,
            "pay_date": entitlement.pay_date.isoformat(),
            "credit_date": entitlement.cash_date.isoformat()}


# The key of an entitlement's pay-date entry (apply.cash_entry), for the entitlements table
# aliased n: 'ca-cash:<event>:<account>'. (Market claims are corporate-action cash too.)
_CASH_KEY = "'ca-cash:' || n.event_id || ':' || n.account"


def _credit_cash(connection: Connection, writer: JournalWriter, day: dt.date,
                 refdata: RefData) -> int:
    m = repo.mark(connection)
    # Not the cash of an event reversed by then: the reversal undid what was booked of it.
    rows = connection.exec_driver_sql(
        f"SELECT * FROM entitlements n WHERE n.credit_date <= {m} AND NOT EXISTS (SELECT 1 FROM "
        f"entries e WHERE e.entry_key = {_CASH_KEY}) AND NOT EXISTS (SELECT 1 FROM "
        f"ca_reversals r WHERE r.event_id = n.event_id AND r.business_date <= {m}) "
        f"ORDER BY n.credit_date, n.event_id, n.account",
        (day.isoformat(), day.isoformat())).all()
    credited = 0
    for row in rows:
        entitlement = Entitlement(
            row.event_id, row.account, CaKind(row.kind), row.isin, Decimal(row.quantity),
            Decimal(row.gross), Decimal(row.withholding), Decimal(row.net), row.currency,
            dt.date.fromisoformat(row.pay_date), Decimal(row.new_quantity),
            dt.date.fromisoformat(row.credit_date))
        entry = cash_entry(entitlement, refdata)
        if entry is not None:
            writer.append(entry)
            credited += 1
    return credited


def _value(connection: Connection, day: dt.date, fold: PositionFold,
           refdata: RefData) -> int:
    """Each account's positions at the latest close on or before ``day``, per currency."""
    values: dict[tuple[str, str], Decimal] = {}
    counts: dict[tuple[str, str], list[int]] = {}  # [positions, without a price]
    for (account, asset), amount in fold.balances.items():
        instrument = refdata.instruments.get(asset)
        if instrument is None or amount == 0:
            continue
        account_id = gl.account_id_of(account)
        if account_id is None:
            continue
        key = (account_id, instrument.currency)
        count = counts.setdefault(key, [0, 0])
        count[0] += 1
        price = fold.prices.get(asset)
        if price is None:
            count[1] += 1
            continue
        values[key] = values.get(key, Decimal(0)) + decimal_of(
            amount, instrument.quantity_scale) * price[1]
    records = [{"business_date": day.isoformat(), "account": account, "currency": currency,
                "market_value": str(round_half_up(values.get((account, currency), Decimal(0)),
                                                  currency_scale(currency))),
                "positions": count[0], "unpriced": count[1]}
               for (account, currency), count in sorted(counts.items())]
    if records:
        repo.insert_rows(connection, "valuations", records)
    return len(records)


def _check_day(connection: Connection, day: dt.date) -> None:
    """Ownership equals location for every asset on both views (Σ balances = 0 per asset)."""
    bad = connection.exec_driver_sql(
        "SELECT asset, basis, SUM(amount) FROM balances GROUP BY asset, basis "
        "HAVING SUM(amount) <> 0 LIMIT 1").first()
    if bad:
        raise InvariantBroken(f"the books do not balance for {bad[0]} ({bad[1]} view) at the "
                              f"end of {day}: off by {bad[2]}")


def check_stored_balances(connection: Connection) -> None:
    """The materialised balances must equal the fold of the journal, exactly."""
    stored = repo.stored_balances(connection)
    folded = repo.folded_balances(connection)
    if stored != folded:
        differing = sorted(set(stored.items()) ^ set(folded.items()))[:3]
        raise InvariantBroken(f"stored balances differ from the journal's fold: {differing}")
    stored_cash = {key: amount for key, amount in stored.items() if is_currency(key[1])}
    by_day = repo.folded_cash_days(connection)
    if stored_cash != by_day:
        differing = sorted(set(stored_cash.items()) ^ set(by_day.items()))[:3]
        raise InvariantBroken(f"cash by day differs from the journal's fold: {differing}")
