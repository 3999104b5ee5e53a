"""The FIX 4.4 drop-copy reader: real samples from ../shared, hand-built messages, mutations."""

from __future__ import annotations

from pathlib import Path

import pytest
import simplefix
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zaplecze.formats.fix_drop_copy import (
    TRADE_COLUMNS,
    DropCopyMap,
    parse_account_map,
    read_drop_copy,
    summarize_drop_copy,
)
from zaplecze.kernel.limits import FIX_MESSAGE_BYTES_MAX
from zaplecze.kernel.problems import BookError, Problem, Rule

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "standards" / "fix" / "samples"
SOH = b"\x01"

# name -> (summary, [(rule, line)] of the problems, number of rows), read with SAMPLE_MAP.
SAMPLE_EXPECTATIONS: dict[str, tuple[dict[str, int], list[tuple[Rule, int | None]], int]] = {
    "epam_fix44_8_Execution_Report_2.fix": (
        {"35=8 150=F": 1}, [(Rule.FIX_MISSING_TAG, 114)], 0),
    "epam_fix44_Allocation_Instruction_J_allfields.fix": ({"35=J": 1}, [], 0),
    "epam_fix44_Confirmation_AK_allfields.fix": ({"35=AK": 1}, [], 0),
    "epam_fix44_Execution_Report_8_allfields.fix": ({"35=8 150=0": 1}, [], 0),
    "epam_fix44_RBS_UAT_execution_report_pipe.txt": (
        {"damaged": 1}, [(Rule.FIX_BAD_BODY_LENGTH, 139)], 0),
    "epam_fix44_Trade_Capture_Report_AE_allfields.fix": ({"35=AE": 1}, [], 0),
    "epam_fix44_execution_reports_from_10000_msg.fix": (
        {"35=8 150=0": 1, "35=8 150=F": 1}, [(Rule.FIX_MISSING_TAG, 114)], 0),
    "quickfix_fix42_CME_execution_report.fix": (
        {"damaged": 1}, [(Rule.FIX_BAD_CHECKSUM, 136)], 0),
    "quickfix_fix44_2r_UnregisteredMsgType.def": (
        {"damaged": 6},
        [(Rule.FIX_MALFORMED, 1), (Rule.FIX_BAD_CHECKSUM, 1), (Rule.FIX_MALFORMED, 2),
         (Rule.FIX_BAD_CHECKSUM, 2), (Rule.FIX_MALFORMED, 3), (Rule.FIX_BAD_CHECKSUM, 3)], 0),
}
SAMPLE_MAP = DropCopyMap(accounts={"*": "C1"}, symbols={"TESTB": "PLPKO0000016"})


def sample(name: str) -> bytes:
    assert SAMPLES.is_dir(), (
        f"the shared FIX samples are missing: expected the folder {SAMPLES} "
        "(the repository's sibling 'shared' folder, see its standards/README.md)")
    return (SAMPLES / name).read_bytes()


def wire(*fields: tuple[int, str], begin: str = "FIX.4.4", separator: bytes = SOH,
         body_length: int | None = None, checksum: str | None = None) -> bytes:
    """A message with BodyLength and CheckSum computed here, independently of the reader."""
    body = b"".join(f"{tag}={value}".encode() + SOH for tag, value in fields)
    length = len(body) if body_length is None else body_length
    head = f"8={begin}".encode() + SOH + f"9={length}".encode() + SOH
    total = f"{sum(head + body) % 256:03d}" if checksum is None else checksum
    return (head + body + f"10={total}".encode() + SOH).replace(SOH, separator)


def fields_of(raw: bytes) -> list[tuple[int, str]]:
    """The fields of one well-formed message, without BeginString, BodyLength and CheckSum."""
    pairs = [field.split(b"=", 1) for field in raw.strip().rstrip(SOH).split(SOH)]
    return [(int(tag), value.decode()) for tag, value in pairs if int(tag) not in (8, 9, 10)]


def changed(fields: list[tuple[int, str]], **changes: str | None) -> list[tuple[int, str]]:
    """``fields`` with tags replaced in place (t31="5"), dropped (t31=None) or appended."""
    wanted = {int(key[1:]): value for key, value in changes.items()}
    present = {tag for tag, _ in fields}
    result: list[tuple[int, str]] = []
    for tag, value in [*fields, *((tag, "") for tag in wanted if tag not in present)]:
        new = wanted.get(tag, value)
        if new is not None:
            result.append((tag, new))
    return result


