"""MT564 corporate-action notifications in: every shared sample, exact values from several, the
event types we book and those we keep for an operator, the functions, and broken input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared_path
from zaplecze.corporate_actions.lifecycle import (
    Announcement,
    AnnouncementFunction,
    Balance,
    terms_of,
)
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.formats.mt564 import read_mt564
from zaplecze.kernel.problems import Problem, Rule

D = dt.date.fromisoformat
SAMPLES = sorted(shared_path("standards", "swift", "mt5xx").glob("MT564_*.fin"))


def sample(name: str) -> str:
    return shared_path("standards", "swift", "mt5xx", name).read_text()


def where(problems: list[Problem]) -> list[tuple[Rule, int | None]]:
    return [(problem.rule, problem.line) for problem in problems]


def line_of(text: str, marker: str, after: str = "") -> int:
    """The 1-based line of the first ``marker`` (after the first ``after``), found by hand."""
    start = text.index(after) if after else 0
    return text[:text.index(marker, start)].count("\n") + 1


def one(text: str, source: str = "test.fin") -> tuple[Announcement, list[Problem]]:
    announcements, problems = read_mt564(text, source)
    assert len(announcements) == 1, problems
    return announcements[0], problems


# --- hand-built messages ----------------------------------------------------------------------

HEADER = "{1:F01BANKPLPWAXXX0000000000}{2:I564BANKDEFFXXXXN}"
AAPL = "US0378331005"


def fin(body: str, header: str = HEADER) -> str:
    return f"{header}{{4:\n{body.strip()}\n-}}"


def body(*, caev: str = "DVCA", function: str = "NEWM", camv: str = "MAND",
         corp: str = "AAPL-DIV-2024Q1", seme: str = "MSG0001", security: str = f"ISIN {AAPL}",
         cadetl: str = "", options: str = "", links: str = "") -> str:
    """An MT564 body; Apple's dividend of February 2024 unless told otherwise."""
    cadetl = cadetl or ":98A::XDTE//20240209\n:98A::RDTE//20240212\n:98A::PAYD//20240215"
    if options == "":
        options = (":16R:CAOPTN\n:13A::CAON//001\n:22F::CAOP//CASH\n:11A::OPTN//USD\n"
                   ":17B::DFLT//Y\n:92F::GRSS//USD0,24\n:16S:CAOPTN")
    return "\n".join(line for line in (
        ":16R:GENL", f":20C::CORP//{corp}", f":20C::SEME//{seme}", f":23G:{function}",
        f":22F::CAEV//{caev}", f":22F::CAMV//{camv}", ":98C::PREP//20240201093000",
        ":25D::PROC//COMP", links, ":16S:GENL",
        ":16R:USECU", f":35B:{security}", "APPLE INC", ":16R:ACCTINFO", ":97A::SAFE//ACC-1",
        ":93B::ELIG//UNIT/1500,", ":16S:ACCTINFO", ":16S:USECU",
        ":16R:CADETL", cadetl, ":16S:CADETL", options) if line)


def securities_option(ratio: str, isin: str = AAPL, kind: str = "SECU") -> str:
    return (f":16R:CAOPTN\n:13A::CAON//001\n:22F::CAOP//{kind}\n:17B::DFLT//Y\n"
            f":16R:SECMOVE\n:22H::CRDB//CRED\n:35B:ISIN {isin}\n{ratio}\n"
            ":98A::PAYD//20200828\n:16S:SECMOVE\n:16S:CAOPTN")


SPLIT_DATES = ":98A::XDTE//20200831\n:98A::RDTE//20200824\n:98A::PAYD//20200828"


# --- every shared sample ----------------------------------------------------------------------


def test_there_are_shared_samples() -> None:
    assert [path.name for path in SAMPLES] == [f"MT564_{n:02d}.fin" for n in range(1, 12)]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_every_shared_sample_reads_without_an_exception(path: Path) -> None:
    announcements, problems = read_mt564(path.read_text(), path.name)
    assert announcements or problems, "a file gives announcements or says why it gives none"
    for problem in problems:  # every problem is located
        assert problem.source == path.name and problem.line is not None and problem.line >= 1
    for announcement in announcements:
        assert announcement.event_reference and announcement.message_reference
        assert announcement.raw.startswith("{1:") and "\n-}" in announcement.raw
        assert announcement.source == path.name
        terms_of(announcement)  # resolving the terms never raises either


