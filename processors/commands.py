"""Lifecycle commands of a cell: customers, accounts, cards, PINs, limits, credit lines, installments.

One implementation for two transports: the CLI sends a command over the running cell's admin socket, or,
when the cell is not running, loads the cell's state from its database, runs the command in-process and
writes the effects. Either way :meth:`CellCommands.run` returns ``(result, effects)``: ``result`` is a
JSON-able dict, ``effects`` the snapshots of every row the command changed, for the storage writer.

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
``card.unblock``            card (blocked only: lost and stolen cards are replaced)
``card.replace``            card, new_number, reason, expiry?, activate? (same number: new expiry; not lost|stolen)
``card.set_pin``            card, pin_block (16H, ISO 9564 format 0 under the key set's ZPK)
``card.reset_pin``          card
``card.set_limits``         card, channel, per_txn?, daily_amount?, daily_count? (null removes)
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

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

from hsm.api import Hsm
from hsm.errors import HsmError, HsmUnavailableError
from processors import cardnumber, credit, installments, ledger, money, pricing
from processors.cardnumber import CardNumberError
from processors.catalog import Catalog, Product
from processors.model import (
    Account,
    Card,
    CardStatus,
    Channel,
    CreditLine,
    Customer,
    Effects,
    ExceptionItem,
    InstallmentPlan,
    ProductKind,
    Txn,
    TxnStatus,
    TxnType,
)
from processors.state import CellState
from switch.model.errors import BulkheadError
from switch.model.masking import mask_pan


def utcnow() -> datetime:
    return datetime.now(UTC)


class CommandError(BulkheadError):
    """A command was refused: bad input or a business rule. Nothing was changed. No card data in the text."""


Handler = Callable[["CellCommands", "_Args", Effects], Awaitable[dict[str, Any]]]
_COMMANDS: dict[str, Handler] = {}

DEBIT_KINDS: Final = ("checking", "savings")
ACCOUNT_KINDS: Final = (*DEBIT_KINDS, "credit")
# DE 3 positions 3-4 / 5-6, account type (ISO 8583:1987): 10 savings, 20 checking, 30 credit.
ACCOUNT_TYPES: Final = {"savings": "10", "checking": "20", "credit": "30"}
BLOCK_STATUSES: Final = (CardStatus.BLOCKED, CardStatus.LOST, CardStatus.STOLEN)
_DEAD: Final = (CardStatus.REPLACED, CardStatus.EXPIRED)
_MAX_TEXT = 200
_HEX16 = re.compile(r"^[0-9A-Fa-f]{16}$")
_YYMM = re.compile(r"^\d{2}(0[1-9]|1[0-2])$")
# Cardholder payments received (bank transfer, direct debit, a branch counter): a clearing account of its own,
# reconciled against the bank's incoming payments, apart from GL:CASH (deposits of cash into deposit accounts).
GL_PAYMENTS: Final = "GL:PAYMENTS"
ZPK: Final = "001"  # payShield key type code of a zone PIN key (hsm.api: pin_key_type)
ISO_FORMAT_0: Final = "01"  # Thales PIN block format code of ISO 9564-1 format 0


def _command(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _COMMANDS[name] = handler
        return handler
    return register


def command_names() -> list[str]:
    """Every command :meth:`CellCommands.run` accepts."""
    return sorted(_COMMANDS)


class _Args:
    """A command's arguments being read: types checked, leftovers are errors."""

    def __init__(self, command: str, args: Mapping[str, Any]) -> None:
        if not isinstance(args, Mapping):
            raise CommandError(f"{command}: arguments must be an object, got {type(args).__name__}")
        self.command = command
        self.data = args
        self.used: set[str] = set()

    def error(self, name: str, reason: str) -> CommandError:
        return CommandError(f"{self.command}: {name}: {reason}")

    def has(self, name: str) -> bool:
        self.used.add(name)
        return name in self.data

    def raw(self, name: str, default: Any = ...) -> Any:
        """The value as given; ``default`` when absent or null (required when no default)."""
        self.used.add(name)
        if name not in self.data or (self.data[name] is None and default is not ...):
            if default is ...:
                raise self.error(name, "is required")
            return default
        return self.data[name]

    def _given(self, name: str, default: Any) -> bool:
        return not (default is not ... and (name not in self.data or self.data[name] is None))

    def text(self, name: str, default: Any = ...) -> Any:
        value = self.raw(name, default)
        if not self._given(name, default):
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, "expected a non-empty string")
        if len(value) > _MAX_TEXT:
            raise self.error(name, f"longer than {_MAX_TEXT} characters")
        return value.strip()

    def integer(self, name: str, default: Any = ..., *, low: int = 0, high: int = money.MAX_AMOUNT) -> Any:
        value = self.raw(name, default)
        if not self._given(name, default):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise self.error(name, f"must be {low}..{high}, got {value}")
        return value

    def flag(self, name: str, default: Any = ...) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {type(value).__name__}")
        return value

    def done(self) -> None:
        for extra in sorted(set(self.data) - self.used):
            hint = difflib.get_close_matches(extra, sorted(self.used), n=1)
            raise self.error(extra, "unknown argument" + (f" (did you mean {hint[0]!r}?)" if hint else ""))