FILL = [
    (35, "8"), (49, "BROKER"), (56, "ZAPLECZE"), (34, "7"), (52, "20250304-14:30:01.000"),
    (37, "ORD-1"), (17, "E-100"), (150, "F"), (39, "2"), (1, "ACC-1"), (55, "AAPL"),
    (48, "US0378331005"), (22, "4"), (54, "1"), (38, "10"), (32, "10"), (31, "229.19"),
    (151, "0"), (14, "10"), (6, "229.19"), (15, "USD"), (30, "XNAS"), (75, "20250304"),
    (60, "20250304-14:30:00.123"), (64, "20250305"), (12, "1.50"), (13, "3"), (382, "1"),
    (375, "CCP1"),
]
FILL_ROW = {
    "trade_id": "FIX-E-100", "action": "NEW", "account": "C1", "isin": "US0378331005",
    "side": "BUY", "quantity": "10", "price": "229.19", "currency": "USD",
    "trade_date": "2025-03-04", "venue": "XNAS", "counterparty": "CCP1", "commission": "1.50",
    "settlement_date": "2025-03-05",
}
MAP = DropCopyMap(accounts={"ACC-1": "C1", "ACC-2": "C2"}, symbols={"PKO": "PLPKO0000016"})


def read(data: bytes, mapping: DropCopyMap = MAP) -> tuple[list[tuple[int, dict[str, str]]],
                                                            list[Problem]]:
    return read_drop_copy(data, "drop.fix", mapping)


def only_problem(data: bytes, mapping: DropCopyMap = MAP) -> Problem:
    rows, problems = read(data, mapping)
    assert rows == []
    assert len(problems) == 1, problems
    return problems[0]


# --- the shared samples --------------------------------------------------------------------


def test_the_sample_folder_holds_the_files_these_tests_know() -> None:
    sample("epam_fix44_8_Execution_Report_2.fix")
    assert sorted(path.name for path in SAMPLES.iterdir()) == sorted(SAMPLE_EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(SAMPLE_EXPECTATIONS))
def test_every_sample_is_read_without_an_exception(name: str) -> None:
    data = sample(name)
    summary, expected_problems, row_count = SAMPLE_EXPECTATIONS[name]
    rows, problems = read_drop_copy(data, name, SAMPLE_MAP)
    assert summarize_drop_copy(data) == summary
    assert [(problem.rule, problem.line) for problem in problems] == expected_problems
    assert all(problem.source == name for problem in problems)
    assert len(rows) == row_count


def test_the_partial_fill_sample_lacks_a_trade_date() -> None:
    rows, problems = read_drop_copy(sample("epam_fix44_8_Execution_Report_2.fix"), "er2.fix",
                                    SAMPLE_MAP)
    assert rows == []
    assert problems == [Problem(Rule.FIX_MISSING_TAG, "tag 75 (TradeDate) missing, and tag 60 "
                                "(TransactTime) too: no trade date", "er2.fix", 114)]


def test_the_partial_fill_sample_with_a_trade_date_is_a_fill() -> None:
    fields = fields_of(sample("epam_fix44_8_Execution_Report_2.fix"))
    rows, problems = read(wire(*changed(fields, t75="20030203")), SAMPLE_MAP)
    assert problems == []
    assert rows == [(114, {
        "trade_id": "FIX-12", "action": "NEW", "account": "C1", "isin": "PLPKO0000016",
        "side": "BUY", "quantity": "400", "price": "10", "currency": "", "trade_date": "2003-02-03",
        "venue": "", "counterparty": "", "commission": "", "settlement_date": ""})]


def test_the_all_fields_report_read_as_a_trade_fills_every_column() -> None:
    # The sample is a New (150=0) with every field; as a Trade it exercises each column's tag.
    fields = fields_of(sample("epam_fix44_Execution_Report_8_allfields.fix"))
    mapping = DropCopyMap(accounts={"STRING": "C7"}, symbols={"STRING": "US0378331005"})
    rows, problems = read(wire(*changed(fields, t150="F")), mapping)
    assert problems == []
    assert rows == [(1, {
        "trade_id": "FIX-STRING", "action": "NEW", "account": "C7", "isin": "US0378331005",
        "side": "BUY", "quantity": "1.1", "price": "1.1", "currency": "AFA",
        "trade_date": "2001-01-01", "venue": "DSMD", "counterparty": "STRING",
        "commission": "", "settlement_date": "2001-01-01"})]  # CommType 1 is per unit: blank