def test_the_samples_read_as_expected_in_summary() -> None:
    summary = {}
    for path in SAMPLES:
        announcements, problems = read_mt564(path.read_text(), path.name)
        summary[path.name] = ([(a.event_type, a.function.value, a.kind) for a in announcements],
                              sorted({p.rule.value for p in problems}))
    dvca = ("DVCA", "NEWM", CaKind.CASH_DIVIDEND)
    assert summary == {
        "MT564_01.fin": ([dvca], ["mt_malformed"]),
        "MT564_02.fin": ([dvca], []),
        "MT564_03.fin": ([("RHDI", "NEWM", None)], ["unsupported_event_kind"]),
        "MT564_04.fin": ([dvca], []),
        "MT564_05.fin": ([("OTHR", "NEWM", None)], ["unsupported_event_kind"]),
        "MT564_06.fin": ([("ACTV", "NEWM", None)], ["unsupported_event_kind"]),
        "MT564_07.fin": ([("EXWA", "NEWM", None)], ["unsupported_event_kind"]),
        "MT564_08.fin": ([dvca], []),
        "MT564_09.fin": ([("DVCA", "CANC", None)],
                         ["invalid_date", "invalid_isin", "unsupported_event_kind"]),
        "MT564_10.fin": ([("DVCA", "CANC", None)],
                         ["invalid_date", "invalid_isin", "unsupported_event_kind"]),
        "MT564_11.fin": ([], ["mt_malformed"]),
    }


# --- exact values -----------------------------------------------------------------------------


def test_sample_02_a_swiss_cash_dividend() -> None:
    a, problems = one(sample("MT564_02.fin"), "MT564_02.fin")
    assert problems == []
    assert (a.event_reference, a.message_reference, a.function, a.event_type, a.mandatory) == \
        ("D455103", "029206016", AnnouncementFunction.NEW, "DVCA", "MAND")
    assert (a.kind, a.isin, a.security_name) == \
        (CaKind.CASH_DIVIDEND, "CH0011075394", "/XX/5983816 ZURICH FIN SVS GRP CHF0.10")
    assert (a.ex_date, a.record_date, a.pay_date) == (D("2011-11-11"),) * 3
    assert (a.gross_rate, a.currency, a.option) == (Decimal("0.000001"), "CHF", "001")
    assert a.prepared == dt.datetime(2007, 3, 16, 14, 33, 48)
    assert a.processing_status == "COMP"
    assert (a.sender, a.receiver) == ("CHASGB2LGST", "MTGSUS6S")  # an output message
    assert a.balances == (Balance("760043140", "ELIG", "UNIT", Decimal(7000)),)
    assert [r.value for r in a.rates if r.qualifier == "WITF"] == [Decimal(35)]
    option = a.options[0]
    assert (option.number, option.kind, option.default, option.currency) == \
        ("001", "CASH", True, "CHF")
    assert option.movements[0].amounts["ENTL"] == ("CHF", Decimal("0.01"))
    terms, problems = terms_of(a)
    assert problems == []
    assert terms is not None
    assert (terms.event_id, terms.kind, terms.isin, terms.amount, terms.currency) == \
        ("D455103", CaKind.CASH_DIVIDEND, "CH0011075394", Decimal("0.000001"), "CHF")
    assert (terms.ex_date, terms.record_date, terms.pay_date) == (D("2011-11-11"),) * 3


def test_sample_04_skips_the_ack_before_the_same_dividend() -> None:
    a, problems = one(sample("MT564_04.fin"), "MT564_04.fin")
    b, _ = one(sample("MT564_02.fin"), "MT564_02.fin")
    assert problems == []
    assert a == b.__class__(**{**{s: getattr(b, s) for s in b.__slots__}, "source": a.source})
    assert a.raw.startswith("{1:F01MTGSUS6SAXXX3206837054}")  # the ACK is not part of it


