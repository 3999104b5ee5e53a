"""The tables. Ledger amounts are BIGINT counts of the asset's smallest unit; prices, rates and
other non-ledger decimals are exact decimal text (SQLite's NUMERIC is a float in disguise).
Dates are ISO text on both databases so that one query shape serves both."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

Date = String(10)  # YYYY-MM-DD: sorts and compares correctly as text
Hash = String(64)

instruments = Table(
    "instruments", metadata,
    Column("isin", String(12), primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("mic", String(4), nullable=False),
    Column("issuer_country", String(2), nullable=False),
    Column("quantity_scale", Integer, nullable=False),
    Column("content_hash", Hash, nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("account", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("base_currency", String(3), nullable=False),
    Column("tax_residence", String(2), nullable=False),
    Column("lot_method", String(8), nullable=False),
    Column("content_hash", Hash, nullable=False),
)

fee_rules = Table(
    "fee_rules", metadata,
    Column("mic", String(4), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("rate_bps", Text, nullable=False),
    Column("minimum", Text, nullable=False),
    Column("content_hash", Hash, nullable=False),
)

withholding_rates = Table(
    "withholding_rates", metadata,
    Column("issuer_country", String(2), primary_key=True),
    Column("tax_residence", String(2), primary_key=True),
    Column("rate", Text, nullable=False),
    Column("content_hash", Hash, nullable=False),
)

prices = Table(
    "prices", metadata,
    Column("business_date", Date, primary_key=True),
    Column("isin", String(12), primary_key=True),
    Column("close", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("content_hash", Hash, nullable=False),
)

fx_rates = Table(
    "fx_rates", metadata,
    Column("business_date", Date, primary_key=True),
    Column("base", String(3), primary_key=True),
    Column("quote", String(3), primary_key=True),
    Column("rate", Text, nullable=False),
    Column("content_hash", Hash, nullable=False),
)

calendar_overrides = Table(
    "calendar_overrides", metadata,
    Column("calendar", String(4), primary_key=True),  # a MIC or an ISO 4217 code
    Column("business_date", Date, primary_key=True),
    Column("closed", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("content_hash", Hash, nullable=False),
)

# Source records: the instructions as received, keyed by their idempotency keys.
trades = Table(
    "trades", metadata,
    Column("trade_id", String(64), primary_key=True),
    Column("sequence", BigInteger, nullable=False, unique=True),
    Column("account", String(64), nullable=False, index=True),
    Column("isin", String(12), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Text, nullable=False),
    Column("price", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("trade_date", Date, nullable=False),
    Column("settlement_date", Date, nullable=False),
    Column("venue", String(16), nullable=False),
    Column("counterparty", String(64), nullable=False),
    Column("gross", Text, nullable=False),
    Column("commission", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("content_hash", Hash, nullable=False),
)

cancels = Table(
    "cancels", metadata,
    Column("trade_id", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("cancel_date", Date, nullable=False),
    Column("content_hash", Hash, nullable=False),
)

cash_movements = Table(
    "cash_movements", metadata,
    Column("movement_id", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("value_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("decision", String(48), nullable=False),  # BOOKED or the rule that rejected it
    Column("content_hash", Hash, nullable=False),
)

corporate_actions = Table(
    "corporate_actions", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("sequence", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("isin", String(12), nullable=False),
    Column("ex_date", Date, nullable=False),
    Column("record_date", Date, nullable=False),
    Column("pay_date", Date, nullable=False),
    Column("ratio_old", Text, nullable=False),
    Column("ratio_new", Text, nullable=False),
    Column("amount", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("new_isin", String(12), nullable=False),
    Column("cost_fraction", Text, nullable=False),
    Column("fraction_price", Text, nullable=False),
    Column("content_hash", Hash, nullable=False),
)

# The journal: append-only, hash-chained. `sequence` is the order of recording.
entries = Table(
    "entries", metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_key", String(160), nullable=False, unique=True),
    Column("kind", String(24), nullable=False),
    Column("phase", String(8), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("settle_date", Date),
    Column("ref", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("target_key", String(160), nullable=False),
    Column("linked_key", String(160), nullable=False),
    Column("memo", Text, nullable=False),
    Column("prev_hash", Hash, nullable=False),
    Column("hash", Hash, nullable=False),
)

postings = Table(
    "postings", metadata,
    Column("entry_sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("gl_account", String(96), nullable=False),
    Column("asset", String(12), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("basis", String(1), nullable=False),
    Column("business_date", Date, nullable=False),
)

# Materialised balances per (account, asset, basis): a cache, checked against the fold.
balances = Table(
    "balances", metadata,
    Column("gl_account", String(96), primary_key=True),
    Column("asset", String(12), primary_key=True),
    Column("basis", String(1), primary_key=True),  # T (trade) or S (settlement)
    Column("amount", BigInteger, nullable=False),
)

# The day's change in every cash balance per (view, business date, GL account, currency): a
# cache written with each entry, so that cash and the trial balance as of any date are a sum
# over days rather than over every posting (checked against the fold at end of day).
cash_by_day = Table(
    "cash_by_day", metadata,
    Column("basis", String(1), primary_key=True),  # T (trade) or S (settlement)
    Column("business_date", Date, primary_key=True),
    Column("gl_account", String(96), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

entitlements = Table(
    "entitlements", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("isin", String(12), nullable=False),
    Column("quantity", Text, nullable=False),
    Column("new_quantity", Text, nullable=False),
    Column("gross", Text, nullable=False),
    Column("withholding", Text, nullable=False),
    Column("net", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("pay_date", Date, nullable=False),
    Column("credit_date", Date, nullable=False),
)

rejections = Table(
    "rejections", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file", String(64), nullable=False),
    Column("line", Integer),
    Column("reason", String(48), nullable=False),
    Column("detail", Text, nullable=False),
    Column("source_key", String(160), nullable=False),
    Column("fingerprint", Hash, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    UniqueConstraint("file", "line", "reason", "fingerprint", name="uq_rejection_once"),
)

eod_runs = Table(
    "eod_runs", metadata,
    Column("business_date", Date, primary_key=True),
    Column("completed_at", String(32), nullable=False),
    Column("entries_booked", Integer, nullable=False),
    Column("head_sequence", BigInteger, nullable=False),
    Column("journal_head", Hash, nullable=False),
)

ca_applications = Table(
    "ca_applications", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("applied_on", Date, nullable=False),
    Column("accounts_entitled", Integer, nullable=False),
)

# End-of-day valuation: each account's positions at the latest closing price, per currency.
valuations = Table(
    "valuations", metadata,
    Column("business_date", Date, primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("market_value", Text, nullable=False),
    Column("positions", Integer, nullable=False),
    Column("unpriced", Integer, nullable=False),
)

# --- settlement (revision 0002) -----------------------------------------------------------------

# Standing settlement instructions per counterparty × market × currency ('*' = any).
ssis = Table(
    "ssis", metadata,
    Column("counterparty", String(64), primary_key=True),
    Column("market", String(4), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("place_of_settlement", String(11), nullable=False),
    Column("counterparty_bic", String(11), nullable=False),
    Column("counterparty_account", String(35), nullable=False),
    Column("safekeeping_account", String(35), nullable=False),
    Column("payment", String(4), nullable=False),  # APMT or FREE
    Column("netting", Integer, nullable=False),  # 1: net (CCP), 0: gross (bilateral)
    Column("content_hash", Hash, nullable=False),
)

# Instructions as sent: never changed; their state is the fold of the messages received.
settlement_instructions = Table(
    "settlement_instructions", metadata,
    Column("reference", String(16), primary_key=True),
    Column("sequence", BigInteger, nullable=False, unique=True),
    Column("function", String(4), nullable=False),
    Column("direction", String(4), nullable=False),
    Column("payment", String(4), nullable=False),
    Column("trade_date", Date, nullable=False),
    Column("settlement_date", Date, nullable=False),
    Column("isin", String(12), nullable=False),
    Column("quantity", Text, nullable=False),
    Column("amount", Text, nullable=False),  # '' when free of payment
    Column("currency", String(3), nullable=False),  # '' when free of payment
    Column("counterparty", String(64), nullable=False),
    Column("place_of_settlement", String(11), nullable=False),
    Column("counterparty_bic", String(11), nullable=False),
    Column("counterparty_account", String(35), nullable=False),
    Column("safekeeping_account", String(35), nullable=False),
    Column("linked_reference", String(16), nullable=False),
    Column("partial_allowed", Integer, nullable=False),
    Column("created_on", Date, nullable=False),  # the business day it was generated
    Column("created_at", String(32), nullable=False),
)

# Which trades an instruction settles, with each one's signed street-side legs.
instruction_trades = Table(
    "instruction_trades", metadata,
    Column("reference", String(16), primary_key=True),
    Column("trade_id", String(64), primary_key=True, index=True),
    Column("quantity", Text, nullable=False),
    Column("cash", Text, nullable=False),
)

# Status advices and confirmations received: an append-only inbox, each once (fingerprint).
settlement_messages = Table(
    "settlement_messages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(16), nullable=False, index=True),  # our instruction's
    Column("message_reference", String(35), nullable=False),
    Column("kind", String(12), nullable=False),  # STATUS, CONFIRMATION, HOLD, RELEASE
    Column("status", String(16), nullable=False),
    Column("reasons", Text, nullable=False),
    Column("quantity", Text, nullable=False),
    Column("amount", Text, nullable=False),
    Column("settlement_date", Date, nullable=False),
    Column("partial", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("decision", String(48), nullable=False),  # APPLIED or the rule that refused it
    Column("received_on", Date, nullable=False),
    Column("fingerprint", Hash, nullable=False, unique=True),
)

# When an instruction reached a final state (SETTLED, CANCELLED, REJECTED): an index of the
# fold of its messages, so the open ones are found without folding every instruction ever sent.
instruction_outcomes = Table(
    "instruction_outcomes", metadata,
    Column("reference", String(16), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("business_date", Date, nullable=False),
)

# CSDR cash penalties, one per failing instruction and failing business day.
penalties = Table(
    "penalties", metadata,
    Column("reference", String(16), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("counterparty", String(64), nullable=False),
    Column("isin", String(12), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("failing_quantity", Text, nullable=False),
    Column("reference_price", Text, nullable=False),
    Column("penalty_class", String(24), nullable=False),
    Column("rate", Text, nullable=False),
    Column("amount", Text, nullable=False),
    Column("payer", String(4), nullable=False),  # US or THEM
    Column("entry_key", String(160), nullable=False),
)

# --- reconciliation (revision 0003) -------------------------------------------------------------

# Statements received (custodian/CSD holdings, bank statements), each once by fingerprint.
recon_statements = Table(
    "recon_statements", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(12), nullable=False),  # POSITIONS or CASH
    Column("source", Text, nullable=False),
    Column("statement_id", String(64), nullable=False),
    Column("statement_date", Date, nullable=False),
    Column("account", Text, nullable=False),  # the statement's account(s), comma-separated
    Column("summary", Text, nullable=False),
    Column("received_on", Date, nullable=False),
    Column("fingerprint", Hash, nullable=False, unique=True),
)

# A break's current state; its life is in break_events and break_comments (append-only).
breaks = Table(
    "breaks", metadata,
    Column("break_id", String(24), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("ours", Text, nullable=False),
    Column("theirs", Text, nullable=False),
    Column("difference", Text, nullable=False),
    Column("asset", Text, nullable=False),  # ISIN, currency, or a security id as given
    Column("first_seen", Date, nullable=False),
    Column("last_seen", Date, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolution_reason", Text, nullable=False),
)

break_events = Table(
    "break_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("break_id", String(24), nullable=False, index=True),
    Column("at", String(32), nullable=False),
    Column("who", String(64), nullable=False),
    Column("what", String(32), nullable=False),
    Column("before", Text, nullable=False),
    Column("after", Text, nullable=False),
)

break_comments = Table(
    "break_comments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("break_id", String(24), nullable=False, index=True),
    Column("author", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("text", Text, nullable=False),
)

# Corporate actions in operation: every announcement received and every operator's step, in
# order (append-only); an event's state is their replay through corporate_actions.lifecycle.
ca_event_log = Table(
    "ca_event_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, index=True),
    Column("action", String(16), nullable=False),  # announce, compute, approve
    Column("who", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # the MT564 as received, or a payload hash
    Column("source", Text, nullable=False),
)

# --- The workbench: staff, their sessions and tokens, desks, the audit trail, four-eyes -------

users = Table(
    "users", metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("totp_secret", String(64), nullable=False),  # base32; every staff user has one
    Column("roles", Text, nullable=False),  # comma-separated role names
    Column("desk", String(32), nullable=False),  # "" = every desk
    Column("active", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
)

web_sessions = Table(
    "web_sessions", metadata,
    Column("session_hash", Hash, primary_key=True),  # SHA-256 of the cookie's token
    Column("username", String(64), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("last_seen_at", String(32), nullable=False),
    Column("ended_at", String(32), nullable=False),  # "" while alive
    Column("address", String(64), nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_hash", Hash, nullable=False, unique=True),
    Column("username", String(64), nullable=False),
    Column("scopes", Text, nullable=False),  # comma-separated permissions
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("revoked_at", String(32), nullable=False),
)

login_attempts = Table(
    "login_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, index=True),
    Column("address", String(64), nullable=False),
    Column("at", String(32), nullable=False, index=True),
    Column("succeeded", Integer, nullable=False),
)

account_desks = Table(
    "account_desks", metadata,
    Column("account", String(64), primary_key=True),
    Column("desk", String(32), nullable=False, index=True),
)

# Every action through the workbench or API: who, what, when, from where, before and after;
# hash-chained like the journal and append-only.
audit_trail = Table(
    "audit_trail", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", Text, nullable=False),
    Column("before", Text, nullable=False),  # JSON
    Column("after", Text, nullable=False),  # JSON
    Column("hash", Hash, nullable=False),
)

# Four-eyes: a request made by one person, decided by another, bound to the payload's hash.
approval_requests = Table(
    "approval_requests", metadata,
    Column("request_id", String(32), primary_key=True),
    Column("action", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("payload_hash", Hash, nullable=False),
    Column("maker", String(64), nullable=False),
    Column("made_at", String(32), nullable=False),
)

approval_decisions = Table(
    "approval_decisions", metadata,
    Column("request_id", String(32), primary_key=True),
    Column("decision", String(16), nullable=False),  # approved, rejected
    Column("checker", String(64), nullable=False),
    Column("decided_at", String(32), nullable=False),
    Column("payload_hash", Hash, nullable=False),
)

# POST /api/trades with an Idempotency-Key: the first answer, replayed for the same body.
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("key", String(200), primary_key=True),  # username + "\x1f" + the header
    Column("request_hash", Hash, nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("at", String(32), nullable=False),
)

# The exception queue's items that have no life of their own (failed settlements, rejected
# rows, events awaiting approval): who owns them, and whether they are dealt with.
work_items = Table(
    "work_items", metadata,
    Column("item_key", String(200), primary_key=True),  # fail:REF, rejected:ID, ca:EVENT
    Column("owner", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # open, investigating, resolved
    Column("resolution_reason", Text, nullable=False),
    Column("updated_at", String(32), nullable=False),
)

work_item_comments = Table(
    "work_item_comments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_key", String(200), nullable=False, index=True),
    Column("author", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("text", Text, nullable=False),
)

# --- corporate-action reversals and market claims (revision 0005) ------------------------------

# An applied event undone, once (four eyes: requested by one person, approved by another); its
# entries are in the journal (``reversal:<key>``). Append-only: the key makes a second one
# impossible.
ca_reversals = Table(
    "ca_reversals", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("business_date", Date, nullable=False),  # the reversal's date in the books
    Column("reason", Text, nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("approved_by", String(64), nullable=False),
    Column("request_id", String(32), nullable=False),
    Column("entries", Integer, nullable=False),  # reversal entries booked
    Column("recorded_at", String(32), nullable=False),
)

# A market claim as raised (append-only); what became of it is in market_claim_events, its
# money in the journal (``ca-claim:<event>:<trade>``, ``ca-claim-paid:<event>:<trade>``).
market_claims = Table(
    "market_claims", metadata,
    Column("claim_id", String(16), primary_key=True),
    Column("event_id", String(64), nullable=False, index=True),
    Column("trade_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("counterparty", String(64), nullable=False),
    Column("direction", String(10), nullable=False),  # RECEIVABLE or PAYABLE
    Column("isin", String(12), nullable=False),
    Column("quantity", Text, nullable=False),  # undelivered at the end of the record date
    Column("rate", Text, nullable=False),
    Column("gross", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("record_date", Date, nullable=False),
    Column("pay_date", Date, nullable=False),
    Column("raised_on", Date, nullable=False),
    Column("status", String(12), nullable=False),  # as raised (RAISED); later: the events
    UniqueConstraint("event_id", "trade_id", name="uq_market_claim_once"),
)

market_claim_events = Table(
    "market_claim_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("claim_id", String(16), nullable=False, index=True),
    Column("what", String(12), nullable=False),  # COMPENSATED, CANCELLED
    Column("business_date", Date, nullable=False),
    Column("entry_key", String(160), nullable=False),  # '' when nothing was booked
    Column("who", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("detail", Text, nullable=False),
)

# --- checkpoints (revision 0007) ---------------------------------------------------------------

# At the close of a checkpoint day (end of day: each week's and each month's last weekday) the
# book as it then stood: every balance on both views and every account's open lots. Reports
# as of a later date start from the latest checkpoint instead of the first trade. Derived from
# the journal and the source records and never changed; what a checkpoint could not have known
# when it was written (a trade booked late, a cancel, a corporate action or reference data that
# differ) is found from the high-water marks below, and the reader then falls back to the
# journal for what is affected.
checkpoints = Table(
    "checkpoints", metadata,
    Column("business_date", Date, primary_key=True),
    Column("entry_sequence", BigInteger, nullable=False),  # the journal's head when written
    Column("trade_sequence", BigInteger, nullable=False),  # the last trade booked by then
    Column("actions", Text, nullable=False),  # corporate actions in the lots, ids comma-joined
    Column("refdata", Hash, nullable=False),  # digest of what the lot fold reads from refdata
    Column("written_at", String(32), nullable=False),
)

# The entries booked dated on or before the latest checkpoint of their time (a trade loaded
# late, a cancel dated back): the few postings a balance from a checkpoint must add besides
# those dated after it. The journal writer keeps it.
late_entries = Table(
    "late_entries", metadata,
    Column("entry_sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("business_date", Date, nullable=False),
)

checkpoint_balances = Table(
    "checkpoint_balances", metadata,
    Column("business_date", Date, primary_key=True),
    Column("basis", String(1), primary_key=True),  # T (trade) or S (settlement)
    Column("gl_account", String(96), primary_key=True),
    Column("asset", String(12), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Every account with a trade dated up to the checkpoint, lots open or not.
checkpoint_accounts = Table(
    "checkpoint_accounts", metadata,
    Column("business_date", Date, primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("next_order", BigInteger, nullable=False),  # the lot fold's booking-order counter
    Column("cancelled", Integer, nullable=False),  # its trades to the date cancelled by then
    sqlite_with_rowid=False,
)

checkpoint_lots = Table(
    "checkpoint_lots", metadata,
    Column("business_date", Date, primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("isin", String(12), primary_key=True),
    Column("position", Integer, primary_key=True),  # the lot's place in the account's list
    Column("acquired", Date, nullable=False),
    Column("lot_order", BigInteger, nullable=False),
    Column("quantity", Text, nullable=False),  # exact: a fraction "n/d" after some ratios
    Column("cost", Text, nullable=False),  # decimal at the currency's minor unit
    sqlite_with_rowid=False,
)

# Secondary indexes a bulk load has dropped, to build once at its end (store/bulk_indexes.py):
# what a crash in between left to build again. Empty but during a big load.
deferred_indexes = Table(
    "deferred_indexes", metadata,
    Column("name", String(64), primary_key=True),
    Column("definition", Text, nullable=False),  # the CREATE INDEX statement, as the book had it
    Column("deferred_at", String(32), nullable=False),
)