def test_the_pipe_delimited_rbs_sample_has_a_wrong_body_length_and_checksum() -> None:
    data = sample("epam_fix44_RBS_UAT_execution_report_pipe.txt")
    [problem] = read(data)[1]
    assert problem.detail == ("BodyLength(9) is '533', but the body has 526 bytes; CheckSum(10) "
                              "is '010', expected '145' as well")


def test_the_rbs_sample_repaired_is_a_trade_correction_and_is_skipped() -> None:
    data = sample("epam_fix44_RBS_UAT_execution_report_pipe.txt")
    message = data.split(b"|10=")[0].replace(b"|", SOH) + SOH + b"10=000" + SOH
    repaired = wire(*fields_of(message), separator=b"|")
    assert b"|" in repaired and SOH not in repaired
    assert read(repaired) == ([], [])
    assert summarize_drop_copy(repaired) == {"35=8 150=G": 1}


def test_the_cme_sample_has_a_wrong_checksum() -> None:
    [problem] = read(sample("quickfix_fix42_CME_execution_report.fix"))[1]
    assert problem.detail == ("CheckSum(10) is '000', expected '102' (the sum of the bytes before "
                              "it, modulo 256)")


def test_the_cme_sample_repaired_is_a_fix_42_fill_and_is_not_read_silently() -> None:
    fields = fields_of(sample("quickfix_fix42_CME_execution_report.fix"))
    problem = only_problem(wire(*fields, begin="FIX.4.2"))
    assert (problem.rule, problem.line) == (Rule.FIX_MALFORMED, 136)
    assert "FIX.4.2" in problem.detail and "ExecType 2" in problem.detail


# --- fills and cancels ---------------------------------------------------------------------


def test_wire_agrees_with_simplefix_on_body_length_and_checksum() -> None:
    message = simplefix.FixMessage()
    message.append_pair(8, "FIX.4.4", header=True)
    for tag, value in FILL:
        message.append_pair(tag, value)
    assert message.encode() == wire(*FILL)


def test_a_fill_gives_every_column() -> None:
    rows, problems = read(wire(*FILL))
    assert problems == []
    assert rows == [(7, FILL_ROW)]
    assert tuple(rows[0][1]) == TRADE_COLUMNS


def test_reading_twice_gives_the_same_trade_ids_and_a_resend_keeps_its_id() -> None:
    data = wire(*FILL) + b"\r\n" + wire(*changed(FILL, t17="E-101", t32="5"))
    resend = wire(*changed(FILL, t34="90", t43="Y", t122="20250304-14:30:01.000"))
    first, second = read(data)[0], read(data)[0]
    assert [row["trade_id"] for _, row in first] == ["FIX-E-100", "FIX-E-101"]
    assert first == second
    assert read(resend)[0] == [(90, FILL_ROW)]


def test_a_trade_cancel_is_a_cancel_row_of_the_trade_it_refers_to() -> None:
    cancel = changed(FILL, t17="E-200", t150="H", t19="E-100", t75="20250304",
                     t60="20250305-09:00:00")
    rows, problems = read(wire(*cancel))
    assert problems == []
    assert rows == [(7, {**dict.fromkeys(TRADE_COLUMNS, ""), "trade_id": "FIX-E-100",
                         "action": "CANCEL", "account": "C1", "trade_date": "2025-03-05"})]


def test_a_trade_cancel_without_exec_ref_id_is_a_missing_tag() -> None:
    problem = only_problem(wire(*changed(FILL, t150="H")))
    assert (problem.rule, problem.detail) == (Rule.FIX_MISSING_TAG, "tag 19 (ExecRefID) missing")


@pytest.mark.parametrize("exec_type", ["0", "4", "5", "8", "G", "I"])
def test_other_exec_types_are_skipped_but_counted(exec_type: str) -> None:
    data = wire(*changed(FILL, t150=exec_type))
    assert read(data) == ([], [])
    assert summarize_drop_copy(data) == {f"35=8 150={exec_type}": 1}


def test_other_message_types_are_skipped_but_counted() -> None:
    heartbeat = wire((35, "0"), (49, "BROKER"), (56, "ZAPLECZE"), (34, "8"))
    data = heartbeat + wire(*FILL) + heartbeat
    assert read(data) == ([(7, FILL_ROW)], [])
    assert summarize_drop_copy(data) == {"35=0": 2, "35=8 150=F": 1}


def test_a_fix_42_fill_value_in_a_fix_44_message_is_an_invalid_exec_type() -> None:
    problem = only_problem(wire(*changed(FILL, t150="2")))
    assert problem.rule == Rule.INVALID_ENUM_VALUE


