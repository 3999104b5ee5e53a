"""ISO 20022 sese.023/024/025: written messages validate against the official XSDs (from
../shared), read back to equal values, statuses map to kinds, and bad input gives located
problems without stopping the other messages."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from conftest import shared_path
from zaplecze.formats.iso20022 import (
    AppHeader,
    load_schema,
    read_sese023,
    read_sese024,
    read_sese025,
    validate,
    write_sese023,
    write_sese024,
    write_sese025,
)
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.settlement.model import (
    Confirmation,
    Direction,
    Function,
    Instruction,
    Party,
    Payment,
    StatusAdvice,
    StatusKind,
)

SESE023_NS = "urn:iso:std:iso:20022:tech:xsd:sese.023.001.11"
SESE024_NS = "urn:iso:std:iso:20022:tech:xsd:sese.024.001.12"
SESE025_NS = "urn:iso:std:iso:20022:tech:xsd:sese.025.001.11"
NEWLINE = b"\n"
POLISH = "ĄĆĘŁŃÓŚŹŻąćęłńóśźż"
HEADER = AppHeader("BROKPLPWXXX", "KDPWPLPWXXX",
                   dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))))


@pytest.fixture(scope="module")
def xsd() -> dict[str, etree.XMLSchema]:
    names = ("sese.023.001.11", "sese.024.001.12", "sese.025.001.11", "head.001.001.01")
    return {name: load_schema(shared_path("standards", "iso20022", "xsd", f"{name}.xsd"))
            for name in names}


def instruction(**changes: object) -> Instruction:
    base = Instruction(
        reference="ZAP0000000000001", function=Function.NEW, direction=Direction.RECEIVE,
        payment=Payment.AGAINST, trade_date=dt.date(2025, 3, 13),
        settlement_date=dt.date(2025, 3, 17), isin="PLPKO0000016", quantity=Decimal("1500"),
        amount=Decimal("61234.50"), currency="PLN", account_owner="BROKPLPWXXX",
        safekeeping_account="12345-KDPW", place_of_settlement="KDPWPLPWXXX",
        counterparty=Party("CPTYDEFFXXX", "CPTY-ACC-7"), trade_ids=("T-1",))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def xpath(xml: bytes, path: str) -> list[str]:
    """The texts at ``path`` (prefix x: = the message's namespace) in a written message."""
    root = etree.fromstring(xml)
    document = root if etree.QName(root).localname == "Document" else root.find("{*}Document")
    namespace = etree.QName(document).namespace
    return [str(found) for found in document.xpath(path, namespaces={"x": namespace})]


def without_source(values: list[StatusAdvice] | list[Confirmation]) -> list[object]:
    return [dataclasses.replace(value, source="") for value in values]


# --- sese.023 -----------------------------------------------------------------------------


REPRESENTATIVE = [
    instruction(direction=direction, payment=payment, function=function,
                partial_allowed=partial,
                amount=Decimal("61234.50") if payment is Payment.AGAINST else None,
                currency="PLN" if payment is Payment.AGAINST else None,
                linked_reference="ZAP0000000000000" if function is Function.CANCEL else None)
    for direction in Direction for payment in Payment for function in Function
    for partial in (True, False)
] + [
    instruction(quantity=Decimal("0.00000000000000001")),  # 17 decimals, the most there are
    instruction(quantity=Decimal("123456789.123456789")),
    instruction(amount=Decimal("1234567890123.12345"), currency="EUR"),  # 18 digits, 5 places
    instruction(amount=Decimal("1E+3"), currency="JPY", quantity=Decimal("2E+2")),
    instruction(trade_ids=("T-1", "T-2", f"ZLECENIE-{POLISH}"),
                safekeeping_account=f"KONTO-{POLISH[:10]}",
                counterparty=Party("CPTYDEFF", f"ŁÓDŹ-{POLISH[:5]}")),
    instruction(counterparty=Party("CPTYDEFF"), trade_ids=()),
    instruction(linked_reference="ZAP0000000000000"),  # a new instruction linked to an old one
]


@pytest.mark.parametrize("given_instruction", REPRESENTATIVE)
def test_every_sese023_validates_and_reads_back(xsd: dict[str, etree.XMLSchema],
                                                given_instruction: Instruction) -> None:
    xml = write_sese023(given_instruction)
    assert validate(xml, xsd["sese.023.001.11"]) == []
    assert read_sese023(xml, "out.xml", xsd["sese.023.001.11"]) == ([given_instruction], [])


@pytest.mark.parametrize(("direction", "payment", "amount_sign", "counterparty_side"), [
    (Direction.RECEIVE, Payment.AGAINST, ["DBIT"], "DlvrgSttlmPties"),
    (Direction.DELIVER, Payment.AGAINST, ["CRDT"], "RcvgSttlmPties"),
    (Direction.RECEIVE, Payment.FREE, [], "DlvrgSttlmPties"),
    (Direction.DELIVER, Payment.FREE, [], "RcvgSttlmPties"),
])
def test_sese023_fields(direction: Direction, payment: Payment, amount_sign: list[str],
                        counterparty_side: str) -> None:
    free = payment is Payment.FREE
    xml = write_sese023(instruction(direction=direction, payment=payment,
                                    amount=None if free else Decimal("61234.5"),
                                    currency=None if free else "PLN"))
    body = "/x:Document/x:SctiesSttlmTxInstr"
    assert xpath(xml, f"{body}/x:TxId/text()") == ["ZAP0000000000001"]
    assert xpath(xml, f"{body}/x:SttlmTpAndAddtlParams/*/text()") == [direction.value,
                                                                       payment.value]
    assert xpath(xml, f"{body}/x:SttlmAmt/x:CdtDbtInd/text()") == amount_sign
    assert xpath(xml, f"{body}/x:SttlmAmt/x:Amt/text()") == ([] if free else ["61234.50"])
    assert xpath(xml, f"{body}/x:SttlmAmt/x:Amt/@Ccy") == ([] if free else ["PLN"])
    assert xpath(xml, f"{body}/x:{counterparty_side}/x:Pty1/x:Id/x:AnyBIC/text()") == [
        "CPTYDEFFXXX"]
    assert xpath(xml, f"{body}/x:{counterparty_side}/x:Pty1/x:SfkpgAcct/x:Id/text()") == [
        "CPTY-ACC-7"]
    assert xpath(xml, f"{body}/*[x:Dpstry]/x:Dpstry/x:Id/x:AnyBIC/text()") == [
        "KDPWPLPWXXX", "KDPWPLPWXXX"]
    assert xpath(xml, f"{body}/x:SttlmParams/x:PrtlSttlmInd/text()") == ["PART"]
    assert xpath(xml, f"{body}/x:SttlmParams/x:SctiesTxTp/x:Cd/text()") == ["TRAD"]
    assert xpath(xml, f"{body}/x:Lnkgs") == []


def test_a_cancellation_links_the_instruction_it_cancels_and_says_canc() -> None:
    xml = write_sese023(instruction(function=Function.CANCEL, reference="ZAP0000000000009",
                                    linked_reference="ZAP0000000000001",
                                    partial_allowed=False))
    body = "/x:Document/x:SctiesSttlmTxInstr"
    assert xpath(xml, f"{body}/x:TxId/text()") == ["ZAP0000000000009"]
    assert xpath(xml, f"{body}/x:Lnkgs/x:MsgNb/x:LngNb/text()") == ["sese.023.001.11"]
    assert xpath(xml, f"{body}/x:Lnkgs/x:Ref/x:SctiesSttlmTxId/text()") == ["ZAP0000000000001"]
    assert xpath(xml, f"{body}/x:TradDtls/x:SttlmInstrPrcgAddtlDtls/text()") == ["CANC"]
    assert xpath(xml, f"{body}/x:SttlmParams/x:PrtlSttlmInd/text()") == ["NPAR"]
    with pytest.raises(ValueError, match="linked_reference"):
        write_sese023(instruction(function=Function.CANCEL))


@pytest.mark.parametrize(("amount", "currency", "written"), [
    (Decimal("61234.5"), "PLN", "61234.50"),  # at the currency's minor unit when it fits
    (Decimal("0.12345"), "EUR", "0.12345"),  # more decimals than the currency: as given
    (Decimal("1E+3"), "JPY", "1000"),  # never in exponent form
    (Decimal("1234567890123.12345"), "USD", "1234567890123.12345"),
    (Decimal("5"), "XXQ", "5"),  # not an ISO 4217 currency: written as given
])
def test_amounts_are_written_exactly(amount: Decimal, currency: str, written: str) -> None:
    xml = write_sese023(instruction(amount=amount, currency=currency))
    assert xpath(xml, "//x:SttlmAmt/x:Amt/text()") == [written]


def test_quantities_are_written_exactly() -> None:
    for quantity, written in ((Decimal("1E+2"), "100"), (Decimal("0.50"), "0.5"),
                              (Decimal("1234.000001"), "1234.000001")):
        xml = write_sese023(instruction(quantity=quantity))
        assert xpath(xml, "//x:SttlmQty/x:Qty/x:Unit/text()") == [written]


def test_polish_characters_travel_as_utf8(xsd: dict[str, etree.XMLSchema]) -> None:
    given_instruction = instruction(safekeeping_account=f"RACHUNEK {POLISH}"[:35],
                                    trade_ids=(f"TRANSAKCJA-{POLISH}",))
    xml = write_sese023(given_instruction)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert f"TRANSAKCJA-{POLISH}".encode() in xml
    assert validate(xml, xsd["sese.023.001.11"]) == []
    assert read_sese023(xml, "out.xml")[0] == [given_instruction]


def test_sese023_in_an_envelope_with_a_header(xsd: dict[str, etree.XMLSchema]) -> None:
    given_instruction = instruction(creation=HEADER.created)
    xml = write_sese023(given_instruction, HEADER)
    assert etree.fromstring(xml).tag == "message"
    assert validate(xml, xsd["sese.023.001.11"]) == []
    assert validate(xml, xsd["head.001.001.01"]) == []
    header = etree.fromstring(xml).find("{*}AppHdr")
    assert [header.findtext(f"{{*}}{name}") for name in ("BizMsgIdr", "MsgDefIdr", "CreDt")] == [
        "ZAP0000000000001", "sese.023.001.11", "2025-03-14T08:30:00Z"]
    assert read_sese023(xml, "out.xml", xsd["sese.023.001.11"]) == ([given_instruction], [])


SWIFT_X = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-?:().,'+"
TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/" + POLISH


def text_of(max_size: int) -> st.SearchStrategy[str]:
    return st.text(TEXT + " ", min_size=1, max_size=max_size).filter(
        lambda text: text.strip() == text)


@st.composite
def instructions(draw: st.DrawFn) -> Instruction:
    reference = st.text(SWIFT_X, min_size=1, max_size=16)
    bic = st.from_regex(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", fullmatch=True)
    payment = draw(st.sampled_from(Payment))
    function = draw(st.sampled_from(Function))
    quantity = Decimal(draw(st.integers(1, 10**18 - 1))).scaleb(-draw(st.integers(0, 17)))
    amount = Decimal(draw(st.integers(1, 10**18 - 1))).scaleb(-draw(st.integers(0, 5)))
    against = payment is Payment.AGAINST
    linked = draw(reference if function is Function.CANCEL else st.none() | reference)
    return Instruction(
        reference=draw(reference), function=function, direction=draw(st.sampled_from(Direction)),
        payment=payment, trade_date=draw(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31))),
        settlement_date=draw(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31))),
        isin=draw(st.from_regex(r"[A-Z]{2}[A-Z0-9]{9}[0-9]", fullmatch=True)),
        quantity=quantity, amount=amount if against else None,
        currency=draw(st.sampled_from(["PLN", "EUR", "USD", "JPY", "BHD"])) if against else None,
        account_owner=draw(bic), safekeeping_account=draw(text_of(35)),
        place_of_settlement=draw(bic),
        counterparty=Party(draw(bic), draw(st.just("") | text_of(35))),
        linked_reference=linked, trade_ids=tuple(draw(st.lists(text_of(52), max_size=3))),
        partial_allowed=draw(st.booleans()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(given_instruction=instructions())
def test_any_instruction_validates_and_reads_back(xsd: dict[str, etree.XMLSchema],
                                                  given_instruction: Instruction) -> None:
    xml = write_sese023(given_instruction)
    assert validate(xml, xsd["sese.023.001.11"]) == []
    assert read_sese023(xml, "out.xml") == ([given_instruction], [])


# --- sese.024 -----------------------------------------------------------------------------


ADVICES = [
    StatusAdvice("ZAP1", StatusKind.ACKNOWLEDGED),
    StatusAdvice("ZAP1", StatusKind.ACKNOWLEDGED, ("NSTP",)),
    StatusAdvice("ZAP1", StatusKind.REJECTED, ("SAFE", "DSEC")),
    StatusAdvice("ZAP1", StatusKind.MATCHED),
    StatusAdvice("ZAP1", StatusKind.UNMATCHED, ("NMAS", "CMIS")),
    StatusAdvice("ZAP1", StatusKind.UNMATCHED),
    StatusAdvice("ZAP1", StatusKind.PENDING, ("LACK",)),
    StatusAdvice("ZAP1", StatusKind.PENDING, ("CLAC", "MONY")),
    StatusAdvice("ZAP1", StatusKind.FAILING, ("LACK", "MONY")),
    StatusAdvice("ZAP1", StatusKind.FAILING, ("CLAC",)),
    StatusAdvice("ZAP1", StatusKind.CANCELLED, ("CANI",)),
    StatusAdvice("ZAP1", StatusKind.CANCEL_PENDING),
    StatusAdvice("ZAP1", StatusKind.HELD, ("PREA",)),
    StatusAdvice("ZAP1", StatusKind.HELD, ("LACK", "CSDH")),
]


@pytest.mark.parametrize("advice", ADVICES, ids=lambda advice: f"{advice.kind}{advice.reasons}")
def test_sese024_round_trip(xsd: dict[str, etree.XMLSchema], advice: StatusAdvice) -> None:
    xml = write_sese024(advice)
    assert validate(xml, xsd["sese.024.001.12"]) == []
    advices, problems = read_sese024(xml, "in.xml", xsd["sese.024.001.12"])
    assert problems == []
    assert without_source(advices) == [advice]
    assert advices[0].source == "in.xml:2"


def test_sese024_message_reference_travels_in_the_header(
        xsd: dict[str, etree.XMLSchema]) -> None:
    advice = StatusAdvice("ZAP1", StatusKind.UNMATCHED, ("NMAS",), message_reference="CSD-42")
    xml = write_sese024(advice, HEADER)
    assert validate(xml, xsd["sese.024.001.12"]) == []
    assert validate(xml, xsd["head.001.001.01"]) == []
    advices, problems = read_sese024(xml, "in.xml", xsd["sese.024.001.12"])
    assert (without_source(advices), problems) == ([advice], [])


def test_write_sese024_refuses_what_it_cannot_say() -> None:
    with pytest.raises(ValueError, match=r"sese\.031"):
        write_sese024(StatusAdvice("ZAP1", StatusKind.RELEASED))
    with pytest.raises(ValueError, match="hold reason"):
        write_sese024(StatusAdvice("ZAP1", StatusKind.HELD, ("LACK",)))
    with pytest.raises(ValueError, match="Mtchd"):
        write_sese024(StatusAdvice("ZAP1", StatusKind.MATCHED, ("NMAS",)))
    with pytest.raises(ValueError, match="BizMsgIdr"):
        write_sese024(StatusAdvice("ZAP1", StatusKind.MATCHED, message_reference="M1"))
    with pytest.raises(ValueError, match="BizMsgIdr"):
        write_sese024(StatusAdvice("ZAP1", StatusKind.MATCHED), HEADER)


def sese024(statuses: str, reference: str = "ZAP1") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{SESE024_NS}">'
            f"<SctiesSttlmTxStsAdvc><TxId><AcctOwnrTxId>{reference}</AcctOwnrTxId>"
            f"<AcctSvcrTxId>CSD-TX-1</AcctSvcrTxId></TxId>{statuses}"
            f"</SctiesSttlmTxStsAdvc></Document>\n").encode()


