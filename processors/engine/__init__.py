"""The cell's authorization engine: one request in, one :class:`Decision` (answer + rows changed) out.

Sans-I/O except for the HSM: :meth:`CellEngine.handle` first runs the PIN/CVV/ARQC checks the request needs
(awaits), then decides **synchronously** - no await between reading the state and changing it, so concurrent
requests on one card or account never interleave inside a decision - and returns the answer with the
:class:`~processors.model.Effects` the host must commit before sending it. There is no await between the
state change and the return either: the effects are snapshots taken at the decision, and the host submits
them at once, so the writer receives the decisions' snapshots in the order the state changed (an older
snapshot can never overwrite a newer one). What still needs the HSM after the decision - the ARPC of a chip
answer - is :attr:`Decision.finish`, which the host awaits after submitting the effects; it only fills DE 55
of the response and reads no state.

Messages (ISO 8583:1987, canonical form of :mod:`switch.model.message`):

====================  ==============================================================================
0100                  authorization / pre-authorization: purchases and withdrawals place a hold
0120                  authorization advice (stand-in): applied without checks, 0130 "00"
0200                  financial request: posted at once. DE 3 00 purchase, 01 withdrawal, 20 refund, 21 deposit,
                      30/31 balance inquiry, 38 mini statement (DE 48 receipt lines,
                      :mod:`~processors.engine.statement`), 40 transfer, 92/70 PIN change (DE 125 the new PIN
                      block, :mod:`~processors.engine.pinchange`)
0220                  completion of a 0100 named by DE 90 (on the 0100's account); a cash deposit's recount
                      (DE 3 21, DE 90 naming the 0200 deposit, an identity of its own: DE 4 credited to the
                      deposit's account); else a forced-post advice; applied, 0230 "00"
0400/0420 (+ repeat)  reversal, full or partial (DE 95); idempotent; unknown original "25", and remembered
                      (:mod:`processors.early`): a later original is declined "05", a later advice is
                      applied and reversed at once (a partial one: reduced to DE 95's amount). A PIN change's
                      reversal restores the PIN before it
0620 (+ repeat)       administrative advice: DE 60 CAPTURED, a card retained by an ATM (0630 "00"; the card
                      answers "04" until unblocked, :mod:`~processors.engine.admin`)
0800                  network management: 0810 "00"
====================  ==============================================================================

A repeat (xx01, xx21) of a request already decided gets the first answer again; any other request with the
same duplicate key (:func:`processors.fields.dup_key`) gets 94. Reversals are always answered idempotently.

**Advices are never declined for a business reason.** An advice records something that already happened at the
terminal (the switch stood in, or the acquirer completed a pre-authorization), and the switch's store-and-forward
takes any answer but 91/96 as delivered: an advice declined is a sale never charged. So the cell answers 00 and
posts it, and where a rule of a request would have refused it, records an :class:`~processors.model.ExceptionItem`
for the back office (``bulkhead exceptions list``):

- a completion above its authorization + ``completion_tolerance_bp``: posted as sent;
- an amount in a foreign currency without a cardholder billing amount (DE 6 / DE 51 in the account's currency;
  with them it is posted from DE 6, whatever DE 49 is, even a code outside the cell's table): converted by the
  cell's own rate (``[rates]`` in ``products.toml``, which takes any current ISO 4217 code; the same conversion
  then applies to its DE 28). With no rate for that pair of currencies (or a DE 49 that is no current ISO 4217
  code with a minor unit) the cell cannot know the amount to charge, and guessing one (1:1, or a stale rate) would
  charge the cardholder a wrong sum that someone must then find: the advice is answered **96**, which the
  switch's store-and-forward does not count as delivered. It tries again (0121/0221) with backoff, and after
  ``[saf] max_attempts`` tries (10 by default: minutes, long before ``expire_after_s``) holds it as an exception
  (``bulkhead saf show``): never dropped, and never sent again by itself. Once the rate is added and the cell
  restarted, an operator sends it again with ``bulkhead saf resend ID``. The cell logs why at each try. An advice
  without an amount (a balance inquiry's DE 4 of zero) needs no rate;
- an account type (DE 3, DE 102/103) the card does not have: posted to the card's default account (a transfer
  is not: it moves money between the cardholder's own accounts, nothing left the bank, and it stays 12);
- an unusable DE 28: the account's or product's fee applies.

Format errors - an unknown processing code, no DE 4 (or zero, but for an inquiry) or DE 49, an unknown card - are
still declined (12, 13, 14): there is nothing the cell could post; those advices are recorded as exceptions too.

A completion is posted to its pre-authorization's account, whatever account its own DE 3 (or DE 102) names: the
pre-authorization's hold is what it closes, so its amount (DE 6 / DE 51, the cell's rate) is resolved in that
account's currency, compared with the authorization in it, and any exception names that account.

The package, one module per concern: :mod:`~processors.engine.core` (:class:`CellEngine`, the entry points),
:mod:`~processors.engine.context` (the decision, its context, the engine's parts), ``rules`` (what a request is
checked against), ``checks`` (the HSM), ``approval`` (holds, postings, usage), ``advices``, ``reversals``, and
``steps`` (what they share), and the ATM's own: ``pinchange``, ``statement``, ``admin``.
"""

from processors.engine.context import (
    ACCOUNT_TYPES,
    KIND_TYPES,
    TXN_SEQUENCE,
    Checks,
    Ctx,
    Decision,
    Declined,
    Parts,
    utcnow,
)
from processors.engine.core import CellEngine

__all__ = [
    "ACCOUNT_TYPES",
    "KIND_TYPES",
    "TXN_SEQUENCE",
    "CellEngine",
    "Checks",
    "Ctx",
    "Decision",
    "Declined",
    "Parts",
    "utcnow",
]