# --- framing, body length, checksum --------------------------------------------------------


def test_a_flipped_byte_fails_the_checksum() -> None:
    data = bytearray(wire(*FILL))
    at = data.index(b"31=229.19") + 3
    data[at] ^= 0x01  # 229.19 becomes 329.19: the length is the same, the sum is not
    problem = only_problem(bytes(data))
    assert (problem.rule, problem.line, problem.source) == (Rule.FIX_BAD_CHECKSUM, 7, "drop.fix")
    assert "expected" in problem.detail


def test_a_wrong_body_length_is_reported() -> None:
    right = len(wire(*FILL)) - len(b"8=FIX.4.4\x019=000\x01") - len(b"10=000\x01")
    problem = only_problem(wire(*FILL, body_length=right + 1))
    assert problem.rule == Rule.FIX_BAD_BODY_LENGTH
    assert problem.detail == f"BodyLength(9) is '{right + 1}', but the body has {right} bytes"


def test_a_body_length_that_is_not_a_number_is_a_bad_body_length() -> None:
    data = wire(*FILL).replace(b"\x019=", b"\x019=x", 1)
    assert only_problem(data).rule == Rule.FIX_BAD_BODY_LENGTH


def test_a_message_without_body_length_or_checksum_is_malformed() -> None:
    no_length = b"8=FIX.4.4\x0135=0\x0134=5\x0110=000\x01"
    no_checksum = wire(*FILL).split(b"10=")[0]
    assert only_problem(no_length).rule == Rule.FIX_MALFORMED
    assert only_problem(no_checksum).detail == "no CheckSum(10) field ends the message"


def test_a_message_longer_than_the_limit_is_malformed() -> None:
    data = wire(*changed(FILL, t58="x" * FIX_MESSAGE_BYTES_MAX))
    assert only_problem(data).rule == Rule.FIX_MALFORMED


def test_a_damaged_message_does_not_stop_the_others() -> None:
    second = changed(FILL, t17="E-101", t34="8")
    data = wire(*FILL) + wire(*FILL, checksum="000") + wire(*second)
    rows, problems = read(data)
    assert [line for line, _ in rows] == [7, 8]
    assert [(problem.rule, problem.line) for problem in problems] == [(Rule.FIX_BAD_CHECKSUM, 7)]


def test_pipe_delimited_input_reads_like_soh() -> None:
    piped = wire(*FILL, separator=b"|")
    assert SOH not in piped
    assert read(piped) == read(wire(*FILL))
    flipped = piped.replace(b"31=229.19", b"31=329.19")
    assert only_problem(flipped).rule == Rule.FIX_BAD_CHECKSUM


def test_log_prefixes_line_ends_and_text_fields_around_messages() -> None:
    first = wire(*changed(FILL, t58="see 8=FIX for details"))
    second = wire(*changed(FILL, t17="E-101", t34="8", t58="58=FIX"))
    data = (b"2025-03-04 14:30:01,123 INFO recv: " + first + b"\r\n"
            + b"I" + second + b"trailing junk\n\n")
    rows, problems = read(data)
    assert problems == []
    assert [row["trade_id"] for _, row in rows] == ["FIX-E-100", "FIX-E-101"]


def test_raw_data_holding_soh_and_a_checksum_lookalike_is_framed_by_body_length() -> None:
    raw = "a\x0110=123\x01b"
    data = wire(*changed(FILL, t95=str(len(raw.encode())), t96=raw))
    assert read(data) == ([(7, FILL_ROW)], [])


def test_the_line_is_the_position_when_there_is_no_sequence_number() -> None:
    data = wire(*FILL) + wire(*changed(FILL, t34=None, t17="E-101"))
    assert [line for line, _ in read(data)[0]] == [7, 2]


def test_a_file_without_fix_messages_is_one_problem_and_an_empty_file_none() -> None:
    problem = only_problem(b"this is not FIX\n")
    assert (problem.rule, problem.line) == (Rule.FIX_MALFORMED, None)
    assert read(b"") == ([], [])
    assert read(b"\r\n\n") == ([], [])


# --- the fields of a fill ------------------------------------------------------------------