def reason(code: str, proprietary: bool = False) -> str:
    inner = (f"<Prtry><Id>{code}</Id><Issr>KDPW</Issr></Prtry>" if proprietary
             else f"<Cd>{code}</Cd>")
    return f"<Rsn><Cd>{inner}</Cd></Rsn>"


def test_one_advice_with_three_statuses_gives_three(xsd: dict[str, etree.XMLSchema]) -> None:
    xml = sese024("<PrcgSts><AckdAccptd><NoSpcfdRsn>NORE</NoSpcfdRsn></AckdAccptd></PrcgSts>"
                  f"<MtchgSts><Umtchd>{reason('NMAS')}{reason('CMIS')}</Umtchd></MtchgSts>"
                  f"<SttlmSts><Pdg>{reason('LACK')}</Pdg></SttlmSts>")
    assert validate(xml, xsd["sese.024.001.12"]) == []
    advices, problems = read_sese024(xml, "in.xml", xsd["sese.024.001.12"])
    assert problems == []
    assert [(advice.kind, advice.reasons) for advice in advices] == [
        (StatusKind.ACKNOWLEDGED, ()), (StatusKind.UNMATCHED, ("NMAS", "CMIS")),
        (StatusKind.PENDING, ("LACK",))]


@pytest.mark.parametrize(("statuses", "kind", "reasons"), [
    (f"<PrcgSts><PdgPrcg>{reason('LACK')}</PdgPrcg></PrcgSts>", StatusKind.PENDING, ("LACK",)),
    (f"<PrcgSts><Rjctd>{reason('X001', True)}</Rjctd></PrcgSts>", StatusKind.REJECTED,
     ("X001",)),
    (f"<PrcgSts><Rpr>{reason('SAFE')}</Rpr></PrcgSts>", StatusKind.REJECTED, ("SAFE",)),
    ("<PrcgSts><Canc><NoSpcfdRsn>NORE</NoSpcfdRsn></Canc></PrcgSts>", StatusKind.CANCELLED, ()),
    (f"<PrcgSts><PdgCxl>{reason('CONF')}</PdgCxl></PrcgSts>", StatusKind.CANCEL_PENDING,
     ("CONF",)),
    ("<PrcgSts><CxlReqd/></PrcgSts>", StatusKind.CANCEL_PENDING, ()),
    ("<MtchgSts><Mtchd><Rsn><Id>MTC1</Id><Issr>KDPW</Issr></Rsn></Mtchd></MtchgSts>",
     StatusKind.MATCHED, ("MTC1",)),
    (f"<SttlmSts><Flng>{reason('CLAC')}{reason('CASH', True)}</Flng></SttlmSts>",
     StatusKind.FAILING, ("CLAC", "CASH")),
    (f"<SttlmSts><Pdg>{reason('LACK')}{reason('PREA')}</Pdg></SttlmSts>", StatusKind.HELD,
     ("LACK", "PREA")),
    (f"<SttlmSts><Pdg>{reason('CVAL')}</Pdg></SttlmSts>", StatusKind.HELD, ("CVAL",)),
    (f"<SttlmSts><Pdg>{reason('PRCY')}</Pdg></SttlmSts>", StatusKind.PENDING, ("PRCY",)),
])
def test_status_and_reason_mapping(xsd: dict[str, etree.XMLSchema], statuses: str,
                                   kind: StatusKind, reasons: tuple[str, ...]) -> None:
    xml = sese024(statuses)
    assert validate(xml, xsd["sese.024.001.12"]) == []
    assert read_sese024(xml, "in.xml", xsd["sese.024.001.12"]) == (
        [StatusAdvice("ZAP1", kind, reasons, "", "in.xml:2")], [])