def test_sample_01_has_no_receiver_and_no_isin_and_an_ex_date_twenty_years_early() -> None:
    text = sample("MT564_01.fin")
    a, problems = one(text, "MT564_01.fin")
    assert where(problems) == [(Rule.MT_MALFORMED, 1)]
    assert "'I564N' has no receiver address" in problems[0].detail
    assert (a.sender, a.receiver) == ("FIFRUS31", "")
    assert (a.event_reference, a.message_reference, a.event_type, a.kind) == \
        ("DV200000168730", "DV200000168730", "DVCA", CaKind.CASH_DIVIDEND)
    assert (a.isin, a.security_id) == ("", "/CUSP/12345B68")  # a CUSIP, no ISIN
    assert (a.ex_date, a.record_date, a.pay_date) == \
        (D("2000-11-27"), D("2020-11-30"), D("2020-12-31"))  # PAYD from the cash movement
    # 92H in the option (the whole rate), not 92J INCO of the movement (a typed part of it)
    assert (a.gross_rate, a.currency) == (Decimal("0.12345657"), "USD")
    assert a.options[0].rates[0].status == "ACTU"
    parts = a.options[0].movements[0].rates
    assert [(r.qualifier, r.code, r.value) for r in parts] == \
        [("GRSS", "INCO", Decimal("0.1234567"))]
    assert a.extra == {"22F::DIVI": "REGR", "98a::ANOU": "2020-10-29"}
    terms, problems = terms_of(a)
    assert terms is None
    assert [p.rule for p in problems] == [Rule.MISSING_REQUIRED_VALUE, Rule.DATES_OUT_OF_ORDER]
    assert "/CUSP/12345B68" in problems[0].detail


def test_sample_03_rights_distribution_is_kept_with_its_ratio_and_unknown_ex_date() -> None:
    text = sample("MT564_03.fin")
    a, problems = one(text, "MT564_03.fin")
    assert where(problems) == [(Rule.UNSUPPORTED_EVENT_KIND, line_of(text, ":22F::CAEV//"))]
    assert "RHDI (intermediate securities distribution)" in problems[0].detail
    assert (a.event_reference, a.event_type, a.kind, a.isin) == \
        ("123456", "RHDI", None, "AU000000SFR8")
    assert (a.previous_reference, a.processing_status) == ("123757326622300", "PREC")
    assert a.ex_date is None and a.extra["98B::XDTE"] == "UKWN"
    assert (a.record_date, a.pay_date) == (D("2010-11-19"), D("2010-11-22"))
    assert (a.ratio_new, a.ratio_old) == (Decimal(1), Decimal(12))  # 92D::ADEX//1,/12,
    assert a.options[0].security_id == "/AU/+SFRRZ"
    assert a.extra["90B::PRPP"] == "ACTU/AUD6,6"
    assert terms_of(a) == (None, [])


def test_sample_08_a_dividend_without_a_rate() -> None:
    a, problems = one(sample("MT564_08.fin"), "MT564_08.fin")
    assert problems == []
    assert (a.event_reference, a.message_reference, a.isin, a.kind) == \
        ("ABC123456789", "DEF987654321", "US1234567890", CaKind.CASH_DIVIDEND)
    assert (a.ex_date, a.record_date, a.pay_date) == \
        (D("2026-09-01"), D("2026-09-02"), D("2026-09-15"))
    assert (a.gross_rate, a.currency) == (None, "USD")
    assert a.options[0].movements[0].amounts == {"ENTL": ("USD", Decimal(1500))}
    terms, problems = terms_of(a)
    assert terms is None and [p.rule for p in problems] == [Rule.AMOUNT_REQUIRED]


def test_sample_09_a_cancellation_with_a_broken_preparation_date() -> None:
    text = sample("MT564_09.fin")
    a, problems = one(text, "MT564_09.fin")
    assert (a.function, a.subfunction, a.previous_reference) == \
        (AnnouncementFunction.CANCEL, "CODU", "x")
    assert (Rule.INVALID_DATE, line_of(text, ":98A::PREP//20150230")) in where(problems)
    assert a.prepared is None  # 30 February is left out, the announcement kept
    assert (Rule.UNSUPPORTED_EVENT_KIND, line_of(text, ":22F::CAEV")) in where(problems)
    assert "without a CASH option" in a.unsupported
    assert (a.gross_rate, a.currency) == (Decimal(1), "USD")  # :92F::GRSS//USD1,
    assert a.tax_rate == Decimal("-1.3456789012345")  # :92A::TAXR//N1,3456789012345
    assert a.balances[0] == Balance("z", "ELIG", "AMOR", Decimal(250000))
    assert not a.carries_terms and terms_of(a) == (None, [])


