"""Lifecycle commands of a cell: customers, accounts, cards, PINs, limits, credit lines, installments.

One implementation for two transports: the CLI sends a command over the running cell's admin socket, or,
when the cell is not running, loads the cell's state from its database, runs the command in-process and
writes the effects. Either way :meth:`CellCommands.run` returns ``(result, effects)``: ``result`` is a
JSON-able dict, ``effects`` the snapshots of every row the command changed, for the storage writer.

The commands are grouped by what they act on, one module each (``customers``, ``accounts``, ``cards`` and
``issuance``, ``credit``, ``operations``), over :mod:`~processors.commands.base` (the state, lookups and views) and
:mod:`~processors.commands.args` (errors, the registry, argument reading).

Rules every command follows:

- **Validate everything, then change state.** All arguments, references and business rules are checked
  before the first mutation, so a :class:`CommandError` leaves the state exactly as it was and returns no
  effects. The only await (the HSM call of ``card.set_pin``) happens before the checks are repeated and the
  state is changed, with no await in between (the engine may run between two awaits).
- **Strict arguments.** A missing argument, a wrong type or an unknown argument is an error that names it
  (with a "did you mean" hint), as for configuration files.
- **No clear PAN in results or errors**, except the ``"pan"`` that ``card.issue`` and ``card.replace``
  return for card personalisation (the CLI writes it only to a 0600 file). Everything else shows
  ``masked_pan`` (first six, last four: PCI DSS).

References: a customer is its number (``0100000001``) or ``"ref:<external_ref>"``; an account is its
number or ``"<customer>/<kind>"`` (the customer's only active account of that kind, e.g.
``"ref:CIF-1001/checking"``); a card is its id (``K0100000001``) or its PAN; a credit line is given as
``line`` (its number) or ``customer``.

Commands (arguments; ``?`` optional):

=========================== ===========================================================================
``customer.open``           name, external_ref (must map to this cell: ``crc32(ref) % cell_count``)
``customer.show``           customer
``customer.close``          customer (no open account, no active card; closes the credit line too)
``account.open``            customer, kind (checking|savings|credit), product, currency?
``account.show``            account
``account.deposit``         account, amount, reference, currency? (cash at a branch: GL:CASH)
``account.post``            account, amount, reference, description? (a posted purchase: demo and tests)
``account.set_pricing``     account, item, value (null removes the override; see processors.pricing)
``account.close``           account (zero ledger balance, no open hold or installment plan, no active card)
``card.issue``              customer, product, account?, bin?, vanity?, expiry? (YYMM), activate?
``card.issue_check``        rows (a list of card.issue arguments): every check card.issue makes, nothing issued;
                            returns the refused rows as {row, error} (a batch is checked whole before it starts)
``card.show``               card
``card.activate``           card
``card.block``              card, status (blocked|lost|stolen), reason
``card.unblock``            card (blocked or captured by an ATM: lost and stolen cards are replaced)
``card.replace``            card, new_number, reason, expiry?, activate? (same number: new expiry; not lost|stolen)
``card.set_pin``            card, pin_block (16H, ISO 9564 format 0 under the key set's ZPK)
``card.reset_pin``          card
``card.set_limits``         card, channel, per_txn?, daily_amount?, daily_count? (null removes)
``card.events``             card: its audit events (PIN changes and their reversals, ATM captures, releases),
                            newest first (processors.model.CardEvent)
``credit.set_limit``        customer | line, limit?, cash_limit?
``credit.show``             customer | line
``credit.payment``          account, amount, reference (the cardholder pays: GL:PAYMENTS)
``credit.installments``     account, txn (id, or "ref:<reference>" of an account.post), count, rate_bp?
``credit.bill_installments`` day? (YYYY-MM-DD, default today)
``exception.list``          status? (open, the default | resolved | all): advices posted on an assumption or not
                            posted (processors.model.ExceptionItem), oldest first
``exception.resolve``       exception, note (what the back office did: refused if already resolved)
``cell.stats``              (none)
=========================== ===========================================================================

Transactions recorded by commands (deposits, posted purchases, credit card payments) are
:class:`~processors.model.Txn` rows with an empty MTI, channel ``"manual"`` and ``dup_key``
``"cmd:deposit:<reference>"`` (``"cmd:post:..."``, ``"cmd:payment:..."``): a reference can be used once, so a
deposit or payment repeated by mistake is refused instead of paid twice.

Closing: a closed account or customer stays in the cell (its history is kept) with status ``closed``. No command
moves money on a closed account, the engine declines 0100/0200 requests on it (62: its funds check wants an
active account; advices and reversals of earlier transactions are still applied), and a card whose default
account or customer is closed cannot be activated, unblocked or replaced, so no card comes back to life on it.
"""

from processors.commands.args import (
    ACCOUNT_KINDS,
    ACCOUNT_TYPES,
    DEBIT_KINDS,
    GL_PAYMENTS,
    CommandError,
    command_names,
)
from processors.commands.cell import CellCommands

__all__ = [
    "ACCOUNT_KINDS", "ACCOUNT_TYPES", "DEBIT_KINDS", "GL_PAYMENTS", "CellCommands", "CommandError", "command_names",
]