def test_a_status_without_a_kind_is_a_problem_and_the_rest_is_read() -> None:
    xml = sese024("<PrcgSts><Prtry><PrtrySts><Id>ZZZZ</Id><Issr>KDPW</Issr></PrtrySts></Prtry>"
                  f"</PrcgSts><SttlmSts><Flng>{reason('LACK')}</Flng></SttlmSts>")
    advices, problems = read_sese024(xml, "in.xml")
    assert [advice.kind for advice in advices] == [StatusKind.FAILING]
    assert [(problem.rule, problem.line) for problem in problems] == [
        (Rule.INVALID_ENUM_VALUE, 2)]
    assert "PrcgSts/Prtry" in problems[0].detail and "instruction ZAP1" in problems[0].detail
    advices, problems = read_sese024(sese024(""), "in.xml")
    assert advices == []
    assert [problem.rule for problem in problems] == [Rule.MISSING_REQUIRED_VALUE]


# --- sese.025 -----------------------------------------------------------------------------


CONFIRMATIONS = [
    Confirmation("ZAP1", Direction.RECEIVE, Payment.AGAINST, "PLPKO0000016", Decimal("1500"),
                 Decimal("61234.50"), "PLN", dt.date(2025, 3, 17)),
    Confirmation("ZAP2", Direction.DELIVER, Payment.AGAINST, "US0378331005",
                 Decimal("0.000001"), Decimal("1234567890123.12345"), "USD",
                 dt.date(2025, 3, 17)),
    Confirmation("ZAP3", Direction.DELIVER, Payment.FREE, "PLPKO0000016", Decimal("10"), None,
                 None, dt.date(2025, 3, 17)),
    Confirmation("ZAP4", Direction.RECEIVE, Payment.AGAINST, "PLPKO0000016", Decimal("400.5"),
                 Decimal("16391.47"), "PLN", dt.date(2025, 3, 18), partial=True,
                 remaining_quantity=Decimal("1099.5")),
    Confirmation("ZAP5", Direction.DELIVER, Payment.AGAINST, "PLPKO0000016", Decimal("400"),
                 Decimal("16391.47"), "PLN", dt.date(2025, 3, 18), partial=True),
    Confirmation("ZAP6", Direction.DELIVER, Payment.AGAINST, "PLPKO0000016", Decimal("400"),
                 Decimal("16391.47"), "PLN", dt.date(2025, 3, 18), partial=True,
                 remaining_quantity=Decimal("0"), extra={"partial_settlement": "PARC"}),
]