@pytest.mark.parametrize(("name", "caev", "isin"), [
    ("MT564_05.fin", "OTHR", "AT0000A00GJ3"), ("MT564_06.fin", "ACTV", "INE411H01032"),
    ("MT564_07.fin", "EXWA", "DE000UT12345")])
def test_unknown_event_types_are_kept_with_unsupported_event_kind(name: str, caev: str,
                                                                  isin: str) -> None:
    text = sample(name)
    a, problems = one(text, name)
    assert where(problems) == [(Rule.UNSUPPORTED_EVENT_KIND, line_of(text, ":22F::CAEV//"))]
    assert (a.event_type, a.kind, a.isin) == (caev, None, isin)
    assert a.unsupported and "kept for an operator" in problems[0].detail


def test_an_empty_file_is_a_located_problem() -> None:
    assert read_mt564("", "MT564_11.fin") == \
        ([], [Problem(Rule.MT_MALFORMED, "the file is empty: no MT564 in it", "MT564_11.fin", 1)])
    assert where(read_mt564(" \r\n\n", "blank.fin")[1]) == [(Rule.MT_MALFORMED, 1)]


# --- the event types we book ------------------------------------------------------------------


def test_a_cash_dividend_by_hand() -> None:
    a, problems = one(fin(body()))
    assert problems == []
    terms, problems = terms_of(a)
    assert problems == []
    assert terms == CorporateAction(
        "AAPL-DIV-2024Q1", CaKind.CASH_DIVIDEND, AAPL, D("2024-02-09"), D("2024-02-12"),
        D("2024-02-15"), amount=Decimal("0.24"), currency="USD",
        content_hash=terms.content_hash if terms else "")


@pytest.mark.parametrize("caev", ["SPLF", "SPLR"])
def test_a_split_takes_new_for_old(caev: str) -> None:
    ratio = ":92D::NEWO//4,/1," if caev == "SPLF" else ":92D::NEWO//1,/10,"
    a, problems = one(fin(body(caev=caev, corp="AAPL-SPLIT", cadetl=SPLIT_DATES,
                               options=securities_option(ratio))))
    assert problems == []
    terms, problems = terms_of(a)
    assert problems == [] and terms is not None
    assert (terms.kind, terms.isin) == (CaKind.SPLIT, AAPL)
    expected = (Decimal(4), Decimal(1)) if caev == "SPLF" else (Decimal(1), Decimal(10))
    assert (terms.ratio_new, terms.ratio_old) == expected
    assert (terms.ex_date, terms.pay_date) == (D("2020-08-31"), D("2020-08-28"))


@pytest.mark.parametrize("caev", ["BONU", "DVSE"])
def test_a_bonus_issue_or_stock_dividend_takes_additional_for_existing(caev: str) -> None:
    options = securities_option(":92D::ADEX//1,/10,\n:90B::CINL//ACTU/USD125,5")
    a, problems = one(fin(body(caev=caev, cadetl=SPLIT_DATES, options=options)))
    assert problems == []
    terms, problems = terms_of(a)
    assert problems == [] and terms is not None
    assert (terms.kind, terms.ratio_new, terms.ratio_old) == \
        (CaKind.STOCK_DIVIDEND, Decimal(1), Decimal(10))
    assert terms.fraction_price == Decimal("125.5")  # the cash in lieu price


def test_a_bonus_issue_given_new_for_old_is_not_guessed() -> None:
    text = fin(body(caev="BONU", cadetl=SPLIT_DATES,
                    options=securities_option(":92D::NEWO//11,/10,")))
    a, problems = one(text)
    assert where(problems) == [(Rule.INVALID_RATIO, line_of(text, ":92D::NEWO"))]
    assert a.kind is CaKind.STOCK_DIVIDEND and a.ratio_new is None
    terms, problems = terms_of(a)
    assert terms is None and [p.rule for p in problems] == [Rule.INVALID_RATIO]