class CellCommands:
    """Runs lifecycle commands against one cell's state (see the module docstring).

    ``unseal`` (optional) opens ``Card.pan_sealed``; without it, ``card.set_pin`` and a same-number
    ``card.replace`` need the card named by its PAN, because both need the PAN and the cell keeps only its
    keyed hash and its sealed form.
    """

    def __init__(self, state: CellState, catalog: Catalog, *, cell_count: int, hsm: Hsm | None,
                 pan_hash: Callable[[str], str], seal: Callable[[bytes], bytes],
                 clock: Callable[[], datetime] = utcnow, unseal: Callable[[bytes], bytes] | None = None) -> None:
        if not 1 <= cell_count <= cardnumber.MAX_CELLS or not 0 <= state.cell < cell_count:
            raise ValueError(f"cell {state.cell} is not one of {cell_count} cells")
        self.state = state
        self.catalog = catalog
        self.cell_count = cell_count
        self.hsm = hsm
        self.pan_hash = pan_hash
        self.seal = seal
        self.unseal = unseal
        self.clock = clock

    async def run(self, name: str, args: Mapping[str, Any]) -> tuple[dict[str, Any], Effects]:
        """Run command ``name``; returns (JSON-able result, effects). Raises :class:`CommandError`."""
        handler = _COMMANDS.get(name)
        if handler is None:
            hint = difflib.get_close_matches(name, command_names(), n=1)
            raise CommandError(f"unknown command {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        effects = Effects()
        result = await handler(self, _Args(name, args), effects)
        return result, effects

    # ------------------------------------------------------------------------------------ lookups

    def _now(self) -> datetime:
        return self.clock()

    def _product(self, a: _Args, name: str = "product") -> Product:
        code = a.text(name)
        product = self.catalog.products.get(code)
        if product is None:
            raise a.error(name, f"unknown product {code!r} (known: {', '.join(sorted(self.catalog.products))})")
        return product

    def _customer(self, a: _Args, name: str = "customer") -> Customer:
        ref = a.text(name)
        if ref.startswith("ref:"):
            return self._customer_by_ref(a, name, ref[4:])
        customer = self.state.customers.get(ref)
        if customer is None:
            raise a.error(name, f"unknown customer {ref}{self._elsewhere(ref)}")
        return customer

    def _customer_by_ref(self, a: _Args, name: str, external_ref: str) -> Customer:
        for customer in self.state.customers.values():
            if customer.external_ref == external_ref:
                return customer
        cell = cardnumber.cell_for_external_ref(external_ref, self.cell_count) if external_ref else self.state.cell
        where = f" (it belongs to cell {cell})" if cell != self.state.cell else ""
        raise a.error(name, f"no customer with external_ref {external_ref!r}{where}")

    def _elsewhere(self, identifier: str) -> str:
        try:
            cell = cardnumber.cell_of_id(identifier)
        except CardNumberError:
            return ""
        return f" (the number belongs to cell {cell})" if cell != self.state.cell else ""

    def _account(self, a: _Args, name: str = "account") -> Account:
        ref = a.text(name)
        if "/" in ref:
            customer_ref, _, kind = ref.rpartition("/")
            customer = self._customer(_Args(a.command, {name: customer_ref}), name)
            found = [x for x in self._accounts_of(customer.id) if x.kind == kind and x.status == "active"]
            if len(found) != 1:
                raise a.error(name, f"customer {customer.id} has {len(found)} active {kind!r} accounts, not one")
            return found[0]
        account = self.state.accounts.get(ref)
        if account is None:
            raise a.error(name, f"unknown account {ref}{self._elsewhere(ref)}")
        return account

    def _accounts_of(self, customer_id: str) -> list[Account]:
        return sorted((x for x in self.state.accounts.values() if x.customer_id == customer_id), key=lambda x: x.id)

    def _card(self, a: _Args, name: str = "card") -> tuple[Card, str | None]:
        """The card and, when it was named by its PAN, the PAN."""
        ref = a.text(name)
        if cardnumber.is_pan(ref):
            card = self.state.cards_by_hash.get(self.pan_hash(ref))
            if card is None:
                cell = cardnumber.cell_of_pan(ref)
                where = f" (its number says cell {cell})" if cell != self.state.cell else ""
                raise a.error(name, f"unknown card {mask_pan(ref)}{where}")
            return card, ref
        if ref.isdigit():
            raise a.error(name, "not a valid PAN (Luhn check failed) nor a card id")
        found = self.state.cards.get(ref)
        if found is None:
            raise a.error(name, f"unknown card {ref}{self._elsewhere(ref)}")
        return found, None

    def _line(self, a: _Args) -> CreditLine:
        if a.has("line") == a.has("customer"):
            raise CommandError(f"{a.command}: give exactly one of line or customer")
        if a.has("line"):
            ref = a.text("line")
            line = self.state.credit_lines.get(ref)
            if line is None:
                raise a.error("line", f"unknown credit line {ref}{self._elsewhere(ref)}")
            return line
        customer = self._customer(a)
        found = self._line_of(customer.id)
        if found is None:
            raise a.error("customer", f"customer {customer.id} has no credit line")
        return found

    def _line_of(self, customer_id: str) -> CreditLine | None:
        return next((x for x in self.state.credit_lines.values() if x.customer_id == customer_id), None)

    def _pan_of(self, card: Card, given: str | None, a: _Args) -> str:
        if given is not None:
            return given
        if self.unseal is None:
            raise a.error("card", "name the card by its PAN for this command (this cell cannot unseal PANs)")
        return self.unseal(card.pan_sealed).decode("ascii")

    # ------------------------------------------------------------------------------------ views

    def masked(self, card: Card) -> str:
        """First six and last four digits of the card's PAN, from the stored BIN and last four."""
        product = self.catalog.products.get(card.product)
        length = product.pan_length if product is not None else 16
        return card.bin + "*" * (length - 10) + card.last4

    def _customer_view(self, customer: Customer) -> dict[str, Any]:
        line = self._line_of(customer.id)
        cards = sorted((c for c in self.state.cards.values() if c.customer_id == customer.id), key=lambda c: c.id)
        return {
            "customer": customer.id, "cell": customer.cell, "name": customer.name,
            "external_ref": customer.external_ref, "status": customer.status, "created_at": _iso(customer.created_at),
            "accounts": [self._account_view(x) for x in self._accounts_of(customer.id)],
            "cards": [{"card": c.id, "masked_pan": self.masked(c), "status": c.status.value, "product": c.product}
                      for c in cards],
            "credit_line": line.id if line is not None else None,
        }

    def _account_view(self, account: Account) -> dict[str, Any]:
        line = self.state.credit_lines.get(account.credit_line_id or "")
        return {
            "account": account.id, "customer": account.customer_id, "kind": account.kind,
            "product": account.product, "currency": account.currency, "ledger_balance": account.ledger_balance,
            "held": account.held,
            "available": line.open_to_buy if line is not None else account.available + self._overdraft(account),
            "status": account.status, "credit_line": account.credit_line_id, "pricing": dict(account.pricing),
            "opened_at": _iso(account.opened_at),
        }

    def _card_view(self, card: Card) -> dict[str, Any]:
        product = self.catalog.products.get(card.product)
        return {
            "card": card.id, "masked_pan": self.masked(card), "customer": card.customer_id, "product": card.product,
            # The currency of the card's limits: they are set and checked in the product's (processors.booking).
            "currency": product.currency if product is not None else None,
            "account": card.account_id, "accounts": dict(card.accounts), "status": card.status.value,
            "status_reason": card.status_reason, "expiry": card.expiry, "psn": card.psn,
            "service_code": card.service_code, "pin_set": bool(card.pvv), "pin_tries": card.pin_tries,
            "limits": {k: dict(v) for k, v in card.limits.items()}, "replaces": card.replaces,
            "issued_at": _iso(card.issued_at),
        }

    def _line_view(self, line: CreditLine) -> dict[str, Any]:
        plans = sorted((p for p in self.state.plans.values() if p.credit_line_id == line.id), key=lambda p: p.id)
        return {
            "line": line.id, "customer": line.customer_id, "currency": line.currency, "limit": line.limit,
            "cash_limit": line.cash_limit, "owed": line.owed, "cash_owed": line.cash_owed, "held": line.held,
            "cash_held": line.cash_held, "open_to_buy": line.open_to_buy,
            "cash_open_to_buy": line.cash_open_to_buy, "status": line.status,
            "plans": [_plan_view(p) for p in plans],
        }

    def _overdraft(self, account: Account) -> int:
        product = self.catalog.products.get(account.product)
        if product is None or account.kind not in DEBIT_KINDS:
            return 0
        return pricing.get_int("overdraft", product, account, default=0)

    # ------------------------------------------------------------------------------------ customers

    @_command("customer.open")
    async def _customer_open(self, a: _Args, effects: Effects) -> dict[str, Any]:
        name = a.text("name")
        external_ref = a.text("external_ref")
        a.done()
        cell = cardnumber.cell_for_external_ref(external_ref, self.cell_count)
        if cell != self.state.cell:
            raise a.error("external_ref", f"belongs to cell {cell} (crc32 % {self.cell_count}), not this cell "
                          f"{self.state.cell}")
        for other in self.state.customers.values():
            if other.external_ref == external_ref:
                raise a.error("external_ref", f"already customer {other.id}")
        seq = self.state.next_value("customer")
        customer = Customer(cardnumber.make_id(self.state.cell, seq.value), self.state.cell, name, external_ref,
                            created_at=self._now())
        self.state.put(customer)
        effects.add(seq, customer)
        return self._customer_view(customer)

    @_command("customer.show")
    async def _customer_show(self, a: _Args, effects: Effects) -> dict[str, Any]:
        customer = self._customer(a)
        a.done()
        return self._customer_view(customer)

    @_command("customer.close")
    async def _customer_close(self, a: _Args, effects: Effects) -> dict[str, Any]:
        customer = self._customer(a)
        a.done()
        if customer.status == "closed":
            raise a.error("customer", f"customer {customer.id} is already closed")
        problems = []
        open_accounts = [f"{x.id} ({x.kind})" for x in self._accounts_of(customer.id) if x.status != "closed"]
        if open_accounts:
            problems.append(f"open account(s) {', '.join(open_accounts)}: close them first")
        active = sorted(c.id for c in self.state.cards.values()
                        if c.customer_id == customer.id and c.status == CardStatus.ACTIVE)
        if active:
            problems.append(f"active card(s) {', '.join(active)}: block them first")
        line = self._line_of(customer.id)
        # With every card account closed at a zero balance the line owes nothing; a reversal that reached a
        # closed account since would show here, and the money must be settled before the line closes.
        if line is not None and (line.owed or line.held):
            problems.append(f"credit line {line.id} has {line.owed} owed and {line.held} held {line.currency}")
        if problems:
            raise a.error("customer", f"customer {customer.id} cannot be closed: {'; '.join(problems)}")
        customer.status = "closed"
        effects.add(customer)
        if line is not None and line.status != "closed":
            line.status = "closed"
            effects.add(line)
        return self._customer_view(customer)

    # ------------------------------------------------------------------------------------ accounts

    @_command("account.open")
    async def _account_open(self, a: _Args, effects: Effects) -> dict[str, Any]:
        customer = self._customer(a)
        kind = a.text("kind")
        product = self._product(a)
        currency = a.text("currency", product.currency)
        a.done()
        if customer.status != "active":
            raise a.error("customer", f"customer {customer.id} is {customer.status}")
        if kind not in ACCOUNT_KINDS:
            raise a.error("kind", f"must be one of {', '.join(ACCOUNT_KINDS)}, not {kind!r}")
        if (kind == "credit") != (product.kind is ProductKind.CREDIT):
            raise a.error("kind", f"a {kind} account cannot have the {product.kind.value} product {product.code!r}")
        if currency not in money.ISO_4217:
            raise a.error("currency", f"unknown ISO 4217 currency {currency!r}")
        line = self._line_of(customer.id) if kind == "credit" else None
        if kind == "credit":
            if currency != product.currency:
                raise a.error("currency", f"credit product {product.code!r} is in {product.currency}")
            if line is not None and line.currency != currency:
                raise a.error("currency", f"the customer's credit line {line.id} is in {line.currency}")
        # Checks done: change state.
        now = self._now()
        if kind == "credit" and line is None:
            line_seq = self.state.next_value("credit_line")
            line = CreditLine(cardnumber.make_id(self.state.cell, line_seq.value), customer.id, currency,
                              product.credit_limit, product.cash_limit)
            self.state.put(line)
            effects.add(line_seq, line)
        seq = self.state.next_value("account")
        account = Account(cardnumber.make_id(self.state.cell, seq.value), customer.id, kind, currency, product.code,
                          credit_line_id=line.id if line is not None else None, opened_at=now)
        self.state.put(account)
        effects.add(seq, account)
        return self._account_view(account)

    @_command("account.show")
    async def _account_show(self, a: _Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        a.done()
        return self._account_view(account)

    def _reference(self, a: _Args, command: str) -> str:
        reference: str = a.text("reference")
        if f"cmd:{command}:{reference}" in self.state.txns_by_dup_key:
            raise a.error("reference", f"{reference!r} was already used for a {command}")
        return reference

    def _manual_txn(self, command: str, reference: str, txn_type: TxnType, account: Account, amount: int,
                    effects: Effects) -> Txn:
        seq = self.state.next_value("txn")
        txn = Txn(
            id=f"M{self.state.cell:02d}-{seq.value}", dup_key=f"cmd:{command}:{reference}", mti="",
            processing_code="", txn_type=txn_type.value, channel="manual", card_id=None, account_id=account.id,
            amount=amount, currency=account.currency, fee=0, response_code="00", approval_code="", stan="",
            rrn="", terminal="", acquirer="", created_at=self._now(), status=TxnStatus.APPROVED,
        )
        effects.add(seq)
        return txn

    def _record(self, txn: Txn, effects: Effects) -> None:
        self.state.put(txn)
        effects.add(txn)

    @_command("account.deposit")
    async def _account_deposit(self, a: _Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        amount = a.integer("amount", low=1)
        currency = a.text("currency", account.currency)
        reference = self._reference(a, "deposit")
        a.done()
        if account.kind not in DEBIT_KINDS:
            raise a.error("account", f"account {account.id} is a {account.kind} account; deposits go to "
                          "checking or savings accounts")
        if account.status == "closed":
            raise a.error("account", f"account {account.id} is closed")
        if currency != account.currency:
            raise a.error("currency", f"account {account.id} is in {account.currency}, not {currency}")
        txn = self._manual_txn("deposit", reference, TxnType.DEPOSIT, account, amount, effects)
        posting = installments.new_posting(self.state, effects, txn.id, txn.created_at, f"cash deposit {reference}",
                                           account.currency, [(account.id, amount), (ledger.GL_CASH, -amount)])
        txn.posting_id = posting.id
        self._record(txn, effects)
        return {**self._account_view(account), "txn": txn.id, "posting": posting.id}

    @_command("account.post")
    async def _account_post(self, a: _Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        amount = a.integer("amount", low=1)
        reference = self._reference(a, "post")
        description = a.text("description", f"purchase {reference}")
        a.done()
        if account.status != "active":
            raise a.error("account", f"account {account.id} is {account.status}")
        line = self.state.credit_lines.get(account.credit_line_id or "")
        if account.kind == "credit":
            if line is None:
                raise a.error("account", f"credit account {account.id} has no credit line")
            if amount > line.open_to_buy:
                raise a.error("amount", f"{amount} exceeds the open-to-buy {line.open_to_buy}")
        elif amount > account.available + self._overdraft(account):
            raise a.error("amount", f"{amount} exceeds the available balance {account.available}")
        txn = self._manual_txn("post", reference, TxnType.PURCHASE, account, amount, effects)
        posting = installments.new_posting(self.state, effects, txn.id, txn.created_at, description,
                                           account.currency, [(account.id, -amount), (ledger.GL_SETTLEMENT, amount)])
        txn.posting_id = posting.id  # the line's owed followed the posting (installments.new_posting)
        self._record(txn, effects)
        return {**self._account_view(account), "txn": txn.id, "posting": posting.id}

    @_command("account.set_pricing")
    async def _account_set_pricing(self, a: _Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        item = a.text("item")
        if not a.has("value"):
            raise a.error("value", "is required (null removes the account's override)")
        value = a.raw("value", None)
        a.done()
        stored: Any = None
        if value is not None:
            try:
                typed = pricing.validate_item(item, value)
            except pricing.PricingError as exc:
                raise a.error("value", str(exc)) from None
            stored = typed if isinstance(typed, int) else pricing.fee_to_json(typed)
        elif item not in account.pricing:
            raise a.error("item", f"account {account.id} has no override of {item!r}")
        if stored is None:
            del account.pricing[item]
        else:
            account.pricing[item] = stored
        effects.add(account)
        return self._account_view(account)

    @_command("account.close")
    async def _account_close(self, a: _Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        a.done()
        if account.status == "closed":
            raise a.error("account", f"account {account.id} is already closed")
        problems = self._close_problems(account)
        if problems:
            raise a.error("account", f"account {account.id} cannot be closed: {'; '.join(problems)}")
        account.status = "closed"
        effects.add(account)
        return self._account_view(account)

    def _close_problems(self, account: Account) -> list[str]:
        """Why ``account`` cannot be closed now (empty: it can)."""
        problems = []
        if account.ledger_balance:
            what = ("withdraw or transfer it" if account.kind in DEBIT_KINDS else
                    "pay it" if account.ledger_balance < 0 else "refund it")
            problems.append(f"its ledger balance is {account.ledger_balance} {account.currency} ({what} first)")
        holds = [h for h in self.state.holds.values() if h.account_id == account.id]
        if holds or account.held:
            problems.append(f"{len(holds)} open hold(s) of {account.held} {account.currency} (wait for their "
                            "completion, reversal or expiry)")
        # A plan still to bill posts its installments to this account (processors.installments).
        plans = sorted(p.id for p in self.state.plans.values() if p.account_id == account.id and p.status == "active")
        if plans:
            problems.append(f"installment plan(s) {', '.join(plans)} still to be billed")
        cards = sorted(c.id for c in self.state.cards.values() if c.status == CardStatus.ACTIVE
                       and (c.account_id == account.id or account.id in c.accounts.values()))
        if cards:
            problems.append(f"active card(s) {', '.join(cards)} use it (block them first)")
        return problems

    # ------------------------------------------------------------------------------------ cards

    def _expiry(self, a: _Args, product: Product) -> str:
        today = self._now().date()
        current = f"{today.year % 100:02d}{today.month:02d}"
        if a.has("expiry"):
            expiry = a.text("expiry")
            if not _YYMM.match(expiry):
                raise a.error("expiry", "expected YYMM")
            if expiry < current:
                raise a.error("expiry", f"{expiry} is in the past")
            return str(expiry)
        end = installments.add_months(today, product.validity_months)
        return f"{end.year % 100:02d}{end.month:02d}"

    def _card_accounts(self, a: _Args, customer: Customer, product: Product) -> tuple[str, dict[str, str]]:
        """(default account, DE 3 account type -> account) for a new card of ``product``."""
        kinds = ("credit",) if product.kind is ProductKind.CREDIT else DEBIT_KINDS
        owned = [x for x in self._accounts_of(customer.id)
                 if x.kind in kinds and x.status == "active" and x.currency == product.currency]
        by_type: dict[str, str] = {}
        for account in owned:  # the oldest account of each kind (lowest number) unless one is named
            by_type.setdefault(ACCOUNT_TYPES[account.kind], account.id)
        if a.has("account"):
            chosen = self._account(a)
            if chosen.customer_id != customer.id:
                raise a.error("account", f"account {chosen.id} belongs to customer {chosen.customer_id}")
            if chosen not in owned:
                raise a.error("account", f"account {chosen.id} ({chosen.kind}, {chosen.currency}, {chosen.status}) "
                              f"cannot back a {product.kind.value} card in {product.currency}")
            by_type[ACCOUNT_TYPES[chosen.kind]] = chosen.id
            return chosen.id, by_type
        if not by_type:
            need = "credit account" if product.kind is ProductKind.CREDIT else "checking or savings account"
            raise a.error("customer", f"customer {customer.id} has no active {need} in {product.currency}; "
                          "open one first")
        default = by_type.get("20") or by_type.get("30") or by_type["10"]
        return default, by_type

    def _new_pan(self, a: _Args, product: Product, bin_: str) -> tuple[str, int | None]:
        """A free PAN for ``product`` on ``bin_``: the vanity digits asked for, or the next sequence number.
        Returns (pan, the sequence value to store or None)."""
        cell = self.state.cell
        if a.has("vanity"):
            digits = a.text("vanity")
            try:
                pan = cardnumber.vanity_pan(bin_, cell, digits, product.pan_length)
            except CardNumberError as exc:
                raise a.error("vanity", str(exc)) from None
            if self.pan_hash(pan) in self.state.cards_by_hash:
                raise a.error("vanity", f"{mask_pan(pan)} is already issued")
            return pan, None
        seq = self.state.sequences.get(f"pan:{bin_}")
        value = seq.value if seq is not None else 0
        while True:  # skip numbers taken by vanity cards
            value += 1
            try:
                pan = cardnumber.make_pan(bin_, cell, value, product.pan_length)
            except CardNumberError:
                raise CommandError(f"{a.command}: BIN {bin_} has no free card numbers left in cell {cell}") from None
            if self.pan_hash(pan) not in self.state.cards_by_hash:
                return pan, value

    def _bin(self, a: _Args, product: Product) -> str:
        bin_ = a.text("bin", product.bins[0])
        if bin_ not in product.bins:
            raise a.error("bin", f"{bin_} is not a BIN of product {product.code!r}")
        return str(bin_)

    def _store_card(self, card: Card, pan_seq: int | None, effects: Effects) -> None:
        if pan_seq is not None:
            seq = self.state.next_value(f"pan:{card.bin}")
            seq.value = pan_seq
            effects.add(seq)
        self.state.put(card)
        effects.add(card)

    def _new_card(self, pan: str, customer_id: str, product: Product, expiry: str, active: bool,
                  default: str, accounts: dict[str, str], effects: Effects) -> Card:
        seq = self.state.next_value("card")
        effects.add(seq)
        return Card(
            id=cardnumber.make_card_id(self.state.cell, seq.value), pan_hash=self.pan_hash(pan), last4=pan[-4:],
            bin=pan[:6], pan_sealed=self.seal(pan.encode("ascii")), customer_id=customer_id, product=product.code,
            account_id=default, accounts=accounts, status=CardStatus.ACTIVE if active else CardStatus.INACTIVE,
            expiry=expiry, service_code=product.service_code, issued_at=self._now(),
        )

    def _issue_plan(self, a: _Args) -> tuple[Customer, Product, str, dict[str, str], str, int | None, str, bool]:
        """Every check of ``card.issue``, changing nothing: (customer, product, default account, accounts by
        type, PAN, its sequence value, expiry, activate)."""
        customer = self._customer(a)
        product = self._product(a)
        bin_ = self._bin(a, product)
        default, accounts = self._card_accounts(a, customer, product)
        pan, pan_seq = self._new_pan(a, product, bin_)
        expiry = self._expiry(a, product)
        activate = a.flag("activate", False)
        a.done()
        if customer.status != "active":
            raise a.error("customer", f"customer {customer.id} is {customer.status}")
        return customer, product, default, accounts, pan, pan_seq, expiry, activate

    @_command("card.issue_check")
    async def _card_issue_check(self, a: _Args, effects: Effects) -> dict[str, Any]:
        rows = a.raw("rows")
        a.done()
        if not isinstance(rows, list):
            raise a.error("rows", f"expected a list, got {type(rows).__name__}")
        problems = []
        for index, row in enumerate(rows):
            try:
                self._issue_plan(_Args("card.issue", row))
            except CommandError as exc:
                problems.append({"row": index, "error": str(exc)})
        return {"rows": len(rows), "problems": problems}

    @_command("card.issue")
    async def _card_issue(self, a: _Args, effects: Effects) -> dict[str, Any]:
        customer, product, default, accounts, pan, pan_seq, expiry, activate = self._issue_plan(a)
        card = self._new_card(pan, customer.id, product, expiry, activate, default, accounts, effects)
        self._store_card(card, pan_seq, effects)
        return {**self._card_view(card), "pan": pan}

    @_command("card.show")
    async def _card_show(self, a: _Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        a.done()
        return self._card_view(card)

    def _expired(self, card: Card) -> bool:
        today = self._now().date()
        return card.expiry < f"{today.year % 100:02d}{today.month:02d}"

    def _check_not_closed(self, a: _Args, card: Card) -> None:
        """Refuse to bring back a card (activate, unblock, replace) whose customer or default account is closed:
        a closed account takes no more card transactions."""
        customer = self.state.customers.get(card.customer_id)
        if customer is not None and customer.status == "closed":
            raise a.error("card", f"card {card.id}: customer {customer.id} is closed")
        account = self.state.accounts.get(card.account_id)
        if account is not None and account.status == "closed":
            raise a.error("card", f"card {card.id}: its account {account.id} is closed")

    def _open_links(self, card: Card) -> dict[str, str]:
        """The card's DE 3 account-type links without the accounts closed since it was issued."""
        accounts = self.state.accounts
        return {kind: x for kind, x in card.accounts.items()
                if x not in accounts or accounts[x].status != "closed"}

    def _update(self, card: Card, effects: Effects, **changes: Any) -> dict[str, Any]:
        for name, value in changes.items():
            setattr(card, name, value)
        effects.add(card)
        return self._card_view(card)

    @_command("card.activate")
    async def _card_activate(self, a: _Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        a.done()
        if card.status != CardStatus.INACTIVE:
            raise a.error("card", f"card {card.id} is {card.status.value}, only an inactive card is activated")
        if self._expired(card):
            raise a.error("card", f"card {card.id} expired ({card.expiry})")
        self._check_not_closed(a, card)
        return self._update(card, effects, status=CardStatus.ACTIVE, status_reason="")

    @_command("card.block")
    async def _card_block(self, a: _Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        status = a.text("status")
        reason = a.text("reason")
        a.done()
        if status not in [s.value for s in BLOCK_STATUSES]:
            raise a.error("status", f"must be one of {', '.join(s.value for s in BLOCK_STATUSES)}")
        if card.status in (*_DEAD, CardStatus.LOST, CardStatus.STOLEN):
            raise a.error("card", f"card {card.id} is already {card.status.value}")
        # Remember what unblocking returns to (a card blocked before activation stays inactive); a blocked
        # card reported lost or stolen keeps the status from before the first block.
        before = card.status_before_block if card.status == CardStatus.BLOCKED else card.status.value
        return self._update(card, effects, status=CardStatus(status), status_reason=reason,
                            status_before_block=before)

    @_command("card.unblock")
    async def _card_unblock(self, a: _Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        a.done()
        if card.status != CardStatus.BLOCKED:
            hint = " (lost and stolen cards are replaced)" if card.status in BLOCK_STATUSES else ""
            raise a.error("card", f"card {card.id} is {card.status.value}, not blocked{hint}")
        self._check_not_closed(a, card)
        # Rows blocked before the field existed have no recorded status: they were active (the old rule).
        restored = CardStatus(card.status_before_block) if card.status_before_block else CardStatus.ACTIVE
        return self._update(card, effects, status=restored, status_reason="", status_before_block="")

    @_command("card.replace")
    async def _card_replace(self, a: _Args, effects: Effects) -> dict[str, Any]:
        old, given = self._card(a)
        new_number = a.flag("new_number")
        reason = a.text("reason")
        activate = a.flag("activate", False)
        product = self.catalog.products.get(old.product)
        if product is None:
            raise a.error("card", f"card {old.id} has product {old.product!r}, which is not in the catalogue")
        expiry = self._expiry(a, product)
        a.done()
        if old.status == CardStatus.REPLACED:
            raise a.error("card", f"card {old.id} was already replaced")
        self._check_not_closed(a, old)
        if new_number:
            pan, pan_seq = self._new_pan(a, product, old.bin if old.bin in product.bins else product.bins[0])
        else:
            if old.status in (CardStatus.LOST, CardStatus.STOLEN):
                raise a.error("new_number", f"card {old.id} is {old.status.value}: it is replaced with a new number "
                              "(the missing card's stripe and chip data must stop working)")
            pan, pan_seq = self._pan_of(old, given, a), None
            # The same number gets a new expiry, validity counted from today, and never the old card's: the
            # engine declines a track 2 or DE 14 whose expiry is not the card's (54), so the old plastic fails.
            if expiry == old.expiry:
                if a.has("expiry"):
                    raise a.error("expiry", f"{expiry} is the replaced card's expiry; a same-number replacement "
                                  "needs another one")
                later = installments.add_months(date(2000 + int(expiry[:2]), int(expiry[2:]), 1), 1)
                expiry = f"{later.year % 100:02d}{later.month:02d}"
        # Checks done: change state.
        new = self._new_card(pan, old.customer_id, product, expiry, activate, old.account_id, self._open_links(old),
                             effects)
        new.replaces = old.id
        new.limits = {channel: dict(values) for channel, values in old.limits.items()}
        if not new_number:
            # Same PAN: the PVV (a function of PAN and PIN) stays valid; EMV tells the cards apart by the PAN
            # sequence number (EMV 4.3 book 3, tag 5F34).
            new.pan_sealed, new.pvki, new.pvv = old.pan_sealed, old.pvki, old.pvv
            new.psn = f"{(int(old.psn or '0') + 1) % 100:02d}"
        old.status, old.status_reason = CardStatus.REPLACED, reason
        effects.add(old)
        self._store_card(new, pan_seq, effects)
        return {**self._card_view(new), "pan": pan, "replaced": old.id}

    @_command("card.set_pin")
    async def _card_set_pin(self, a: _Args, effects: Effects) -> dict[str, Any]:
        card, given = self._card(a)
        pin_block = a.text("pin_block")
        a.done()
        if not _HEX16.match(pin_block):
            raise a.error("pin_block", "expected 16 hex digits (an ISO 9564 format 0 PIN block under the ZPK)")
        self._check_pin_card(a, card)
        product = self.catalog.products.get(card.product)
        keys = self.catalog.keys.get(product.keys) if product is not None else None
        if keys is None:
            raise a.error("card", f"card {card.id}: no key set for product {card.product!r}")
        if self.hsm is None:
            raise CommandError(f"{a.command}: this cell has no HSM configured")
        pan = self._pan_of(card, given, a)
        try:
            pvv = await self.hsm.generate_pvv(ZPK, keys.zpk, keys.pvk, pin_block.upper(), ISO_FORMAT_0, pan,
                                              card.pvki)
        except HsmUnavailableError as exc:
            raise CommandError(f"{a.command}: the HSM is unreachable: {exc}") from None
        except HsmError as exc:  # the HSM's text carries codes and field names only, never the PIN or PAN
            raise CommandError(f"{a.command}: the HSM refused the PIN block: {exc}") from None
        # The engine may have run during the HSM call: look again before changing anything.
        card = self.state.cards.get(card.id, card)
        self._check_pin_card(a, card)
        return self._update(card, effects, pvv=pvv, pin_tries=0)

    def _check_pin_card(self, a: _Args, card: Card) -> None:
        if card.status in (*_DEAD, CardStatus.LOST, CardStatus.STOLEN):
            raise a.error("card", f"card {card.id} is {card.status.value}")

    @_command("card.reset_pin")
    async def _card_reset_pin(self, a: _Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        a.done()
        self._check_pin_card(a, card)
        return self._update(card, effects, pvv="", pin_tries=0)

    @_command("card.set_limits")
    async def _card_set_limits(self, a: _Args, effects: Effects) -> dict[str, Any]:
        card, _ = self._card(a)
        channel = a.text("channel")
        changes: dict[str, int | None] = {}
        for name in ("per_txn", "daily_amount", "daily_count"):
            if a.has(name):
                changes[name] = a.integer(name, None)
        a.done()
        channels = [c.value for c in Channel]
        if channel not in channels:
            raise a.error("channel", f"must be one of {', '.join(channels)}")
        if not changes:
            raise CommandError(f"{a.command}: give at least one of per_txn, daily_amount, daily_count "
                               "(null removes a card override)")
        limits = {k: dict(v) for k, v in card.limits.items()}
        own = limits.setdefault(channel, {})
        for name, value in changes.items():
            if value is None:
                own.pop(name, None)
            else:
                own[name] = value
        if not own:
            del limits[channel]
        return self._update(card, effects, limits=limits)

    # ------------------------------------------------------------------------------------ credit

    @_command("credit.set_limit")
    async def _credit_set_limit(self, a: _Args, effects: Effects) -> dict[str, Any]:
        line = self._line(a)
        limit = a.integer("limit", line.limit)
        cash_limit = a.integer("cash_limit", line.cash_limit)
        a.done()
        if limit == line.limit and cash_limit == line.cash_limit:
            raise CommandError(f"{a.command}: give a new limit or cash_limit")
        used = max(line.owed, 0) + line.held  # a line in credit (owed < 0) uses nothing (processors.credit)
        if limit < used:
            raise a.error("limit", f"{limit} is below what is owed and held ({used})")
        if cash_limit > limit:
            raise a.error("cash_limit", f"{cash_limit} is above the limit {limit}")
        if cash_limit < line.cash_owed + line.cash_held:
            raise a.error("cash_limit", f"{cash_limit} is below the cash owed and held "
                          f"({line.cash_owed + line.cash_held})")
        line.limit, line.cash_limit = limit, cash_limit
        effects.add(line)
        return self._line_view(line)

    @_command("credit.show")
    async def _credit_show(self, a: _Args, effects: Effects) -> dict[str, Any]:
        line = self._line(a)
        a.done()
        return self._line_view(line)

    @_command("credit.payment")
    async def _credit_payment(self, a: _Args, effects: Effects) -> dict[str, Any]:
        """The cardholder pays money into a card account: the account's balance rises, and the line's ``owed``
        falls through the one rule of :func:`processors.credit.line_posted` (``installments.new_posting``).

        A payment above what is owed is accepted and leaves the line in credit (``owed`` negative; no extra
        open-to-buy, :mod:`processors.credit`). ``cash_owed`` falls by the part of the payment the product's
        ``payment_allocation`` gives to cash advances (:func:`processors.credit.payment_cash_part`; cash first
        by default), which frees the cash-advance sub-limit."""
        account = self._account(a)
        amount = a.integer("amount", low=1)
        reference = self._reference(a, "payment")
        a.done()
        if account.kind != "credit":
            raise a.error("account", f"account {account.id} is a {account.kind} account; payments go to credit "
                          "card accounts (deposits to checking or savings)")
        if account.status == "closed":
            raise a.error("account", f"account {account.id} is closed")
        line = self.state.credit_lines.get(account.credit_line_id or "")
        if line is None:
            raise a.error("account", f"credit account {account.id} has no credit line")
        rule = self.catalog.products[account.product].payment_allocation if account.product in \
            self.catalog.products else credit.PAYMENT_ALLOCATIONS[0]
        cash_before, cash_part = line.cash_owed, credit.payment_cash_part(line, amount, rule)
        # Checks done: change state. A frozen account or suspended line still takes payments.
        txn = self._manual_txn("payment", reference, TxnType.DEPOSIT, account, amount, effects)
        posting = installments.new_posting(self.state, effects, txn.id, txn.created_at, f"payment {reference}",
                                           account.currency, [(account.id, amount), (GL_PAYMENTS, -amount)])
        credit.payment_applied(line, cash_before, cash_part)  # the line is in effects already (new_posting)
        txn.posting_id = posting.id
        txn.cash_part = cash_part  # kept with every payment-like Txn (a reversal owes that cash again)
        self._record(txn, effects)
        return {**self._account_view(account), "txn": txn.id, "posting": posting.id, "line": line.id,
                "owed": line.owed, "cash_owed": line.cash_owed, "open_to_buy": line.open_to_buy,
                "cash_open_to_buy": line.cash_open_to_buy}

    @_command("credit.installments")
    async def _credit_installments(self, a: _Args, effects: Effects) -> dict[str, Any]:
        account = self._account(a)
        txn_id: str = a.text("txn")
        if txn_id.startswith("ref:"):  # a purchase posted by account.post, by its reference
            posted = self.state.txns_by_dup_key.get(f"cmd:post:{txn_id[4:]}")
            if posted is None:
                raise a.error("txn", f"no purchase posted with reference {txn_id[4:]!r}")
            txn_id = posted.id
        count = a.integer("count", low=2, high=999)
        rate_bp = a.integer("rate_bp", None, high=installments.MAX_RATE_BP)
        a.done()
        try:
            q = installments.quote(self.state, self.catalog, account.id, txn_id, count, rate_bp)
        except installments.InstallmentError as exc:
            raise CommandError(f"{a.command}: {exc}") from None
        plan = installments.convert(self.state, q, self._now(), effects)
        return {**_plan_view(plan), "open_to_buy": q.line.open_to_buy}

    @_command("credit.bill_installments")
    async def _credit_bill(self, a: _Args, effects: Effects) -> dict[str, Any]:
        text = a.text("day", None)
        a.done()
        try:
            day = date.fromisoformat(text) if text is not None else self._now().date()
        except ValueError:
            raise a.error("day", "expected a date YYYY-MM-DD") from None
        try:
            installments.due(self.state, day)  # validates every plan before the first posting
        except installments.InstallmentError as exc:
            raise CommandError(f"{a.command}: {exc}") from None
        billed = installments.bill_due(self.state, day, self._now(), effects)
        return {"day": day.isoformat(), "billed": billed, "count": len(billed)}

    # ------------------------------------------------------------------------------------ exceptions

    @_command("exception.list")
    async def _exception_list(self, a: _Args, effects: Effects) -> dict[str, Any]:
        status = a.text("status", "open")
        a.done()
        if status not in EXCEPTION_STATUSES:
            raise a.error("status", f"must be one of {', '.join(EXCEPTION_STATUSES)}, not {status!r}")
        items = sorted((x for x in self.state.exceptions.values() if status in ("all", x.status)),
                       key=lambda x: (x.created_at, _number(x.id)))
        return {"cell": self.state.cell, "status": status, "count": len(items),
                "exceptions": [_exception_view(x) for x in items]}

    @_command("exception.resolve")
    async def _exception_resolve(self, a: _Args, effects: Effects) -> dict[str, Any]:
        ref = a.text("exception")
        note = a.text("note")
        a.done()
        item = self.state.exceptions.get(ref)
        if item is None:
            raise a.error("exception", f"unknown exception {ref}{self._elsewhere(ref)}")
        if item.status == "resolved":
            raise a.error("exception", f"exception {item.id} was already resolved ({item.resolution})")
        item.status, item.resolved_at, item.resolution = "resolved", self._now(), note
        effects.add(item)
        return _exception_view(item)

    # ------------------------------------------------------------------------------------ cell

    @_command("cell.stats")
    async def _cell_stats(self, a: _Args, effects: Effects) -> dict[str, Any]:
        a.done()
        s = self.state
        cards: dict[str, int] = {}
        for card in s.cards.values():
            cards[card.status.value] = cards.get(card.status.value, 0) + 1
        deposits: dict[str, int] = {}
        for account in s.accounts.values():
            if account.kind in DEBIT_KINDS:
                deposits[account.currency] = deposits.get(account.currency, 0) + account.ledger_balance
        owed: dict[str, int] = {}
        for line in s.credit_lines.values():
            owed[line.currency] = owed.get(line.currency, 0) + line.owed
        return {
            "cell": s.cell, "cell_count": self.cell_count, "customers": len(s.customers),
            "accounts": len(s.accounts), "credit_lines": len(s.credit_lines), "cards": cards,
            "open_holds": len(s.holds), "txns": len(s.txns), "early_reversals": len(s.early_reversals),
            "active_plans": sum(1 for p in s.plans.values() if p.status == "active"),
            "open_exceptions": sum(1 for x in s.exceptions.values() if x.status == "open"),
            "deposits": deposits, "credit_owed": owed,
        }


def _plan_view(plan: InstallmentPlan) -> dict[str, Any]:
    schedule = [{"installment": k, "due": installments.due_date(plan, k).isoformat(),
                 "amount": installments.installment_amount(plan, k), "billed": k <= plan.billed}
                for k in range(1, plan.count + 1)] if plan.created_at is not None else []
    return {
        "plan": plan.id, "account": plan.account_id, "line": plan.credit_line_id, "txn": plan.source_txn_id,
        "currency": plan.currency, "principal": plan.principal, "fee": plan.fee, "rate_bp": plan.rate_bp,
        "count": plan.count, "billed": plan.billed, "status": plan.status, "schedule": schedule,
    }


EXCEPTION_STATUSES: Final = ("open", "resolved", "all")


def _exception_view(item: ExceptionItem) -> dict[str, Any]:
    return {
        "exception": item.id, "kind": item.kind.value, "status": item.status, "txn": item.txn_id,
        "card": item.card_id, "account": item.account_id, "mti": item.mti, "stan": item.stan, "rrn": item.rrn,
        "amount": item.amount, "currency": item.currency, "detail": item.detail, "created_at": _iso(item.created_at),
        "resolved_at": _iso(item.resolved_at), "resolution": item.resolution,
    }


def _number(identifier: str) -> int:
    """The sequence number at the end of an id like ``E01-12`` (so E01-10 sorts after E01-9)."""
    tail = identifier.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