@pytest.mark.parametrize("confirmation", CONFIRMATIONS, ids=lambda c: c.reference)
def test_sese025_round_trip(xsd: dict[str, etree.XMLSchema], confirmation: Confirmation) -> None:
    xml = write_sese025(confirmation)
    assert validate(xml, xsd["sese.025.001.11"]) == []
    confirmations, problems = read_sese025(xml, "in.xml", xsd["sese.025.001.11"])
    assert (without_source(confirmations), problems) == ([confirmation], [])
    assert confirmations[0].extra.get("partial_settlement") == (
        confirmation.extra.get("partial_settlement", "PAIN") if confirmation.partial else None)


def test_sese025_fields_and_header(xsd: dict[str, etree.XMLSchema]) -> None:
    confirmation = dataclasses.replace(CONFIRMATIONS[3], message_reference="CSD-CONF-7")
    xml = write_sese025(confirmation, HEADER)
    assert validate(xml, xsd["sese.025.001.11"]) == []
    assert validate(xml, xsd["head.001.001.01"]) == []
    body = "//x:SctiesSttlmTxConf"
    assert xpath(xml, f"{body}/x:AddtlParams/x:PrtlSttlm/text()") == ["PAIN"]
    assert xpath(xml, f"{body}/x:QtyAndAcctDtls/x:RmngToBeSttldQty/x:Unit/text()") == ["1099.5"]
    assert xpath(xml, f"{body}/x:SttldAmt/x:CdtDbtInd/text()") == ["DBIT"]
    assert xpath(xml, f"{body}/x:TradDtls/x:FctvSttlmDt/x:Dt/x:Dt/text()") == ["2025-03-18"]
    confirmations, problems = read_sese025(xml, "in.xml", xsd["sese.025.001.11"])
    assert (without_source(confirmations), problems) == ([confirmation], [])