@pytest.mark.parametrize(("changes", "why"), [
    ({"caev": "SPLF", "cadetl": SPLIT_DATES,
      "options": securities_option(":92D::NEWO//2,/1,", isin="US0378331013")},
     "delivering US0378331013"),
    ({"camv": "CHOS"}, "CAMV CHOS"),
    ({"options": ":16R:CAOPTN\n:13A::CAON//001\n:22F::CAOP//SECU\n:16S:CAOPTN"},
     "without a CASH option"),
    ({"options": ":16R:CAOPTN\n:13A::CAON//001\n:22F::CAOP//CASH\n:16S:CAOPTN\n"
                 ":16R:CAOPTN\n:13A::CAON//002\n:22F::CAOP//CASH\n:16S:CAOPTN"},
     "2 CASH options and no single default"),
    ({"caev": "MRGR"}, "MRGR (merger), not an event kind we book"),
    ({"caev": "TEND"}, "TEND (tender offer)"),
])
def test_what_we_cannot_book_is_kept_with_a_reason(changes: dict[str, str], why: str) -> None:
    text = fin(body(**changes))
    a, problems = one(text)
    assert a.kind is None and why in a.unsupported
    assert where(problems) == [(Rule.UNSUPPORTED_EVENT_KIND, line_of(text, ":22F::CAEV"))]
    assert why in problems[0].detail


def test_a_dividend_announced_without_options_takes_its_rate_from_cadetl() -> None:
    cadetl = (":98A::XDTE//20240209\n:98A::RDTE//20240212\n:98A::PAYD//20240215\n"
              ":92F::GRSS//USD0,24\n:92A::TAXR//15,")
    a, problems = one(fin(body(cadetl=cadetl, options=":16R:ADDINFO\n:70E::ADTX//.\n"
                                                      ":16S:ADDINFO")))
    assert problems == []
    assert (a.kind, a.gross_rate, a.currency, a.tax_rate) == \
        (CaKind.CASH_DIVIDEND, Decimal("0.24"), "USD", Decimal(15))


def test_two_different_gross_rates_in_one_place_take_neither() -> None:
    options = (":16R:CAOPTN\n:13A::CAON//001\n:22F::CAOP//CASH\n:17B::DFLT//Y\n"
               ":92F::GRSS//USD0,24\n:92F::GRSS//USD0,25\n:16S:CAOPTN")
    text = fin(body(options=options))
    a, problems = one(text)
    assert where(problems) == [(Rule.INVALID_RATE, line_of(text, ":92F::GRSS//USD0,24"))]
    assert a.gross_rate is None


# --- functions --------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "function"), [(f.value, f) for f in AnnouncementFunction])
def test_every_function_reads(code: str, function: AnnouncementFunction) -> None:
    links = ":16R:LINK\n:20C::PREV//MSG0001\n:16S:LINK" if code != "NEWM" else ""
    a, problems = one(fin(body(function=f"{code}/DUPL", seme="MSG0002", links=links)))
    assert problems == []
    assert (a.function, a.subfunction) == (function, "DUPL")
    assert a.previous_reference == ("MSG0001" if links else "")
    assert a.carries_terms is (code not in ("CANC", "WITH"))


def test_a_replacement_carries_the_new_terms() -> None:
    options = (":16R:CAOPTN\n:13A::CAON//001\n:22F::CAOP//CASH\n:11A::OPTN//USD\n"
               ":17B::DFLT//Y\n:92A::GRSS//0,25\n:16S:CAOPTN")
    a, _ = one(fin(body(function="REPL", seme="MSG0002", options=options,
                        links=":16R:LINK\n:20C::PREV//MSG0001\n:16S:LINK")))
    assert (a.function, a.gross_rate, a.currency) == \
        (AnnouncementFunction.REPLACE, Decimal("0.25"), "USD")


# --- broken input -----------------------------------------------------------------------------


def test_a_message_without_its_event_reference_is_not_read() -> None:
    text = fin(body().replace(":20C::CORP//AAPL-DIV-2024Q1\n", ""))
    assert read_mt564(text, "t.fin") == ([], [Problem(
        Rule.MT_MISSING_FIELD, "MT564: the event reference (:20C::CORP: in GENL) is missing",
        "t.fin", line_of(text, ":16R:GENL"))])


@pytest.mark.parametrize(("cut", "rule", "marker"), [
    (":22F::CAEV//DVCA\n", Rule.MT_MISSING_FIELD, ":16R:GENL"),
    (":23G:NEWM\n", Rule.MT_MISSING_FIELD, ":16R:GENL"),
    (f":35B:ISIN {AAPL}\nAPPLE INC\n", Rule.MT_MISSING_FIELD, ":16R:USECU"),
])
def test_a_message_missing_what_names_the_event_is_not_read(cut: str, rule: Rule,
                                                             marker: str) -> None:
    text = fin(body().replace(cut, ""))
    announcements, problems = read_mt564(text, "t.fin")
    assert announcements == [] and where(problems) == [(rule, line_of(text, marker))]


