"""SWIFT ISO 15022 MT5xx: the shared samples, written-then-read round trips, hand-built
statuses and confirmations, the x character set, and broken input."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import isin as isin_number

from conftest import shared_path
from zaplecze.formats.swift_mt import (
    Holding,
    MtWriteError,
    check_mandatory,
    check_x_charset,
    format_swift_decimal,
    mt54x_problems,
    parse_fin,
    parse_swift_decimal,
    read_confirmations,
    read_holdings,
    read_instructions,
    read_settlement_messages,
    read_status_advices,
    transliterate,
    write_mt54x,
)
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.settlement.model import (
    Direction,
    Function,
    Instruction,
    Party,
    Payment,
    StatusKind,
)

# --- helpers ----------------------------------------------------------------------------------


def sample(name: str) -> str:
    return shared_path("standards", "swift", "mt5xx", name).read_text()


def where(problems: list[Problem]) -> list[tuple[Rule, int | None]]:
    return [(problem.rule, problem.line) for problem in problems]


def line_of(text: str, marker: str, after: str = "") -> int:
    """The 1-based line of the first ``marker`` (after the first ``after``), found by hand."""
    start = text.index(after) if after else 0
    return text[:text.index(marker, start)].count("\n") + 1


def fin(mt: str, *lines: str) -> str:
    """An output message (as our custodian would deliver it) with block 4 ``lines``."""
    return (f"{{1:F01BROKPLPWAXXX0000000000}}{{2:O{mt}1200240105CUSTUS33AXXX0000000000"
            f"2401051200N}}{{4:\n" + "\n".join(lines) + "\n-}")


def mt548(*statuses: tuple[str, tuple[str, ...]], function: str = "INST",
          related: str = "ZAP-0001") -> str:
    """An MT548 with one STAT sequence per (':25D:' text, reason codes)."""
    lines = [":16R:GENL", ":20C::SEME//STAT-77", f":23G:{function}",
             ":98C::PREP//20240105120000", ":16R:LINK", ":13A::LINK//543",
             f":20C::RELA//{related}", ":16S:LINK"]
    for status, reasons in statuses:
        lines += [":16R:STAT", f":25D::{status}"]
        for reason in reasons:
            lines += [":16R:REAS", f":24B::{status.rpartition('/')[2]}//{reason}", ":16S:REAS"]
        lines.append(":16S:STAT")
    lines += [":16S:GENL", ":16R:SETTRAN", ":35B:ISIN US0378331005",
              ":36B::SETT//UNIT/1000,", ":97A::SAFE//ACC-1", ":22F::SETR//TRAD",
              ":98A::SETT//20240105", ":16S:SETTRAN"]
    return fin("548", *lines)


def confirmation(mt: str, *extra: str, quantity: str = "UNIT/400,",
                 function: str = "NEWM") -> str:
    """An MT544–547 confirming part of our instruction ZAP-0001; ``extra`` lines go in FIAC."""
    agent = "DEAG" if mt in ("544", "545") else "REAG"
    amount = [":16R:AMT", ":19A::ESTT//EUR4000,50", ":16S:AMT"] if mt in ("545", "547") else []
    return fin(mt, ":16R:GENL", ":20C::SEME//CONF-1", f":23G:{function}",
               ":16R:LINK", ":20C::RELA//ZAP-0001", ":16S:LINK",
               *[line for line in extra if line.startswith(":22F::PARS")], ":16S:GENL",
               ":16R:TRADDET", ":98A::SETT//20240105", ":98A::ESET//20240108",
               ":35B:ISIN PLPKO0000016", ":16S:TRADDET",
               ":16R:FIAC", f":36B::ESTT//{quantity}",
               *[line for line in extra if not line.startswith(":22F::PARS")],
               ":97A::SAFE//ACC-1", ":16S:FIAC",
               ":16R:SETDET", ":22F::SETR//TRAD", ":16R:SETPRTY", f":95P::{agent}//CPTYPLPW",
               ":16S:SETPRTY", ":16R:SETPRTY", ":95P::PSET//KDPWPLPW", ":16S:SETPRTY",
               *amount, ":16S:SETDET")


INSTRUCTION = Instruction(
    reference="ZAP-0001", function=Function.NEW, direction=Direction.RECEIVE,
    payment=Payment.AGAINST, trade_date=dt.date(2024, 1, 3), settlement_date=dt.date(2024, 1, 5),
    isin="PLPKO0000016", quantity=Decimal("1000"), amount=Decimal("41250.5"), currency="PLN",
    account_owner="BROKPLPW", safekeeping_account="ACC-1", place_of_settlement="KDPWPLPW",
    counterparty=Party("CPTYPLPWXXX", "7001"), trade_ids=("T-1",),
    creation=dt.datetime(2024, 1, 3, 18, 5, 9))

# --- the shared samples -----------------------------------------------------------------------

# name -> (rule, line) of every warning its reader gives; () when it reads cleanly. Every sample
# is read (no error); a flaw that leaves no doubt about the sender's meaning is a warning. The
# reader is read_instructions (MT540–543), read_confirmations (MT544–547) or read_holdings (MT535).
SAMPLE_WARNINGS: dict[str, tuple[tuple[Rule, int], ...]] = {
    "MT535_01.fin": ((Rule.MT_MISSING_SEQUENCE, 14),),  # ACTI//Y, no SUBSAFE (rule C1, E66)
    "MT535_02.fin": ((Rule.MT_MALFORMED, 31),),  # ends inside :16R:FIN (empty) and SUBSAFE
    "MT535_03.fin": ((Rule.MT_MISSING_SEQUENCE, 14),),  # MT535_01 after its NAK (E66013)
    "MT535_04.fin": ((Rule.MT_MALFORMED, 47),),  # block 5 never closed
    "MT535_05.fin": ((Rule.MT_MALFORMED, 31),),  # ends inside :16R:FIN (empty) and SUBSAFE
    "MT535_06.fin": (),
    "MT540_01.fin": (),  # no :98a::TRAD: (optional): trade_date None
    "MT540_02.fin": (),
    "MT540_03.fin": (),
    "MT540_04.fin": ((Rule.MT_MALFORMED, 14),),  # :36B::SETT/UNIT/299000, (one slash)
    "MT540_05.fin": (),
    "MT541_01.fin": ((Rule.MT_MALFORMED, 14),),  # :16S:TRADFOO closes :16R:TRADDET
    "MT541_02.fin": (), "MT541_03.fin": (), "MT541_04.fin": (), "MT541_05.fin": (),
    "MT541_06.fin": (), "MT541_07.fin": (), "MT542_01.fin": (), "MT543_01.fin": (),
    "MT543_02.fin": (), "MT543_03.fin": (), "MT543_04.fin": (), "MT543_05.fin": (),
    "MT543_06.fin": (), "MT544_01.fin": (), "MT545_01.fin": (), "MT546_01.fin": (),
    "MT547_01.fin": (), "MT547_02.fin": (),
}
# what each sample reads to: instructions/confirmations one each; MT535 its holdings
SAMPLE_VALUES = {"MT535_01.fin": 0, "MT535_02.fin": 1, "MT535_03.fin": 0, "MT535_04.fin": 2,
                 "MT535_05.fin": 1, "MT535_06.fin": 1}


def read_sample(name: str) -> tuple[list[object], list[Problem]]:
    text = sample(name)
    mt = name[2:5]
    if mt == "535":
        holdings, problems = read_holdings(text, name)
        return list(holdings), problems
    if mt in ("540", "541", "542", "543"):
        instructions, problems = read_instructions(text, name)
        return list(instructions), problems
    confirmations, problems = read_confirmations(text, name)
    return list(confirmations), problems


def test_every_mt54x_and_mt535_sample_is_listed() -> None:
    folder = shared_path("standards", "swift", "mt5xx")
    names = {path.name for path in folder.glob("MT5[34]*.fin")} - {"MT537_01.fin"}
    assert names == set(SAMPLE_WARNINGS)


@pytest.mark.parametrize("name", sorted(SAMPLE_WARNINGS))
def test_sample_reads_without_error_and_with_exactly_its_warnings(name: str) -> None:
    values, problems = read_sample(name)
    assert [problem for problem in problems if not problem.is_warning] == []
    assert where(problems) == list(SAMPLE_WARNINGS[name])
    assert all(problem.source == name for problem in problems)
    assert len(values) == SAMPLE_VALUES.get(name, 1)


@pytest.mark.parametrize("name", sorted(SAMPLE_WARNINGS))
def test_sample_frames(name: str) -> None:
    messages, problems = parse_fin(sample(name), name)
    framing = {"MT535_02.fin", "MT535_04.fin", "MT535_05.fin", "MT541_01.fin"}
    assert where(problems) == (list(SAMPLE_WARNINGS[name]) if name in framing else [])
    assert all(problem.is_warning for problem in problems)
    assert len(messages) == (2 if name == "MT535_03.fin" else 1)  # MT535_03: NAK + MT535


def test_damaged_trailing_samples_keep_what_they_hold() -> None:
    [cut], _ = read_holdings(sample("MT535_02.fin"), "s")  # the FIN before the cut is read
    assert (cut.quantity_type, cut.quantity) == ("FAMT", Decimal("300"))
    [misspelt], _ = read_instructions(sample("MT541_01.fin"), "s")
    assert misspelt.isin and misspelt.trade_date is not None
    [one_slash], _ = read_instructions(sample("MT540_04.fin"), "s")
    assert one_slash.quantity == Decimal("299000")
    [no_trade_date], _ = read_instructions(sample("MT540_01.fin"), "s")
    assert no_trade_date.trade_date is None
    assert no_trade_date.settlement_date == dt.date(2017, 7, 29)


def test_sample_mt540_02_a_cancellation_of_a_face_amount() -> None:
    [instruction], _ = read_instructions(sample("MT540_02.fin"), "MT540_02.fin")
    assert instruction == Instruction(
        reference="TFH5436259-999", function=Function.CANCEL, direction=Direction.RECEIVE,
        payment=Payment.FREE, trade_date=dt.date(2021, 12, 16),
        settlement_date=dt.date(2021, 12, 16), isin="FR0099001N99",
        quantity=Decimal("31000000"), amount=None, currency=None,
        account_owner="BBBBFRPPHCM",  # the sender, from the MIR of an output message
        safekeeping_account="0528808067001999", place_of_settlement="EEEEFRPPXXX",
        counterparty=Party("CCCCBEBEECL", "94999"), linked_reference="TFH5436259-999",
        creation=dt.datetime(2021, 12, 16, 14, 44, 2))


def test_sample_mt541_06_receive_against_payment() -> None:
    [instruction], _ = read_instructions(sample("MT541_06.fin"), "s")
    assert (instruction.reference, instruction.isin, instruction.quantity) == \
        ("2005070600000006", "GB0007192106", Decimal("5000.00"))
    assert (instruction.currency, instruction.amount) == ("GBP", Decimal("6958.31"))
    assert (instruction.trade_date, instruction.settlement_date) == \
        (dt.date(2005, 7, 6), dt.date(2005, 7, 11))
    assert instruction.counterparty == Party("CRST/382")  # :95R::DEAG/CRST/382
    assert instruction.place_of_settlement == "CRSTGB22"
    assert instruction.account_owner == "FOOBARXX"  # block 1 of an input message
    assert instruction.creation == dt.datetime(2005, 7, 6)  # a 98A date: midnight


def test_sample_mt542_and_mt543_deliveries() -> None:
    [free], _ = read_instructions(sample("MT542_01.fin"), "s")
    assert (free.direction, free.payment, free.quantity) == \
        (Direction.DELIVER, Payment.FREE, Decimal("110000"))
    assert free.counterparty == Party("CCCCCCCC")  # :95P::REAG//
    assert free.place_of_settlement == "XXX"  # :95Q::PSET//XXX, a name, not a BIC
    [against], _ = read_instructions(sample("MT543_01.fin"), "s")
    assert (against.direction, against.payment) == (Direction.DELIVER, Payment.AGAINST)
    assert (against.quantity, against.amount, against.currency) == \
        (Decimal("123.45"), Decimal("1234.56"), "EUR")
    assert (against.safekeeping_account, against.counterparty.bic) == \
        ("100948783600", "DAKV/8888")


def test_sample_mt540_01_generic_reading() -> None:
    [message], problems = parse_fin(sample("MT540_01.fin"), "MT540_01.fin")
    assert problems == [] and check_mandatory(message) == []
    assert (message.message_type, message.direction) == ("540", "I")
    assert (message.sender_bic, message.receiver_bic) == ("TESTUS20", "FOOXUS3N")
    parties = message.body.find("SETDET", "SETPRTY")
    assert [party.fields[0].qualifier for party in parties] == \
        ["PSET", "BUYR", "SELL", "DEAG", "REAG"]
    pset = parties[0].fields[0]
    assert (pset.tag, pset.value) == ("95Q", "Foo name and address in a large lin\ne of text")
    [account] = message.body.find("FIAC")[0].every("97B")
    assert (account.qualifier, account.issuer, account.value) == ("SAFE", "SA22", "AS11/123456")
    settlement = message.body.find("TRADDET")[0].fields[0]
    assert (settlement.tag, settlement.qualifier, settlement.line) == ("98C", "SETT", 11)


def test_sample_confirmations() -> None:
    [receive], _ = read_confirmations(sample("MT544_01.fin"), "MT544_01.fin")
    assert (receive.reference, receive.message_reference) == ("09010110000000", "X100000")
    assert (receive.direction, receive.payment) == (Direction.RECEIVE, Payment.FREE)
    assert (receive.isin, receive.quantity, receive.amount) == \
        ("IT0004176001", Decimal("299000"), None)
    assert receive.settlement_date == dt.date(2009, 1, 1)
    assert receive.source == "MT544_01.fin:1" and not receive.partial
    [paid], _ = read_confirmations(sample("MT545_01.fin"), "s")
    assert (paid.reference, paid.quantity, paid.currency, paid.amount) == \
        ("09010110000001", Decimal("5000"), "EUR", Decimal("11235"))
    [cusip], _ = read_confirmations(sample("MT547_01.fin"), "s")
    assert (cusip.reference, cusip.message_reference) == ("00013507299330A", "T314314CDM0")
    assert (cusip.isin, cusip.extra) == \
        ("", {"security_id": "/US/3132MAD40", "quantity_type": "FAMT"})
    assert (cusip.quantity, cusip.amount) == (Decimal("8167548"), Decimal("8226417.05"))
    assert cusip.settlement_date == dt.date(2014, 11, 13)


def test_sample_confirmations_answer_the_sample_instructions() -> None:
    """MT545/546/547_02 confirm MT541_07, MT542_01, MT543_06 (their RELA is those SEMEs)."""
    for confirmation_name, instruction_name in (("MT545_01.fin", "MT541_07.fin"),
                                                ("MT546_01.fin", "MT542_01.fin"),
                                                ("MT547_02.fin", "MT543_06.fin")):
        [settled], _ = read_confirmations(sample(confirmation_name), confirmation_name)
        [instructed], _ = read_instructions(sample(instruction_name), instruction_name)
        assert settled.reference == instructed.reference
        assert (settled.isin, settled.quantity, settled.direction, settled.payment) == \
            (instructed.isin, instructed.quantity, instructed.direction, instructed.payment)
        assert settled.amount == instructed.amount


def test_sample_mt535_06_holdings() -> None:
    holdings, problems = read_holdings(sample("MT535_06.fin"), "MT535_06.fin")
    assert problems == []
    assert holdings == [Holding(account="F275", isin="", quantity=Decimal("35732656"),
                                statement_date=dt.date(2006, 9, 13), quantity_type="FAMT",
                                security_id="/US/000000000")]


def test_sample_mt535_03_a_nak_before_the_message() -> None:
    service, statement = parse_fin(sample("MT535_03.fin"), "s")[0]
    assert (service.service_id, service.is_user_message, service.message_type) == ("21", False, "")
    assert [(f.tag, f.text) for f in service.fields] == \
        [("177", "0703281337"), ("451", "1"), ("405", "E66013")]
    assert (statement.message_type, statement.trailer) == \
        ("535", (("MAC", "8A1FADA1"), ("CHK", "B018C2CA74CD")))


# --- writing and reading back -----------------------------------------------------------------

WRITTEN_MT541 = "\r\n".join([
    "{1:F01BROKPLPWAXXX0000000000}{2:I541CUSTPLPWXXXXN}{4:",
    ":16R:GENL", ":20C::SEME//ZAP-0001", ":23G:NEWM", ":98C::PREP//20240103180509",
    ":16R:LINK", ":20C::TRRF//T-1", ":16S:LINK", ":16S:GENL",
    ":16R:TRADDET", ":98A::SETT//20240105", ":98A::TRAD//20240103",
    ":35B:ISIN PLPKO0000016", ":16S:TRADDET",
    ":16R:FIAC", ":36B::SETT//UNIT/1000,", ":95P::ACOW//BROKPLPW", ":97A::SAFE//ACC-1",
    ":16S:FIAC",
    ":16R:SETDET", ":22F::SETR//TRAD",
    ":16R:SETPRTY", ":95P::DEAG//CPTYPLPWXXX", ":97A::SAFE//7001", ":16S:SETPRTY",
    ":16R:SETPRTY", ":95P::PSET//KDPWPLPW", ":16S:SETPRTY",
    ":16R:AMT", ":19A::SETT//PLN41250,5", ":16S:AMT", ":16S:SETDET", "-}"])


def test_write_mt541_exactly() -> None:
    assert write_mt54x(INSTRUCTION, "BROKPLPW", "CUSTPLPW") == WRITTEN_MT541


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("payment", list(Payment))
@pytest.mark.parametrize("function", list(Function))
def test_every_kind_round_trips(direction: Direction, payment: Payment,
                                function: Function) -> None:
    against = payment is Payment.AGAINST
    instruction = replace(
        INSTRUCTION, direction=direction, payment=payment, function=function,
        amount=INSTRUCTION.amount if against else None, currency="PLN" if against else None,
        linked_reference="ZAP-0000" if function is Function.CANCEL else None,
        partial_allowed=function is Function.NEW)
    text = write_mt54x(instruction, "BROKPLPW", "CUSTPLPW")
    mt = {(Direction.RECEIVE, Payment.FREE): "540", (Direction.RECEIVE, Payment.AGAINST): "541",
          (Direction.DELIVER, Payment.FREE): "542", (Direction.DELIVER, Payment.AGAINST): "543",
          }[(direction, payment)]
    assert text.startswith(f"{{1:F01BROKPLPWAXXX0000000000}}{{2:I{mt}CUSTPLPWXXXXN}}{{4:\r\n")
    agent = "DEAG" if direction is Direction.RECEIVE else "REAG"
    assert f":95P::{agent}//CPTYPLPWXXX" in text
    assert (":19A::SETT//PLN41250,5" in text) is against
    assert (":20C::PREV//ZAP-0000" in text) is (function is Function.CANCEL)
    assert (":22F::STCO//NPAR" in text) is (function is Function.CANCEL)
    assert read_instructions(text, "written") == ([instruction], [])


def test_polish_names_are_transliterated_and_wrapped() -> None:
    name = "Dom Maklerski Zażółć Gęślą Jaźń Spółka Akcyjna w Łodzi"
    instruction = replace(INSTRUCTION, counterparty=Party(name, "7001"))
    text = write_mt54x(instruction, "BROKPLPW", "CUSTPLPW")
    assert ":95Q::DEAG//Dom Maklerski Zazolc Gesla Jazn Spo\r\nlka Akcyjna w Lodzi\r\n" in text
    [read], problems = read_instructions(text, "written")
    assert problems == []
    assert read.counterparty == Party("Dom Maklerski Zazolc Gesla Jazn Spolka Akcyjna w Lodzi",
                                      "7001")


def test_creation_with_a_utc_offset_is_written_as_98e() -> None:
    creation = dt.datetime(2024, 1, 3, 10, 30, tzinfo=dt.timezone(-dt.timedelta(hours=5)))
    instruction = replace(INSTRUCTION, creation=creation)
    text = write_mt54x(instruction, "BROKPLPW", "CUSTPLPW")
    assert ":98E::PREP//20240103103000/N0500\r\n" in text
    assert read_instructions(text, "w")[0][0].creation == creation


COUNTRIES = ("PL", "US", "DE", "FR", "GB", "LU", "BE", "CZ")
CAPITALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = CAPITALS + "0123456789"
POLISH = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ"


def bics() -> st.SearchStrategy[str]:
    return st.builds(lambda bank, country, place, branch: bank + country + place + branch,
                     st.text(CAPITALS, min_size=4, max_size=4), st.sampled_from(COUNTRIES),
                     st.text(ALNUM, min_size=2, max_size=2),
                     st.one_of(st.just(""), st.text(ALNUM, min_size=3, max_size=3)))


def isins() -> st.SearchStrategy[str]:
    body = st.builds(lambda country, rest: country + rest, st.sampled_from(COUNTRIES),
                     st.text(ALNUM, min_size=9, max_size=9))
    return body.map(lambda text: text + isin_number.calc_check_digit(text))


def references() -> st.SearchStrategy[str]:
    return st.text(ALNUM + "-?().,'+ :/", min_size=1, max_size=16).filter(
        lambda text: text.strip() and not text.startswith("/") and not text.endswith("/")
        and "//" not in text)


def accounts() -> st.SearchStrategy[str]:
    return st.text(ALNUM + " -/.", min_size=1, max_size=35).filter(str.strip)


def names() -> st.SearchStrategy[str]:
    """Free text for 95Q: Polish letters, no ':' or '-' that could start a wrapped line."""
    return st.text(ALNUM + "abcdefghijklmnopqrstuvwxyz" + POLISH + " .,()'+?/",
                   min_size=1, max_size=100).filter(str.strip)


def creations() -> st.SearchStrategy[dt.datetime | None]:
    moments = st.datetimes(min_value=dt.datetime(1990, 1, 1),
                           max_value=dt.datetime(2100, 1, 1)).map(
        lambda moment: moment.replace(microsecond=0))
    offsets = st.integers(-14 * 60, 14 * 60).map(
        lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
    return st.one_of(st.none(), moments,
                     st.builds(lambda moment, zone: moment.replace(tzinfo=zone), moments, offsets))


@st.composite
def instructions(draw: st.DrawFn) -> Instruction:
    payment = draw(st.sampled_from(list(Payment)))
    function = draw(st.sampled_from(list(Function)))
    currency = draw(st.sampled_from(["EUR", "USD", "PLN", "JPY", "GBP"]))
    places = 0 if currency == "JPY" else 2
    amount = draw(st.decimals(min_value=Decimal(1).scaleb(-places), max_value=Decimal(10**11),
                              places=places))
    linked = draw(references()) if function is Function.CANCEL else \
        draw(st.one_of(st.none(), references()))
    trade_date = draw(st.dates(dt.date(1990, 1, 1), dt.date(2100, 1, 1)))
    return Instruction(
        reference=draw(references()), function=function,
        direction=draw(st.sampled_from(list(Direction))), payment=payment,
        trade_date=trade_date,
        settlement_date=trade_date + dt.timedelta(days=draw(st.integers(0, 30))),
        isin=draw(isins()),
        quantity=draw(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**10),
                                  places=3)),
        amount=amount if payment is Payment.AGAINST else None,
        currency=currency if payment is Payment.AGAINST else None,
        account_owner=draw(bics()), safekeeping_account=draw(accounts()),
        place_of_settlement=draw(st.one_of(bics(), st.sampled_from(COUNTRIES))),
        counterparty=Party(draw(st.one_of(bics(), names(), st.builds(
            lambda issuer, code: f"{issuer}/{code}", st.text(ALNUM, min_size=1, max_size=8),
            st.text(ALNUM + " ", min_size=1, max_size=34)))),
            draw(st.one_of(st.just(""), accounts()))),
        linked_reference=linked,
        trade_ids=tuple(draw(st.lists(references(), max_size=3))),
        partial_allowed=draw(st.booleans()), creation=draw(creations()))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(instructions(), bics(), bics())
def test_written_instructions_read_back_the_same(instruction: Instruction, sender: str,
                                                 receiver: str) -> None:
    text = write_mt54x(instruction, sender, receiver)
    expected = replace(instruction, counterparty=replace(
        instruction.counterparty, bic=transliterate(instruction.counterparty.bic)))
    assert read_instructions(text, "written") == ([expected], [])
    assert check_x_charset(text.partition("{4:")[2].removesuffix("-}")) == []


def test_what_cannot_be_written_is_refused_with_every_reason() -> None:
    bad = replace(INSTRUCTION, reference="ZAP/ż", isin="PLPKO0000017", currency="ZZZ",
                  counterparty=Party("Müller & Söhne"), safekeeping_account="x" * 36,
                  function=Function.CANCEL)
    problems = mt54x_problems(bad, "BROK", "CUSTPLPW")
    assert [problem.rule for problem in problems] == [
        Rule.INVALID_BIC, Rule.MT_INVALID_CHARACTER, Rule.MT_MISSING_FIELD, Rule.INVALID_ISIN,
        Rule.MT_MALFORMED, Rule.MT_INVALID_CHARACTER, Rule.INVALID_CURRENCY]
    assert "'&' at 7" in problems[5].detail  # 'Muller & Sohne': only '&' is left over
    with pytest.raises(MtWriteError) as raised:
        write_mt54x(bad, "BROK", "CUSTPLPW")
    assert isinstance(raised.value, ValueError) and raised.value.problems == problems
    assert all(problem.source == "instruction ZAP/ż" for problem in problems)


@pytest.mark.parametrize(("change", "rule"), [
    ({"reference": "/ZAP"}, Rule.MT_MALFORMED),
    ({"reference": "ZAP-00000000000001"}, Rule.MT_MALFORMED),
    ({"trade_ids": ("A//B",)}, Rule.MT_MALFORMED),
    ({"quantity": Decimal(0)}, Rule.NON_POSITIVE_QUANTITY),
    ({"quantity": Decimal("1234567890123456")}, Rule.MT_MALFORMED),
    ({"amount": None}, Rule.AMOUNT_REQUIRED),
    ({"amount": Decimal("0.001")}, Rule.AMOUNT_EXCEEDS_SCALE),
    ({"amount": Decimal(0)}, Rule.ZERO_AMOUNT),
    ({"payment": Payment.FREE}, Rule.MT_MALFORMED),  # free, yet an amount
    ({"place_of_settlement": "KDPW"}, Rule.INVALID_BIC),
    ({"account_owner": "brokplpw"}, Rule.INVALID_BIC),
    ({"counterparty": Party("x" * 35 + ":Y")}, Rule.MT_INVALID_CHARACTER),  # line 2 ':Y'
    ({"counterparty": Party("x" * 141)}, Rule.MT_MALFORMED),  # more than 4 * 35
    ({"counterparty": Party("   ")}, Rule.MT_MISSING_FIELD),
    ({"creation": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=30)))},
     Rule.INVALID_DATE),
])
def test_one_refusal(change: dict[str, object], rule: Rule) -> None:
    instruction = replace(INSTRUCTION, **change)  # type: ignore[arg-type]
    assert [problem.rule for problem in mt54x_problems(instruction, "BROKPLPW", "CUSTPLPW")] \
        == [rule]


# --- the x character set ----------------------------------------------------------------------


def test_transliteration_of_polish_and_other_latin_letters() -> None:
    assert transliterate("Zażółć gęślą jaźń") == "Zazolc gesla jazn"
    assert transliterate("ZAŻÓŁĆ GĘŚLĄ JAŹŃ") == "ZAZOLC GESLA JAZN"
    assert transliterate("Straße, Ærøskøbing, Đakovo, Œuvre, Müller–Lüdenscheidt") == \
        "Strasse, AEroskobing, Dakovo, OEuvre, Muller-Ludenscheidt"
    assert transliterate("Ž&€Ж") == "Z&€Ж"  # what has no x spelling stays, to be found


def test_x_charset_check() -> None:
    assert check_x_charset("ABC abc 019 /-?:().,'+\r\n") == []
    assert check_x_charset("a&b_c=ż") == [(1, "&"), (3, "_"), (5, "="), (6, "ż")]


@given(st.text())
def test_transliteration_leaves_only_what_it_cannot_spell(text: str) -> None:
    done = transliterate(text)
    assert transliterate(done) == done
    assert all(transliterate(char) == char for _, char in check_x_charset(done))


# --- numbers ----------------------------------------------------------------------------------


def test_swift_numbers() -> None:
    assert parse_swift_decimal("1000,") == Decimal("1000")
    assert parse_swift_decimal("1234,56") == Decimal("1234.56")
    assert parse_swift_decimal("0,000001") == Decimal("0.000001")
    for bad in ("1000", "1.000,5", ",5", "1,000,5", "-1,", "1e3,", "", "١,"):
        with pytest.raises(ValueError):
            parse_swift_decimal(bad)
    assert format_swift_decimal(Decimal("1E+3")) == "1000,"
    assert format_swift_decimal(Decimal("12.50")) == "12,50"


@given(st.decimals(min_value=0, max_value=Decimal(10**12), places=6))
def test_swift_numbers_round_trip(value: Decimal) -> None:
    assert parse_swift_decimal(format_swift_decimal(value)) == value


# --- status advices (MT548) -------------------------------------------------------------------


@pytest.mark.parametrize(("status", "reasons", "function", "kind"), [
    ("IPRC//PACK", (), "INST", StatusKind.ACKNOWLEDGED),
    ("IPRC//REJT", ("SAFE",), "INST", StatusKind.REJECTED),
    ("MTCH//MACH", (), "INST", StatusKind.MATCHED),
    ("MTCH//NMAT", ("CMIS", "DDAT"), "INST", StatusKind.UNMATCHED),
    ("SETT//PEND", ("LACK",), "INST", StatusKind.PENDING),
    ("SETT//PEND", ("CLAC",), "INST", StatusKind.PENDING),
    ("SETT//PENF", ("CASH",), "INST", StatusKind.FAILING),
    ("SETT//PEND", ("PREA",), "INST", StatusKind.HELD),
    ("SETT//PENF", ("LACK", "CSDH"), "INST", StatusKind.HELD),
    ("IPRC//CAND", ("CANI",), "INST", StatusKind.CANCELLED),
    ("IPRC//CPRC", (), "INST", StatusKind.CANCEL_PENDING),
    ("IPRC//CANP", (), "INST", StatusKind.CANCEL_PENDING),
    ("CPRC//DEND", ("DSET",), "INST", StatusKind.REJECTED),
    ("IPRC//PACK", (), "CAST", StatusKind.CANCEL_PENDING),
    ("IPRC//REJT", ("NMAS",), "CAST", StatusKind.REJECTED),
    ("IPRC//CAND", (), "CAST", StatusKind.CANCELLED),
])
def test_status_mapping(status: str, reasons: tuple[str, ...], function: str,
                        kind: StatusKind) -> None:
    [advice], problems = read_status_advices(mt548((status, reasons), function=function), "s")
    assert problems == []
    assert (advice.reference, advice.kind, advice.reasons) == ("ZAP-0001", kind, reasons)
    assert (advice.message_reference, advice.source) == ("STAT-77", "s:1")


def test_one_advice_per_status_and_unknown_statuses_are_problems() -> None:
    text = mt548(("IPRC//PACK", ()), ("IPRC//PPRC", ()), ("MTCH//NMAT", ("NMAS",)),
                 ("SETT/XCSD/ABCD", ()))
    advices, problems = read_status_advices(text, "s")
    assert [(advice.kind, advice.reasons) for advice in advices] == \
        [(StatusKind.ACKNOWLEDGED, ()), (StatusKind.UNMATCHED, ("NMAS",))]
    assert where(problems) == [(Rule.INVALID_ENUM_VALUE, line_of(text, "IPRC//PPRC")),
                               (Rule.INVALID_ENUM_VALUE, line_of(text, "SETT/XCSD"))]


def test_status_without_its_linkage_or_status_is_refused() -> None:
    text = mt548(("IPRC//PACK", ())).replace(":20C::RELA//ZAP-0001", ":20C::PREV//ZAP-0001")
    assert where(read_status_advices(text, "s")[1]) == \
        [(Rule.MT_MISSING_FIELD, line_of(text, ":16R:GENL"))]
    text = mt548()
    assert where(read_status_advices(text, "s")[1]) == \
        [(Rule.MT_MISSING_SEQUENCE, line_of(text, ":16R:GENL"))]


# --- confirmations, partial settlement --------------------------------------------------------


def test_full_confirmation_against_payment() -> None:
    [settled], problems = read_confirmations(confirmation("547"), "c")
    assert problems == []
    assert (settled.reference, settled.message_reference) == ("ZAP-0001", "CONF-1")
    assert (settled.direction, settled.payment) == (Direction.DELIVER, Payment.AGAINST)
    assert (settled.quantity, settled.amount, settled.currency) == \
        (Decimal("400"), Decimal("4000.50"), "EUR")
    assert (settled.settlement_date, settled.partial, settled.remaining_quantity) == \
        (dt.date(2024, 1, 8), False, None)


@pytest.mark.parametrize(("extra", "partial", "remaining"), [
    ((":22F::PARS//PAIN",), True, None),
    ((":22F::PARS//PAIN", ":36B::PSTT//UNIT/0,", ":36B::RSTT//UNIT/600,"), True,
     Decimal(600)),
    ((":36B::RSTT//UNIT/600,",), True, Decimal(600)),
    ((":22F::STCO//PART",), True, None),
    ((":22F::PARS//PARC", ":36B::RSTT//UNIT/0,"), False, Decimal(0)),
])
def test_partial_settlement(extra: tuple[str, ...], partial: bool,
                            remaining: Decimal | None) -> None:
    [settled], problems = read_confirmations(confirmation("544", *extra), "c")
    assert problems == []
    assert (settled.partial, settled.remaining_quantity) == (partial, remaining)


def test_confirmation_quantity_types_and_reversals() -> None:
    [bond], _ = read_confirmations(confirmation("546", quantity="FAMT/250000,"), "c")
    assert (bond.quantity, bond.extra) == (Decimal(250000), {"quantity_type": "FAMT"})
    text = confirmation("545", function="CANC")
    assert where(read_confirmations(text, "c")[1]) == \
        [(Rule.MT_MISSING_FIELD, line_of(text, ":23G:CANC"))]  # a cancellation needs PREV
    text = text.replace(":16S:LINK", ":16S:LINK\n:16R:LINK\n:20C::PREV//CONF-0\n:16S:LINK")
    assert where(read_confirmations(text, "c")[1]) == \
        [(Rule.INVALID_ENUM_VALUE, line_of(text, ":23G:CANC"))]  # a reversal: not read
    copy = read_confirmations(confirmation("544", function="NEWM/DUPL"), "c")[0][0]
    assert copy.extra == {"subfunction": "DUPL"}


# --- broken input: located problems, and the other messages still read -------------------------


def test_broken_messages_do_not_stop_the_others() -> None:
    good = write_mt54x(INSTRUCTION, "BROKPLPW", "CUSTPLPW")
    other = replace(INSTRUCTION, reference="ZAP-0002")
    unbalanced = good.replace(":16S:SETPRTY", ":16S:SETDET", 1)  # past an inner one
    no_seme = good.replace(":20C::SEME//ZAP-0001\r\n", "")
    not_a_number = good.replace("UNIT/1000,", "UNIT/1O00,")
    unknown = good.replace("{2:I541", "{2:I599")
    truncated = good.removesuffix("-}")
    text = "\n".join([good, unbalanced, no_seme, not_a_number, unknown, truncated,
                      write_mt54x(other, "BROKPLPW", "CUSTPLPW")]).replace("\r\n", "\n")
    starts = [at for at, line in enumerate(text.split("\n"), start=1) if line.startswith("{1:")]
    instructions, problems = read_instructions(text, "mixed.fin")
    assert [instruction.reference for instruction in instructions] == ["ZAP-0001", "ZAP-0002"]
    assert where(problems) == [
        (Rule.MT_MALFORMED, starts[1] + 24),  # :16S:SETDET closes :16R:SETPRTY
        (Rule.MT_MISSING_FIELD, starts[2] + 1),  # GENL (its :16R: line) has no SEME
        (Rule.INVALID_NUMBER, starts[3] + 15),  # :36B::SETT//UNIT/1O00,
        (Rule.UNSUPPORTED_MESSAGE_TYPE, starts[4]),
        (Rule.MT_MALFORMED, starts[5]),  # block 4 never closed by '-}'
    ]
    assert ":16S:SETDET closes :16R:SETPRTY" in problems[0].detail
    assert "20C::SEME" in problems[1].detail and "'1O00,'" in problems[2].detail
    assert all(problem.source == "mixed.fin" for problem in problems)


def test_framing_problems() -> None:
    good = write_mt54x(INSTRUCTION, "BROKPLPW", "CUSTPLPW")
    unclosed = good.replace(":16S:AMT\r\n", "")
    cases = {
        "{1:F01BROKPLPWAXXX0000000000": (Rule.MT_MALFORMED, 1),
        good.replace("{2:I541CUSTPLPWXXXXN}", "{2:I541N}"): (Rule.MT_MALFORMED, 1),
        good.replace(":16R:GENL", "GENERAL\r\n:16R:GENL"): (Rule.MT_MALFORMED, 2),
        unclosed: (Rule.MT_MALFORMED, line_of(unclosed, ":16S:SETDET")),  # closes AMT
        good.replace("{4:", "{5:{CHK:1}}{4:"): (Rule.MT_MALFORMED, 1),
        "no message here": (Rule.MT_MALFORMED, 1),
    }
    for text, expected in cases.items():
        messages, problems = parse_fin(text, "f")
        assert (messages, where(problems)) == ([], [expected]), text
    assert parse_fin("", "f") == ([], [])
    messages, problems = parse_fin(good + "{5:{CHK:123456789ABC}", "f")  # the trailer cut
    assert (len(messages), where(problems)) == (1, [(Rule.MT_MALFORMED, good.count("\n") + 1)])
    assert problems[0].is_warning and messages[0].trailer == (("CHK", "123456789ABC"),)
    messages, problems = parse_fin(f"junk\n{good}\njunk", "f")
    assert (len(messages), where(problems)) == \
        (1, [(Rule.MT_MALFORMED, 1), (Rule.MT_MALFORMED, good.count("\n") + 3)])
    messages, problems = parse_fin(f"$\r\n{good}\r\n${good}$", "rje")
    assert (len(messages), problems) == (2, [])


def test_flaws_read_past_with_a_warning() -> None:
    good = write_mt54x(INSTRUCTION, "BROKPLPW", "CUSTPLPW").replace("\r\n", "\n")
    [expected], _ = read_instructions(good, "f")
    cases = {  # text -> the line of its one warning
        good.replace(":16S:FIAC", ":16S:FIACX"): line_of(good, ":16S:FIAC"),
        good.replace(":16S:AMT\n:16S:SETDET\n", ":16S:AMT\n:16R:SETPRTY\n"):  # cut short
            line_of(good, ":16S:SETDET"),
        good.replace(":16S:SETDET\n", ":16S:SETDET\n:16R:ADDINFO\n"): good.count("\n") + 1,
        good.replace("SETT//UNIT/", "SETT/UNIT/"): line_of(good, ":36B:"),
    }
    for text, line in cases.items():
        instructions, problems = read_instructions(text, "f")
        assert (instructions, where(problems)) == ([expected], [(Rule.MT_MALFORMED, line)]), text
        assert problems[0].is_warning and "warning, read" in str(problems[0])
    # a :16S: missing in the middle: where did the sequence end? Refused as damaged.
    missing_close = good.replace(":16S:FIAC\n", "")
    assert where(read_instructions(missing_close, "f")[1]) == \
        [(Rule.MT_MALFORMED, line_of(good, ":16R:FIAC"))]
    # one slash where a data source scheme would be, but not a quantity type: refused
    other = good.replace("SETT//UNIT/", "SETT/XXXX/")
    assert where(read_instructions(other, "f")[1]) == [(Rule.MT_MALFORMED, line_of(good, ":36B:"))]
    no_trade_date = good.replace(":98A::TRAD//20240103\n", "")
    [read], problems = read_instructions(no_trade_date, "f")
    assert problems == [] and read == replace(expected, trade_date=None)
    assert write_mt54x(read, "BROKPLPW", "CUSTPLPW").replace("\r\n", "\n") == no_trade_date


def test_mt535_activity_flag_contradicted_is_read_with_a_warning() -> None:
    statement = "\n".join([
        "{1:F01CUSTPLPWAXXX0000000000}{2:I535BROKPLPWXXXXN}{4:", ":16R:GENL", ":28E:1/ONLY",
        ":20C::SEME//S1", ":23G:NEWM", ":98A::STAT//20240105", ":22F::STTY//CUST",
        ":97A::SAFE//ACC-1", ":17B::ACTI//N", ":16S:GENL", ":16R:SUBSAFE", ":16R:FIN",
        ":35B:ISIN PLPKO0000016", ":93B::AGGR//UNIT/1000,", ":16S:FIN", ":16S:SUBSAFE", "-}"])
    [holding], problems = read_holdings(statement, "f")
    assert holding.quantity == Decimal("1000")
    assert where(problems) == [(Rule.MT_MALFORMED, 11)] and problems[0].is_warning


def test_mandatory_sequences_and_fields() -> None:
    good = write_mt54x(INSTRUCTION, "BROKPLPW", "CUSTPLPW").replace("\r\n", "\n")
    fiac = good[good.index(":16R:FIAC"):good.index(":16R:SETDET")]
    no_fiac = good.replace(fiac, "")
    assert where(read_instructions(no_fiac, "f")[1]) == [(Rule.MT_MISSING_SEQUENCE, 1)]
    no_pset = good.replace(":95P::PSET//KDPWPLPW", ":95P::BUYR//KDPWPLPW")
    assert where(read_instructions(no_pset, "f")[1]) == \
        [(Rule.MT_MISSING_FIELD, line_of(no_pset, ":16R:SETPRTY"))]
    dbnm = no_pset.replace(":22F::SETR//TRAD", ":22F::SETR//TRAD\n:22F::DBNM//INTE")
    [message], _ = parse_fin(dbnm, "f")
    assert check_mandatory(message) == []  # no settlement parties needed: DBNM
    no_amount = good.replace(":19A::SETT//", ":19A::DEAL//")
    assert where(read_instructions(no_amount, "f")[1]) == [(Rule.MT_MISSING_FIELD, 1)]
    cancel = write_mt54x(replace(INSTRUCTION, function=Function.CANCEL, linked_reference="Z"),
                         "BROKPLPW", "CUSTPLPW").replace(":20C::PREV//", ":20C::RELA//")
    problems = read_instructions(cancel, "f")[1]
    assert where(problems) == [(Rule.MT_MISSING_FIELD, 4)] and "PREV" in problems[0].detail


def test_bad_dates_and_numbers_in_read_messages() -> None:
    good = write_mt54x(INSTRUCTION, "BROKPLPW", "CUSTPLPW")
    cases = [(good.replace("SETT//20240105", "SETT//20240230"), Rule.INVALID_DATE, "20240230"),
             (good.replace(":98A::SETT//20240105", ":98B::SETT//UKWN"), Rule.INVALID_DATE,
              "UKWN"),
             (good.replace("PLN41250,5", "PLN41.250,5"), Rule.INVALID_NUMBER, "PLN41.250"),
             (good.replace("PLN41250,5", "NPLN41250,5"), Rule.AMOUNT_SIGN_CONTRADICTS_KIND,
              "NPLN"),
             (good.replace("ISIN PLPKO0000016", "ISIN PKO"), Rule.INVALID_ISIN, "ISIN PKO"),
             (good.replace("UNIT/1000,", "UNIT/0,"), Rule.NON_POSITIVE_QUANTITY, "UNIT/0,"),
             (good.replace("UNIT/1000,", "UNIT/N5,"), Rule.INVALID_NUMBER, "UNIT/N5,"),
             (good.replace("PLN41250,5", "PLX41250,5"), Rule.INVALID_CURRENCY, "PLX")]
    for text, rule, marker in cases:
        assert where(read_instructions(text, "f")[1]) == [(rule, line_of(text, marker))], marker


def test_readers_take_only_their_own_types() -> None:
    text = "\n".join([confirmation("544"), mt548(("IPRC//PACK", ())), sample("MT535_06.fin")])
    assert [len(values) for values in (read_confirmations(text, "f")[0],
                                       read_status_advices(text, "f")[0],
                                       read_holdings(text, "f")[0])] == [1, 1, 1]
    problems = read_holdings(text, "f")[1]
    assert [problem.rule for problem in problems] == [Rule.UNSUPPORTED_MESSAGE_TYPE] * 2
    assert "MT544 is not read here" in problems[0].detail


def test_confirmations_and_statuses_in_one_pass() -> None:
    damaged = confirmation("545").replace(":16S:SETPRTY", ":16S:SETDET", 1)  # past SETPRTY
    text = "\n".join([mt548(("MTCH//MACH", ())), damaged, confirmation("547"),
                      sample("MT540_03.fin")])
    values, problems = read_settlement_messages(text, "inbox.fin")
    assert [type(value).__name__ for value in values] == ["StatusAdvice", "Confirmation"]
    assert where(problems) == [
        (Rule.MT_MALFORMED, line_of(text, ":16S:SETDET")),
        (Rule.UNSUPPORTED_MESSAGE_TYPE, line_of(text, "{1:F01FOOLUS30"))]


def test_holdings_by_sub_safekeeping_account_with_a_short_position() -> None:
    text = fin("535", ":16R:GENL", ":28E:1/ONLY", ":20C::SEME//HOLD-1", ":23G:NEWM",
               ":98A::STAT//20240105", ":22F::STTY//CUST", ":97A::SAFE//MAIN", ":17B::ACTI//Y",
               ":17B::CONS//Y", ":16S:GENL",
               ":16R:SUBSAFE", ":97A::SAFE//SUB-1", ":16R:FIN", ":35B:ISIN PLPKO0000016",
               ":93B::AGGR//UNIT/1500,", ":16S:FIN", ":16R:FIN", ":35B:ISIN US0378331005",
               ":93B::AGGR//UNIT/N20,5", ":16S:FIN", ":16S:SUBSAFE",
               ":16R:SUBSAFE", ":16R:FIN", ":35B:ISIN PLPKO0000016",
               ":93B::AGGR//UNIT/7,", ":16S:FIN", ":16S:SUBSAFE")
    holdings, problems = read_holdings(text, "h")
    assert problems == []
    assert [(h.account, h.isin, h.quantity) for h in holdings] == [
        ("SUB-1", "PLPKO0000016", Decimal(1500)), ("SUB-1", "US0378331005", Decimal("-20.5")),
        ("MAIN", "PLPKO0000016", Decimal(7))]
    assert {h.statement_date for h in holdings} == {dt.date(2024, 1, 5)}
    inactive = text.replace(":17B::ACTI//Y", ":17B::ACTI//N")
    assert where(read_holdings(inactive, "h")[1]) == \
        [(Rule.MT_MALFORMED, line_of(inactive, ":16R:SUBSAFE"))]  # rule C1 (E66)


def test_no_shared_sample_was_copied_into_the_repository() -> None:
    root = Path(__file__).resolve().parents[1]
    assert not [path for path in root.rglob("*.fin") if ".venv" not in path.parts]


MUTATION_SAMPLES = ("MT535_06.fin", "MT540_01.fin", "MT541_07.fin", "MT545_01.fin",
                    "MT547_01.fin")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MUTATION_SAMPLES),
       st.lists(st.tuples(st.floats(0, 1), st.sampled_from(list(":/{}-\n,N09AZ $ż")),
                          st.booleans()), min_size=1, max_size=4))
def test_damaged_samples_give_problems_never_exceptions(
        name: str, edits: list[tuple[float, str, bool]]) -> None:
    text = sample(name)
    for at, char, insert in edits:
        cut = int(at * (len(text) - 1))
        text = text[:cut] + char + text[cut + (0 if insert else 1):]
    for reader in (read_instructions, read_confirmations, read_status_advices, read_holdings):
        _, problems = reader(text, "mutated")
        assert all(problem.source == "mutated" and problem.line for problem in problems)