def sese025(*, partial: str = "", quantity: str = "<Qty><Unit>100</Unit></Qty>",
            remaining: str = "", settlement_date: str = "<Dt><Dt>2025-03-17</Dt></Dt>",
            isin: str = "<ISIN>PLPKO0000016</ISIN>", indicator: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{SESE025_NS}">'
            "<SctiesSttlmTxConf><TxIdDtls><AcctOwnrTxId>ZAP1</AcctOwnrTxId>"
            "<AcctSvcrTxId>CSD-9</AcctSvcrTxId><SctiesMvmntTp>RECE</SctiesMvmntTp>"
            f"<Pmt>FREE</Pmt></TxIdDtls>{partial}<TradDtls><FctvSttlmDt>{settlement_date}"
            f"</FctvSttlmDt></TradDtls><FinInstrmId>{isin}</FinInstrmId><QtyAndAcctDtls>"
            f"<SttldQty>{quantity}</SttldQty>{remaining}</QtyAndAcctDtls><SttlmParams>"
            f"<SctiesTxTp><Cd>TRAD</Cd></SctiesTxTp>{indicator}</SttlmParams>"
            "</SctiesSttlmTxConf></Document>\n").encode()


def test_what_makes_a_confirmation_partial(xsd: dict[str, etree.XMLSchema]) -> None:
    def read(xml: bytes) -> Confirmation:
        assert validate(xml, xsd["sese.025.001.11"]) == []
        confirmations, problems = read_sese025(xml, "in.xml", xsd["sese.025.001.11"])
        assert problems == []
        return confirmations[0]

    plain = read(sese025(indicator="<PrtlSttlmInd>PART</PrtlSttlmInd>"))
    assert (plain.partial, plain.remaining_quantity) == (False, None)  # PART: allowed, no more
    assert plain.extra == {"account_servicer_reference": "CSD-9"}
    remainder = read(sese025(remaining="<RmngToBeSttldQty><Unit>50</Unit></RmngToBeSttldQty>"))
    assert (remainder.partial, remainder.remaining_quantity) == (True, Decimal("50"))
    cancelled = read(sese025(partial="<AddtlParams><PrtlSttlm>PARC</PrtlSttlm></AddtlParams>"))
    assert (cancelled.partial, cancelled.extra["partial_settlement"]) == (True, "PARC")
    bond = read(sese025(quantity="<Qty><FaceAmt>250000</FaceAmt></Qty>",
                        settlement_date="<Dt><DtTm>2025-03-17T14:05:00</DtTm></Dt>"))
    assert (bond.quantity, bond.settlement_date) == (Decimal("250000"), dt.date(2025, 3, 17))