def test_an_unknown_function_is_not_read() -> None:
    text = fin(body(function="INFO"))
    assert where(read_mt564(text, "t.fin")[1]) == \
        [(Rule.INVALID_ENUM_VALUE, line_of(text, ":23G:"))]


def test_broken_values_are_problems_of_their_own_and_the_announcement_is_kept() -> None:
    cadetl = ":98A::XDTE//20240230\n:98A::RDTE//20240212\n:98A::PAYD//2024021"
    options = (":16R:CAOPTN\n:13A::CAON//001\n:22F::CAOP//CASH\n:11A::OPTN//USD\n"
               ":17B::DFLT//Y\n:92A::GRSS//0.24\n:92A::TAXR//abc,\n:16S:CAOPTN")
    text = fin(body(cadetl=cadetl, options=options, security="ISIN US03783310"))
    a, problems = one(text)
    assert where(problems) == [
        (Rule.INVALID_ISIN, line_of(text, ":35B:")),
        (Rule.INVALID_DATE, line_of(text, ":98A::XDTE")),
        (Rule.INVALID_DATE, line_of(text, ":98A::PAYD")),
        (Rule.MT_MALFORMED, line_of(text, ":92A::GRSS")),
        (Rule.MT_MALFORMED, line_of(text, ":92A::TAXR")),
    ]
    assert (a.ex_date, a.record_date, a.pay_date, a.gross_rate) == \
        (None, D("2024-02-12"), None, None)
    assert a.extra["98A::XDTE"] == "20240230"  # kept as text for an operator
    assert (a.isin, a.security_id) == ("", "ISIN US03783310")
    terms, problems = terms_of(a)
    assert terms is None
    assert [p.rule for p in problems] == [Rule.MISSING_REQUIRED_VALUE, Rule.AMOUNT_REQUIRED]


def test_damaged_framing_is_located_and_the_next_message_is_read() -> None:
    broken = fin(body(seme="MSG0001")).replace(":16S:USECU\n", "")
    good = fin(body(seme="MSG0002"))
    text = broken + "\n" + good
    announcements, problems = read_mt564(text, "t.fin")
    assert [a.message_reference for a in announcements] == ["MSG0002"]
    assert [p.rule for p in problems] == [Rule.MT_MALFORMED]
    assert announcements[0].raw == good
    assert announcements[0].line == line_of(text, "{1:", after="-}")


def test_a_truncated_message_is_located() -> None:
    text = fin(body())[:-30]
    announcements, problems = read_mt564(text, "t.fin")
    assert announcements == [] and where(problems) == [(Rule.MT_MALFORMED, 1)]


def test_another_message_type_is_not_read_here() -> None:
    text = sample("MT540_01.fin")
    announcements, problems = read_mt564(text, "MT540_01.fin")
    assert announcements == [] and [p.rule for p in problems] == \
        [Rule.UNSUPPORTED_MESSAGE_TYPE]


def test_crlf_and_several_messages_in_one_file() -> None:
    text = (fin(body(seme="A1")) + "\r\n$" + fin(body(seme="A2", function="REPL"))
            ).replace("\n", "\r\n")
    announcements, problems = read_mt564(text, "t.fin")
    assert problems == [] and [a.message_reference for a in announcements] == ["A1", "A2"]
    assert "\r" not in announcements[1].raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mangled_sample_never_raises_and_every_problem_is_located(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(SAMPLES[:10]))
    lines = path.read_text().split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "cut", "junk", "copy"]))
        if action == "drop":
            del lines[at]
        elif action == "cut":
            lines[at] = lines[at][:data.draw(st.integers(0, max(len(lines[at]) - 1, 0)))]
        elif action == "junk":
            lines.insert(at, data.draw(st.text(alphabet=":/{}0123456789ABCNRS,- ", max_size=20)))
        else:
            lines.insert(at, lines[data.draw(st.integers(0, len(lines) - 1))])
        if not lines:
            break
    announcements, problems = read_mt564("\n".join(lines), path.name)
    for problem in problems:
        assert problem.source == path.name and problem.line is not None
    for announcement in announcements:
        terms_of(announcement)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_never_raises(text: str) -> None:
    _, problems = read_mt564(text, "any.fin")
    assert all(problem.line is not None for problem in problems)