@pytest.mark.parametrize(("drop", "detail"), [
    ({"t17": None}, "tag 17 (ExecID) missing"),
    ({"t54": None}, "tag 54 (Side) missing"),
    ({"t32": None}, "tag 32 (LastQty) missing"),
    ({"t31": None}, "tag 31 (LastPx) missing"),
    ({"t75": None, "t60": None},
     "tag 75 (TradeDate) missing, and tag 60 (TransactTime) too: no trade date"),
    ({"t48": None, "t55": None}, "tag 48 (SecurityID) and tag 55 (Symbol) missing: no instrument"),
    ({"t35": None}, "tag 35 (MsgType) missing"),
    ({"t150": None}, "tag 150 (ExecType) missing"),
])
def test_a_missing_required_tag_is_named(drop: dict[str, None], detail: str) -> None:
    problem = only_problem(wire(*changed(FILL, **drop)))
    assert (problem.rule, problem.detail, problem.line) == (Rule.FIX_MISSING_TAG, detail, 7)


def test_an_empty_value_counts_as_missing() -> None:
    assert only_problem(wire(*changed(FILL, t31=""))).detail == "tag 31 (LastPx) missing"


def test_an_unmapped_account_is_reported() -> None:
    problem = only_problem(wire(*changed(FILL, t1="ACC-9")))
    assert problem.rule == Rule.FIX_UNMAPPED_ACCOUNT
    assert "'ACC-9'" in problem.detail


def test_the_wildcard_and_the_default_account() -> None:
    wildcard = DropCopyMap(accounts={"ACC-1": "C1", "*": "HOUSE"})
    default = DropCopyMap(accounts={"ACC-1": "C1"}, default_account="C9")
    other, absent = wire(*changed(FILL, t1="ACC-9")), wire(*changed(FILL, t1=None))
    assert read(other, wildcard)[0][0][1]["account"] == "HOUSE"
    assert read(absent, wildcard)[0][0][1]["account"] == "HOUSE"
    assert read(absent, default)[0][0][1]["account"] == "C9"
    assert only_problem(other, default).rule == Rule.FIX_UNMAPPED_ACCOUNT
    assert only_problem(absent).rule == Rule.FIX_MISSING_TAG


@pytest.mark.parametrize(("side", "expected"), [("1", "BUY"), ("2", "SELL")])
def test_the_sides(side: str, expected: str) -> None:
    assert read(wire(*changed(FILL, t54=side)))[0][0][1]["side"] == expected


@pytest.mark.parametrize("side", ["5", "6", "8", "X"])
def test_other_sides_are_invalid(side: str) -> None:
    assert only_problem(wire(*changed(FILL, t54=side))).rule == Rule.INVALID_ENUM_VALUE


def test_numbers_keep_their_text() -> None:
    row = read(wire(*changed(FILL, t32="0.000001", t31="1234567890.123456789")))[0][0][1]
    assert (row["quantity"], row["price"]) == ("0.000001", "1234567890.123456789")


@pytest.mark.parametrize("value", ["1e3", "NaN", "Infinity", "1,000", "abc", "1.2.3"])
def test_a_quantity_that_is_not_a_decimal_is_invalid(value: str) -> None:
    problem = only_problem(wire(*changed(FILL, t32=value)))
    assert problem.rule == Rule.INVALID_NUMBER


@pytest.mark.parametrize("changes", [
    {"t75": "20250230"}, {"t75": "2025-03-04"}, {"t75": None, "t60": "20251301-10:00:00"},
    {"t75": None, "t60": "20250304 10:00:00"}, {"t64": "tomorrow"},
])
def test_an_impossible_date_is_invalid(changes: dict[str, str | None]) -> None:
    assert only_problem(wire(*changed(FILL, **changes))).rule == Rule.INVALID_DATE


def test_the_trade_date_is_trade_date_first_then_transact_time() -> None:
    late = changed(FILL, t75="20250305", t60="20250304-23:59:00")
    assert read(wire(*late))[0][0][1]["trade_date"] == "2025-03-05"
    utc = changed(FILL, t75=None, t60="20250304-23:59:00")
    assert read(wire(*utc))[0][0][1]["trade_date"] == "2025-03-04"


def test_a_symbol_is_mapped_when_the_security_id_is_not_an_isin() -> None:
    by_symbol = changed(FILL, t55="PKO", t48="PKO.WA", t22="5")
    assert read(wire(*by_symbol))[0][0][1]["isin"] == "PLPKO0000016"
    unknown = changed(FILL, t22="1", t48="037833100")
    problem = only_problem(wire(*unknown))
    assert problem.rule == Rule.UNKNOWN_INSTRUMENT
    assert "'AAPL'" in problem.detail