@pytest.mark.parametrize(("xml", "rule", "words"), [
    (sese025(quantity="<Qty><Unit>1e3</Unit></Qty>"), Rule.INVALID_NUMBER, "'1e3'"),
    (sese025(quantity="<Qty><Unit>0</Unit></Qty>"), Rule.NON_POSITIVE_QUANTITY, "SttldQty"),
    (sese025(settlement_date="<Dt><Dt>2025-02-30</Dt></Dt>"), Rule.INVALID_DATE, "2025-02-30"),
    (sese025(isin="<Desc>Bond</Desc>"), Rule.MISSING_REQUIRED_VALUE, "FinInstrmId/ISIN"),
    (sese025().replace(b"RECE", b"RECV"), Rule.INVALID_ENUM_VALUE, "'RECV'"),
])
def test_values_the_reader_needs(xml: bytes, rule: Rule, words: str) -> None:
    confirmations, problems = read_sese025(xml, "in.xml")  # no schema: the reader's own checks
    assert confirmations == []
    assert [(problem.rule, problem.source, problem.line) for problem in problems] == [
        (rule, "in.xml", 2)]
    assert words in problems[0].detail and "instruction ZAP1" in problems[0].detail


# --- problems, envelopes, other messages -------------------------------------------------


def test_malformed_xml_does_not_stop_the_next_document() -> None:
    good = write_sese024(StatusAdvice("ZAP1", StatusKind.MATCHED))
    broken = b'<?xml version="1.0"?>\n<Document>\n  <SctiesSttlmTxStsAdvc>\n</Document>\n'
    other = write_sese024(StatusAdvice("ZAP2", StatusKind.PENDING, ("LACK",)))
    data = good + broken + other
    advices, problems = read_sese024(data, "batch.xml")
    assert [advice.reference for advice in advices] == ["ZAP1", "ZAP2"]
    before_broken = good.count(b"\n")
    assert [(problem.rule, problem.source, problem.line) for problem in problems] == [
        (Rule.XML_MALFORMED, "batch.xml", before_broken + 4)]
    assert advices[1].source == f"batch.xml:{before_broken + broken.count(NEWLINE) + 2}"
    assert read_sese024(b"", "empty.xml") == ([], [
        Problem(Rule.XML_MALFORMED, "the file holds no XML", "empty.xml")])
    assert read_sese024(b"<a>", "cut.xml")[1][0].rule is Rule.XML_MALFORMED


