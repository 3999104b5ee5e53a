"""The demo's workbench: staff users for every role, two desks, and a day's exceptions to work.

After the demo book has run its end of day, ``seed`` adds:
- users (one per role, two operations users for four-eyes, one operations user of the Warsaw
  desk), all with the demo password and their own TOTP secret (``zaplecze user code USER``);
- desks: Polish residents' accounts are the Warsaw desk (WAW), the others the international
  desk (INTL); house accounts belong to no desk (only firm-wide staff see them);
- two announced PKO dividends (MT564): one only announced (to prepare), one prepared by ops1
  and awaiting a second person's approval;
- a KDPW statement of holdings that disagrees with our books (one quantity short, one security
  missing), reconciled: breaks in the exception queue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from zaplecze.services import ca_desk, identity, reconciling
from zaplecze.services.audit_trail import Actor
from zaplecze.store import repo
from zaplecze.store.db import read_connection

DEMO_PASSWORD = "zaplecze-demo-2024"
SEEDED_BY = Actor("demo", "setup")


@dataclass(frozen=True)
class StaffMember:
    username: str
    role: str
    desk: str = ""


STAFF = (
    StaffMember("ops1", "operations"), StaffMember("ops2", "operations"),
    StaffMember("settle", "settlement"), StaffMember("acct", "accounting"),
    StaffMember("compliance", "compliance"), StaffMember("auditor", "auditor"),
    StaffMember("front", "front_office"), StaffMember("admin", "administrator"),
    StaffMember("waw.ops", "operations", "WAW"),
)

PKO = "PLPKO0000016"
DEMO_DEPOSITORY = "KDPW"
DEMO_SAFEKEEPING = "ZAPL-KDPW-01"


def _mt564(corp: str, seme: str, ex: dt.date, record: dt.date, pay: dt.date,
           rate: str) -> str:
    def day(value: dt.date) -> str:
        return value.strftime("%Y%m%d")

    return "\n".join((
        "{1:F01ZAPLPLPWAXXX0000000000}{2:O5641200" + day(ex)[2:] + "KDPWPLPWAXXX0000000000"
        + day(ex)[2:] + "1200N}{4:",
        ":16R:GENL", f":20C::CORP//{corp}", f":20C::SEME//{seme}", ":23G:NEWM",
        ":22F::CAEV//DVCA", ":22F::CAMV//MAND", f":98C::PREP//{day(ex)}090000",
        ":25D::PROC//COMP", ":16S:GENL",
        ":16R:USECU", f":35B:ISIN {PKO}", "PKO BANK POLSKI SA", ":16R:ACCTINFO",
        f":97A::SAFE//{DEMO_SAFEKEEPING}", ":16S:ACCTINFO", ":16S:USECU",
        ":16R:CADETL", f":98A::XDTE//{day(ex)}", f":98A::PAYD//{day(pay)}",
        f":98A::RDTE//{day(record)}", f":92F::GRSS//PLN{rate}", ":16S:CADETL",
        ":16R:CAOPTN", ":13A::CAON//001", ":22F::CAOP//CASH", ":11A::OPTN//PLN",
        ":17B::DFLT//Y", f":92F::GRSS//PLN{rate}", ":16R:CASHMOVE", ":22H::CRDB//CRED",
        f":98A::PAYD//{day(pay)}", f":98A::VALU//{day(pay)}", ":16S:CASHMOVE",
        ":16S:CAOPTN", "-}", ""))


def seed(engine: Engine, folder: Path, last: dt.date) -> list[StaffMember]:
    """Users, desks, announcements and a statement; idempotent (a second run adds nothing)."""
    with read_connection(engine) as connection:
        existing = {user.username for user in identity.list_users(connection)}
        accounts = connection.exec_driver_sql(
            "SELECT account, kind, tax_residence FROM accounts ORDER BY account").all()
        calendar = repo.calendar(connection)
    for member in STAFF:
        if member.username not in existing:
            identity.add_user(engine, SEEDED_BY, member.username, DEMO_PASSWORD,
                              [member.role], member.desk,
                              display_name=member.username.replace(".", " ").title())
    clients = [(a, residence) for a, kind, residence in accounts if kind == "CLIENT"]
    for desk, members in (("WAW", [a for a, r in clients if r == "PL"]),
                          ("INTL", [a for a, r in clients if r != "PL"])):
        if members:
            identity.assign_desk(engine, SEEDED_BY, desk, members)

    folder.mkdir(parents=True, exist_ok=True)
    ex = calendar.add_settlement_days(last, 5, "XWAR", "PLN")
    record = calendar.add_settlement_days(ex, 1, "XWAR", "PLN")
    pay = calendar.add_settlement_days(record, 6, "XWAR", "PLN")
    announcements = folder / "mt564-pko.fin"
    announcements.write_text(
        _mt564("PKO-DVCA-DEMO-1", "DEMO000001", ex, record, pay, "1,82")
        + _mt564("PKO-DVCA-DEMO-2", "DEMO000002", ex, record, pay, "0,35"),
        encoding="latin-1")
    ca_desk.announce(engine, announcements, "ops1")
    with read_connection(engine) as connection:
        prepared = ca_desk.records(connection)["PKO-DVCA-DEMO-2"].prepared_by
    if not prepared:
        ca_desk.compute(engine, "PKO-DVCA-DEMO-2", "ops1")

    statement = folder / f"kdpw-holdings-{last.isoformat()}.csv"
    statement.write_text(_holdings_statement(engine, last), encoding="utf-8")
    reconciling.reconcile_file(engine, statement, "demo", last, want="positions",
                               depository=DEMO_DEPOSITORY)
    return list(STAFF)


def _holdings_statement(engine: Engine, last: dt.date) -> str:
    """What KDPW says we hold there: our settled figures, but one line 10 short and the
    smallest holding left out."""
    with read_connection(engine) as connection:
        held = repo.balances_as_of(connection, last, "settlement", ("depository",))
        instruments = repo.refdata(connection).instruments
    at_kdpw = sorted((asset, abs(Decimal(amount)).scaleb(-instruments[asset].quantity_scale))
                     for (gl, asset), amount in held.items()
                     if gl == f"depository:{DEMO_DEPOSITORY}" and asset in instruments)
    lines = ["date,safekeeping_account,isin,quantity"]
    smallest = min(at_kdpw, key=lambda pair: pair[1])[0] if len(at_kdpw) > 1 else ""
    for index, (isin, units) in enumerate(at_kdpw):
        if isin == smallest:
            continue
        shown = units - 10 if index == 0 else units
        lines.append(f"{last.isoformat()},{DEMO_SAFEKEEPING},{isin},{shown}")
    return "\n".join(lines) + "\n"
