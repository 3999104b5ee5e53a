"""The life of one settlement instruction, as a pure state machine.

::

    NEW ──sent──▶ SENT ──▶ ACKNOWLEDGED ──▶ MATCHED ⇄ UNMATCHED
     │                                        │
     │                                        ▼
     │                               PARTIALLY_SETTLED ──▶ SETTLED
     │
     └─(any state before settlement started)─▶ CANCEL_REQUESTED ──▶ CANCELLED
    (NEW, SENT, ACKNOWLEDGED, UNMATCHED, MATCHED) ──CSD refuses──▶ REJECTED

- NEW is an instruction generated, not yet sent; SENT is our own step (``mark_sent``).
- The CSD's status advices move it (``apply_status``): ACKNOWLEDGED, MATCHED, UNMATCHED,
  PENDING and FAILING (both mean matched, not settled: their reasons are kept), CANCEL_PENDING
  (→ CANCEL_REQUESTED), CANCELLED, REJECTED. A REJECTED advice while a cancellation is
  requested refuses the *cancellation*: the instruction goes back where it was.
- HELD / RELEASED is a flag (``held``), not a state: a held instruction keeps its status.
- FAILING is derived (``is_failing``): past the intended settlement date and not fully settled
  nor cancelled nor rejected.
- Confirmations (``apply_confirmation``) settle it, all at once or in parts.

Refusals (the state does not change, the problem says why):

- a status or confirmation about another reference: STATUS_MATCHES_NO_INSTRUCTION (the same
  rule for a confirmation whose ISIN, direction or payment differ from the instruction's);
- the same confirmation (its ``message_reference``) twice: DUPLICATE_CONFIRMATION;
- a confirmation for more quantity (or cash) than remains: CONFIRMATION_EXCEEDS_INSTRUCTION;
- a confirmation for a cancelled or rejected instruction: CONFIRMATION_EXCEEDS_INSTRUCTION
  (nothing remains to settle: the catalogue has no narrower rule);
- a cancellation once settlement has started (or the instruction is over):
  INSTRUCTION_NOT_CANCELLABLE.

A confirmation arriving while a cancellation is requested is accepted: settlement won the race
and the CSD will refuse the cancellation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from zaplecze.kernel.problems import Problem, Rule
from zaplecze.settlement.model import (
    Confirmation,
    Direction,
    Function,
    Instruction,
    Payment,
    StatusAdvice,
    StatusKind,
)

ZERO = Decimal(0)


class InstructionStatus(StrEnum):
    NEW = "NEW"  # generated, not sent
    SENT = "SENT"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    MATCHED = "MATCHED"
    UNMATCHED = "UNMATCHED"
    PARTIALLY_SETTLED = "PARTIALLY_SETTLED"
    SETTLED = "SETTLED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


FINAL = frozenset({InstructionStatus.SETTLED, InstructionStatus.CANCELLED,
                   InstructionStatus.REJECTED})
BEFORE_MATCHING = frozenset({InstructionStatus.NEW, InstructionStatus.SENT,
                             InstructionStatus.ACKNOWLEDGED, InstructionStatus.UNMATCHED})
# The order statuses are reached in: a late advice never moves an instruction backwards.
_PROGRESS = {InstructionStatus.NEW: 0, InstructionStatus.SENT: 1,
             InstructionStatus.ACKNOWLEDGED: 2, InstructionStatus.UNMATCHED: 3,
             InstructionStatus.MATCHED: 4, InstructionStatus.PARTIALLY_SETTLED: 5}


@dataclass(frozen=True, slots=True)
class InstructionState:
    """Where one instruction stands, with what has settled so far."""

    reference: str
    status: InstructionStatus
    instructed_quantity: Decimal
    settled_quantity: Decimal
    settled_amount: Decimal  # 0 when FREE
    instructed_amount: Decimal | None  # None when FREE
    isin: str
    direction: Direction
    payment: Payment
    settlement_date: dt.date  # intended (ISD)
    held: bool = False
    reasons: tuple[str, ...] = ()  # the latest advice's reason codes (LACK, CLAC, …)
    before_cancel: InstructionStatus | None = None  # where a refused cancellation returns to
    confirmations: tuple[str, ...] = ()  # message references of applied confirmations

    @property
    def remaining_quantity(self) -> Decimal:
        return self.instructed_quantity - self.settled_quantity

    @property
    def remaining_amount(self) -> Decimal | None:
        if self.instructed_amount is None:
            return None
        return self.instructed_amount - self.settled_amount

    @property
    def settlement_started(self) -> bool:
        return self.settled_quantity > 0


@dataclass(frozen=True, slots=True)
class Settled:
    """What one confirmation settled: quantity and cash (0 when FREE or refused)."""

    quantity: Decimal
    amount: Decimal


NOTHING = Settled(ZERO, ZERO)


def new_state(instruction: Instruction) -> InstructionState:
    """The state of an instruction just generated (NEW)."""
    return InstructionState(reference=instruction.reference, status=InstructionStatus.NEW,
                            instructed_quantity=instruction.quantity, settled_quantity=ZERO,
                            settled_amount=ZERO, instructed_amount=instruction.amount,
                            isin=instruction.isin, direction=instruction.direction,
                            payment=instruction.payment,
                            settlement_date=instruction.settlement_date)


def mark_sent(state: InstructionState) -> InstructionState:
    """We sent it: NEW → SENT (any later status stays)."""
    if state.status is InstructionStatus.NEW:
        return replace(state, status=InstructionStatus.SENT)
    return state


def _forward(state: InstructionState, status: InstructionStatus,
             reasons: tuple[str, ...]) -> InstructionState:
    """Move to ``status`` unless the instruction is already further on (a late advice)."""
    if state.status is InstructionStatus.CANCEL_REQUESTED:
        assert state.before_cancel is not None
        if _PROGRESS.get(status, 0) > _PROGRESS.get(state.before_cancel, 0):
            return replace(state, before_cancel=status, reasons=reasons)
        return replace(state, reasons=reasons)
    if _PROGRESS.get(status, 0) > _PROGRESS.get(state.status, 0):
        return replace(state, status=status, reasons=reasons)
    return replace(state, reasons=reasons)


def _no_instruction(state: InstructionState, reference: str, source: str,
                    what: str) -> Problem:
    return Problem(Rule.STATUS_MATCHES_NO_INSTRUCTION,
                   f"{what} is about {reference!r}, not instruction {state.reference!r}", source)


def apply_status(state: InstructionState,
                 advice: StatusAdvice) -> tuple[InstructionState, list[Problem]]:
    """The instruction after the CSD's status ``advice``. Advices for a settled, cancelled or
    rejected instruction, and late ones (ACKNOWLEDGED after MATCHED), change nothing."""
    if advice.reference != state.reference:
        return state, [_no_instruction(state, advice.reference, advice.source, "status advice")]
    kind = advice.kind
    if kind is StatusKind.HELD:
        return replace(state, held=True), []
    if kind is StatusKind.RELEASED:
        return replace(state, held=False), []
    if state.status in FINAL:
        return state, []
    if kind is StatusKind.ACKNOWLEDGED:
        return _forward(state, InstructionStatus.ACKNOWLEDGED, advice.reasons), []
    if kind in (StatusKind.MATCHED, StatusKind.PENDING, StatusKind.FAILING):
        return _forward(state, InstructionStatus.MATCHED, advice.reasons), []
    if kind is StatusKind.UNMATCHED:
        return _unmatched(state, advice.reasons), []
    if kind is StatusKind.CANCEL_PENDING:
        return _cancel_requested(state), []
    if kind is StatusKind.CANCELLED:
        return replace(state, status=InstructionStatus.CANCELLED, reasons=advice.reasons,
                       before_cancel=None), []
    assert kind is StatusKind.REJECTED, kind
    if state.status is InstructionStatus.CANCEL_REQUESTED:  # our cancellation was refused
        assert state.before_cancel is not None
        return replace(state, status=state.before_cancel, reasons=advice.reasons,
                       before_cancel=None), []
    if state.settlement_started:
        return replace(state, reasons=advice.reasons), []
    return replace(state, status=InstructionStatus.REJECTED, reasons=advice.reasons), []


def _unmatched(state: InstructionState, reasons: tuple[str, ...]) -> InstructionState:
    """Unmatched before matching, or again after it (the counterparty's side went away);
    never once settlement started."""
    if state.settlement_started:
        return replace(state, reasons=reasons)
    if state.status is InstructionStatus.CANCEL_REQUESTED:
        return replace(state, before_cancel=InstructionStatus.UNMATCHED, reasons=reasons)
    return replace(state, status=InstructionStatus.UNMATCHED, reasons=reasons)


def _cancel_requested(state: InstructionState) -> InstructionState:
    if state.status is InstructionStatus.CANCEL_REQUESTED:
        return state
    return replace(state, status=InstructionStatus.CANCEL_REQUESTED,
                   before_cancel=state.status)


def request_cancel(state: InstructionState) -> tuple[InstructionState, list[Problem]]:
    """Our cancellation: allowed only before settlement started. An instruction never sent
    is cancelled at once; a sent one awaits the CSD (CANCEL_REQUESTED)."""
    if state.settlement_started or state.status in FINAL:
        done = f"{state.settled_quantity} of {state.instructed_quantity} already settled" \
            if state.settlement_started else f"it is {state.status.value}"
        return state, [Problem(Rule.INSTRUCTION_NOT_CANCELLABLE,
                               f"instruction {state.reference} cannot be cancelled: {done}")]
    if state.status is InstructionStatus.CANCEL_REQUESTED:
        return state, [Problem(Rule.INSTRUCTION_NOT_CANCELLABLE,
                               f"instruction {state.reference} cannot be cancelled: its "
                               "cancellation was already requested")]
    if state.status is InstructionStatus.NEW:
        return replace(state, status=InstructionStatus.CANCELLED), []
    return _cancel_requested(state), []


def cancellation_of(instruction: Instruction, reference: str,
                    creation: dt.datetime | None = None) -> Instruction:
    """The cancellation message (CANC) of ``instruction``: its own ``reference``, linked to the
    instruction it cancels (PREV), repeating the details, as ISO 15022 wants."""
    return replace(instruction, reference=reference, function=Function.CANCEL,
                   linked_reference=instruction.reference, creation=creation)


def apply_confirmation(state: InstructionState, confirmation: Confirmation,
                       seen_message_refs: Collection[str] = frozenset(),
                       ) -> tuple[InstructionState, Settled, list[Problem]]:
    """The instruction after a settlement ``confirmation``, what settled now, and problems.

    ``seen_message_refs`` are the message references of confirmations already applied
    anywhere (the state also remembers its own). A confirmation without a message reference
    cannot be told from a repeat and is applied.
    """
    def refuse(rule: Rule, detail: str) -> tuple[InstructionState, Settled, list[Problem]]:
        return state, NOTHING, [Problem(rule, detail, confirmation.source)]

    if confirmation.reference != state.reference:
        return state, NOTHING, [_no_instruction(state, confirmation.reference,
                                                confirmation.source, "confirmation")]
    message = confirmation.message_reference
    if message and (message in seen_message_refs or message in state.confirmations):
        return refuse(Rule.DUPLICATE_CONFIRMATION,
                      f"confirmation {message} of {state.reference} was already applied")
    mismatch = _mismatch(state, confirmation)
    if mismatch:
        return refuse(Rule.STATUS_MATCHES_NO_INSTRUCTION,
                      f"confirmation of {state.reference}: {mismatch}")
    if state.status in (InstructionStatus.CANCELLED, InstructionStatus.REJECTED):
        return refuse(Rule.CONFIRMATION_EXCEEDS_INSTRUCTION,
                      f"instruction {state.reference} is {state.status.value}: nothing remains "
                      f"to settle, yet {confirmation.quantity} settled")
    amount = confirmation.amount if confirmation.amount is not None else ZERO
    remaining_amount = state.remaining_amount
    if confirmation.quantity > state.remaining_quantity or (
            remaining_amount is not None and amount > remaining_amount):
        cash = f", cash {amount} of {remaining_amount}" if remaining_amount is not None else ""
        return refuse(Rule.CONFIRMATION_EXCEEDS_INSTRUCTION,
                      f"confirmation of {state.reference} settles {confirmation.quantity} but "
                      f"{state.remaining_quantity} remains{cash}")
    settled_quantity = state.settled_quantity + confirmation.quantity
    status = (InstructionStatus.SETTLED if settled_quantity == state.instructed_quantity
              else InstructionStatus.PARTIALLY_SETTLED)
    confirmations = (*state.confirmations, message) if message else state.confirmations
    after = replace(state, status=status, settled_quantity=settled_quantity,
                    settled_amount=state.settled_amount + amount, confirmations=confirmations,
                    before_cancel=None)
    return after, Settled(confirmation.quantity, amount), []


def _mismatch(state: InstructionState, confirmation: Confirmation) -> str:
    if confirmation.isin != state.isin:
        return f"ISIN {confirmation.isin} is not the instruction's {state.isin}"
    if confirmation.direction is not state.direction:
        return f"direction {confirmation.direction.value} is not {state.direction.value}"
    if confirmation.payment is not state.payment:
        return f"payment {confirmation.payment.value} is not {state.payment.value}"
    if confirmation.quantity <= 0:
        return f"quantity {confirmation.quantity} is not positive"
    return ""


def is_failing(state: InstructionState, today: dt.date) -> bool:
    """Past its intended settlement date (``today`` after the ISD) and still to settle: not
    settled in full, nor cancelled, nor rejected."""
    return today > state.settlement_date and state.status not in FINAL