def envelope(*parts: bytes) -> bytes:
    """AppHdr/Document pairs (each given as a whole XML document) under one <message> root."""
    inner = b"".join(part.split(b"?>", 1)[1] if part.startswith(b"<?xml") else part
                     for part in parts)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n<message>' + inner + b"</message>\n"


def test_schema_invalid_and_other_types_are_located_and_the_rest_is_read(
        xsd: dict[str, etree.XMLSchema]) -> None:
    first = write_sese024(StatusAdvice("ZAP1", StatusKind.MATCHED, message_reference="M1"),
                          HEADER)
    invalid = write_sese024(StatusAdvice("ZAP2", StatusKind.PENDING, ("ZZZZ",),
                                         message_reference="M2"), HEADER)
    confirmation = write_sese025(dataclasses.replace(CONFIRMATIONS[0], message_reference="M3"),
                                 HEADER)
    last = write_sese024(StatusAdvice("ZAP4", StatusKind.FAILING, ("CLAC",),
                                      message_reference="M4"), HEADER)
    unwrap = [etree.tostring(part) for xml in (first, invalid, confirmation, last)
              for part in etree.fromstring(xml)]
    data = envelope(*unwrap)
    advices, problems = read_sese024(data, "csd.xml", xsd["sese.024.001.12"])
    assert [(advice.reference, advice.kind, advice.message_reference) for advice in advices] == [
        ("ZAP1", StatusKind.MATCHED, "M1"), ("ZAP4", StatusKind.FAILING, "M4")]
    assert [(problem.rule, problem.source) for problem in problems] == [
        (Rule.XML_SCHEMA_INVALID, "csd.xml"), (Rule.UNSUPPORTED_MESSAGE_TYPE, "csd.xml")]
    schema_problem, type_problem = problems
    assert schema_problem.detail.startswith("message M2, instruction ZAP2: not valid sese.024")
    assert "ZZZZ" in schema_problem.detail
    assert type_problem.detail == ("message M3, instruction ZAP1: sese.025.001.11 is not "
                                   "sese.024.001.12; not read")
    lines = data.split(b"\n")
    assert b"ZZZZ" in lines[schema_problem.line - 1]
    assert b"sese.025" in lines[type_problem.line - 1]