def test_commission_is_taken_only_when_absolute() -> None:
    assert read(wire(*changed(FILL, t13="1")))[0][0][1]["commission"] == ""
    assert read(wire(*changed(FILL, t13=None)))[0][0][1]["commission"] == ""
    assert read(wire(*changed(FILL, t12="0", t479="USD")))[0][0][1]["commission"] == "0"
    problem = only_problem(wire(*changed(FILL, t479="EUR")))
    assert problem.rule == Rule.CURRENCY_MISMATCH


def test_the_venue_is_a_mic_from_last_market_or_destination() -> None:
    assert read(wire(*changed(FILL, t30="N", t100="XNYS")))[0][0][1]["venue"] == "XNYS"
    assert read(wire(*changed(FILL, t30=None)))[0][0][1]["venue"] == ""


def test_optional_columns_are_blank_when_absent() -> None:
    bare = changed(FILL, t15=None, t30=None, t375=None, t382=None, t12=None, t13=None, t64=None)
    row = read(wire(*bare))[0][0][1]
    assert [row[column] for column in ("currency", "venue", "counterparty", "commission",
                                       "settlement_date")] == ["", "", "", "", ""]


# --- the account map -----------------------------------------------------------------------


def test_the_account_map() -> None:
    text = ("\ufeffkind,fix_value,zaplecze_value\r\n"
            "account,U7B008,C1\r\n"
            "account, ACC-2 ,C2\r\n"
            "account,*,HOUSE\r\n"
            "account,,C9\r\n"
            "\r\n"
            'symbol,"TESTB",US0378331005\r\n'
            "account,U7B008,C1\r\n")
    assert parse_account_map(text) == DropCopyMap(
        accounts={"U7B008": "C1", "ACC-2": "C2", "*": "HOUSE"},
        symbols={"TESTB": "US0378331005"}, default_account="C9")


@pytest.mark.parametrize(("text", "message"), [
    ("", "line 1: the header"),
    ("fix,ours\naccount,A", "line 1: the header"),
    ("kind,fix_value,zaplecze_value\naccount,A", "line 2: expected 3 fields"),
    ("kind,fix_value,zaplecze_value\nbroker,A,B", "line 2: kind must be"),
    ("kind,fix_value,zaplecze_value\naccount,A,", "line 2: a account line needs"),
    ("kind,fix_value,zaplecze_value\nsymbol,,US0378331005", "line 2: a symbol line needs"),
    ("kind,fix_value,zaplecze_value\naccount,A,C1\n\naccount,A,C2", "line 4: account 'A'"),
])
def test_a_bad_account_map_stops_with_its_line(text: str, message: str) -> None:
    with pytest.raises(BookError, match=message):
        parse_account_map(text)


# --- mutations -----------------------------------------------------------------------------

VALID = wire(*FILL)
FULL_MAP = DropCopyMap(accounts={"*": "C1"}, symbols={"AAPL": "US0378331005"})


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([VALID, VALID + b"\r\n" + VALID,
                                           wire(*FILL, separator=b"|")])))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.sampled_from([0, 1, ord("|"), ord("="), ord("\n"), ord("8"), ord("1"),
                                     ord("0"), 0xFF, 0x80])
                    | st.integers(0, 255))
        if operation == "insert":
            data.insert(at, byte)
        elif at < len(data):
            if operation == "set":
                data[at] = byte
            else:
                del data[at]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_random_mutations_give_problems_never_exceptions(data: bytes) -> None:
    rows, problems = read_drop_copy(data, "fuzz.fix", FULL_MAP)
    summary = summarize_drop_copy(data)
    assert all(isinstance(problem, Problem) and problem.source == "fuzz.fix"
               for problem in problems)
    assert all(tuple(row) == TRADE_COLUMNS for _, row in rows)
    assert sum(summary.values()) >= len(rows)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_one_changed_byte_in_a_message_never_books_it(data: st.DataObject) -> None:
    # Every byte up to the SOH that closes CheckSum is covered; inserting before "8=" would
    # only add a log prefix, and the final SOH may be replaced by a line end.
    message = bytearray(VALID)
    operation = data.draw(st.sampled_from(["set", "insert", "delete"]))
    first = 1 if operation == "insert" else 0
    at = data.draw(st.integers(first, len(message) - 2))
    byte = data.draw(st.integers(0, 255).filter(lambda value: value != message[at]))
    if operation == "set":
        message[at] = byte
    elif operation == "insert":
        message.insert(at, byte)
    else:
        del message[at]
    rows, problems = read_drop_copy(bytes(message), "fuzz.fix", FULL_MAP)
    assert rows == []
    assert problems
