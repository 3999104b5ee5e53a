"""The one catalogue of business problem codes, each named after the rule it guards.

A problem is a value, never an exception: domain functions return problems beside their
results, and the shell prints them at the edge (file, line, rule, detail). Programmer errors
are assertions, not problems.  The first ten codes are fixed by the book-folder contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Rule(StrEnum):
    # --- fixed by the contract -----------------------------------------------------------
    INSUFFICIENT_SETTLED_CASH = "insufficient_settled_cash"
    TRADE_ALREADY_SETTLED = "trade_already_settled"
    UNKNOWN_TRADE = "unknown_trade"
    CONFLICTING_DUPLICATE_ID = "conflicting_duplicate_id"
    INVALID_ISIN = "invalid_isin"
    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    CURRENCY_MISMATCH = "currency_mismatch"
    QUANTITY_EXCEEDS_SCALE = "quantity_exceeds_scale"
    NOT_A_BUSINESS_DAY = "not_a_business_day"
    SETTLEMENT_DATE_BEFORE_TRADE_DATE = "settlement_date_before_trade_date"
    # --- the project's own ---------------------------------------------------------------
    MISSING_REQUIRED_FILE = "missing_required_file"
    MISSING_REQUIRED_COLUMN = "missing_required_column"
    MISSING_REQUIRED_VALUE = "missing_required_value"
    UNREADABLE_FILE = "unreadable_file"
    WRONG_FIELD_COUNT = "wrong_field_count"
    INVALID_NUMBER = "invalid_number"
    INVALID_DATE = "invalid_date"
    INVALID_CURRENCY = "invalid_currency"
    INVALID_COUNTRY = "invalid_country"
    UNKNOWN_MIC = "unknown_mic"
    INVALID_ENUM_VALUE = "invalid_enum_value"
    NON_POSITIVE_QUANTITY = "non_positive_quantity"
    NON_POSITIVE_PRICE = "non_positive_price"
    NEGATIVE_COMMISSION = "negative_commission"
    AMOUNT_EXCEEDS_SCALE = "amount_exceeds_scale"
    AMOUNT_SIGN_CONTRADICTS_KIND = "amount_sign_contradicts_kind"
    ZERO_AMOUNT = "zero_amount"
    CANCEL_BEFORE_TRADE_DATE = "cancel_before_trade_date"
    CANCEL_ACCOUNT_MISMATCH = "cancel_account_mismatch"
    TRADE_ALREADY_CANCELLED = "trade_already_cancelled"
    INVALID_RATIO = "invalid_ratio"
    INVALID_RATE = "invalid_rate"
    NEW_ISIN_REQUIRED = "new_isin_required"
    AMOUNT_REQUIRED = "amount_required"
    DATES_OUT_OF_ORDER = "dates_out_of_order"
    LIMIT_EXCEEDED = "limit_exceeded"
    # --- FIX drop copy -------------------------------------------------------------------
    FIX_BAD_CHECKSUM = "fix_bad_checksum"
    FIX_BAD_BODY_LENGTH = "fix_bad_body_length"
    FIX_MISSING_TAG = "fix_missing_tag"
    FIX_MALFORMED = "fix_malformed"
    FIX_UNMAPPED_ACCOUNT = "fix_unmapped_account"
    # --- settlement: standing instructions, obligations, fails ----------------------------
    INVALID_BIC = "invalid_bic"
    MISSING_SSI = "missing_ssi"
    DUPLICATE_SSI = "duplicate_ssi"
    # --- settlement messages in and out (ISO 20022, SWIFT MT) ------------------------------
    XML_MALFORMED = "xml_malformed"
    XML_SCHEMA_INVALID = "xml_schema_invalid"
    MT_MALFORMED = "mt_malformed"
    MT_MISSING_SEQUENCE = "mt_missing_sequence"
    MT_MISSING_FIELD = "mt_missing_field"
    MT_INVALID_CHARACTER = "mt_invalid_character"
    UNSUPPORTED_MESSAGE_TYPE = "unsupported_message_type"
    STATUS_MATCHES_NO_INSTRUCTION = "status_matches_no_instruction"
    DUPLICATE_CONFIRMATION = "duplicate_confirmation"
    CONFIRMATION_EXCEEDS_INSTRUCTION = "confirmation_exceeds_instruction"
    INSTRUCTION_NOT_CANCELLABLE = "instruction_not_cancellable"
    INSTRUCTION_ALREADY_HELD = "instruction_already_held"
    INSTRUCTION_NOT_HELD = "instruction_not_held"
    # --- reconciliation ------------------------------------------------------------------
    STATEMENT_DOES_NOT_ADD_UP = "statement_does_not_add_up"
    UNKNOWN_SAFEKEEPING_ACCOUNT = "unknown_safekeeping_account"
    UNKNOWN_BREAK = "unknown_break"
    BREAK_ALREADY_RESOLVED = "break_already_resolved"
    RESOLUTION_REASON_REQUIRED = "resolution_reason_required"
    # --- corporate actions in operation --------------------------------------------------
    FOUR_EYES_REQUIRED = "four_eyes_required"
    EVENT_NOT_APPROVED = "event_not_approved"
    EVENT_ALREADY_APPLIED = "event_already_applied"
    EVENT_NOT_APPLIED = "event_not_applied"
    UNSUPPORTED_EVENT_KIND = "unsupported_event_kind"
    UNKNOWN_EVENT = "unknown_event"
    AMENDMENT_AFTER_APPROVAL = "amendment_after_approval"
    EVENT_ALREADY_REVERSED = "event_already_reversed"
    DAY_ALREADY_CLOSED = "day_already_closed"
    # --- market claims -------------------------------------------------------------------
    UNKNOWN_CLAIM = "unknown_claim"
    CLAIM_NOT_OPEN = "claim_not_open"


class Severity(StrEnum):
    """ERROR: the input (row, message) was refused. WARNING: it broke the rule but was still
    read, and the detail says what was assumed — e.g. a SWIFT message whose sequence is closed
    under a misspelt name. A warning never stops what it is about."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """A business rule broken by one input: where, which rule, and the numbers behind it."""

    rule: Rule
    detail: str
    source: str = ""  # file name (or message source)
    line: int | None = None  # physical line, header = 1; or a FIX MsgSeqNum
    severity: Severity = Severity.ERROR

    @property
    def is_warning(self) -> bool:
        return self.severity is Severity.WARNING

    def located(self, source: str, line: int | None) -> Problem:
        return Problem(self.rule, self.detail, source, line, self.severity)

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        rule = f"{self.rule.value} (warning, read)" if self.is_warning else self.rule.value
        if where:
            return f"{where}: {rule}: {self.detail}"
        return f"{rule}: {self.detail}"


def warning(rule: Rule, detail: str, source: str = "", line: int | None = None) -> Problem:
    """A problem that did not stop the input it is about (see ``Severity``)."""
    return Problem(rule, detail, source, line, Severity.WARNING)


class BookError(Exception):
    """A command that cannot go on (no database, a broken invariant): stops with a clear message."""


class InvariantBroken(BookError):
    """The books disagree with themselves; nothing after this point may be committed."""