def test_the_shared_enveloped_samples_are_found_by_namespace() -> None:
    camt = shared_path("standards", "iso20022", "samples", "camt.053.001.07_prowide_test.xml")
    advices, problems = read_sese024(camt.read_bytes(), "camt.xml")
    assert advices == []
    assert [(problem.rule, problem.line) for problem in problems] == [
        (Rule.UNSUPPORTED_MESSAGE_TYPE, 23)]  # libxml2: where the start tag (lines 22-23) ends
    assert problems[0].detail.startswith("message ASDFSDF: camt.053.001.07 is not")
    # the same envelope and header, our sese.024 in place of its Document
    root = etree.fromstring(camt.read_bytes())
    root.replace(root[1], etree.fromstring(write_sese024(
        StatusAdvice("ZAP1", StatusKind.UNMATCHED, ("NMAS",)))))
    advices, problems = read_sese024(etree.tostring(root), "camt.xml")
    assert (advices[0].kind, advices[0].message_reference, problems) == (
        StatusKind.UNMATCHED, "ASDFSDF", [])
    # semt.002 with its head.001.001.04 header, put together as such an envelope
    folder = ("standards", "iso20022", "samples")
    semt = envelope(shared_path(*folder, "semt.002.001.11_prowide_test_Jira3251"
                                          ".apphdr_head.001.001.04.xml").read_bytes(),
                    shared_path(*folder, "semt.002.001.11_prowide_test_Jira3251.xml").read_bytes())
    confirmations, problems = read_sese025(semt, "semt.xml")
    assert confirmations == []
    assert [problem.rule for problem in problems] == [Rule.UNSUPPORTED_MESSAGE_TYPE]
    assert problems[0].detail.startswith("message DUMMYBIZMSGIDR0001: semt.002.001.11 is not")


def test_documents_of_no_iso_namespace_or_none_at_all() -> None:
    no_namespace = b"<Document><SctiesSttlmTxStsAdvc/></Document>"
    assert read_sese024(no_namespace, "a.xml")[1] == [Problem(
        Rule.UNSUPPORTED_MESSAGE_TYPE, "a Document without a namespace is not sese.024.001.12; "
        "not read", "a.xml", 1)]
    assert read_sese024(b"<?xml version='1.0'?>\n<Invoice/>", "b.xml")[1] == [Problem(
        Rule.UNSUPPORTED_MESSAGE_TYPE, "no ISO 20022 Document in the XML (its root is Invoice); "
        "expected sese.024.001.12", "b.xml", 2)]


def test_entities_are_not_expanded() -> None:
    secret = shared_path("standards", "README.md")
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY x SYSTEM "file://{secret}">]>\n'
           f'<Document xmlns="{SESE024_NS}"><SctiesSttlmTxStsAdvc><TxId><AcctOwnrTxId>&x;'
           "</AcctOwnrTxId></TxId><MtchgSts><Mtchd/></MtchgSts></SctiesSttlmTxStsAdvc>"
           "</Document>").encode()
    advices, problems = read_sese024(xml, "x.xml")
    assert advices == []
    assert [problem.rule for problem in problems] == [Rule.MISSING_REQUIRED_VALUE]
    assert "Standards" not in problems[0].detail


def test_validate_and_load_schema(xsd: dict[str, etree.XMLSchema]) -> None:
    path = shared_path("standards", "iso20022", "xsd", "sese.024.001.12.xsd")
    assert load_schema(path) is load_schema(str(path)) is xsd["sese.024.001.12"]
    complaints = validate(sese024("<SttlmSts><Pdg><NoSpcfdRsn>NONE</NoSpcfdRsn></Pdg></SttlmSts>"),
                          xsd["sese.024.001.12"])
    assert len(complaints) == 1 and complaints[0].startswith("line 2: ") and "NONE" in complaints[0]
    assert validate(write_sese024(StatusAdvice("ZAP1", StatusKind.MATCHED)),
                    xsd["sese.025.001.11"])[0].endswith(
        "No matching global declaration available for the validation root.")
    assert validate(b"<a>", xsd["sese.024.001.12"])[0].startswith("line 1: not well-formed XML")
