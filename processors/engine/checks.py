"""The HSM checks of a request (the only awaits of a decision): PIN (VISA PVV), CVV on track 2 or iCVV, the ARQC
of chip data and the ARPC of its answer; then, inside the decision, what their results mean (96, 75, 55, 05) and
whether a verified cryptogram is fresh and for this very request."""

from __future__ import annotations

import re

from processors import money, security
from processors.catalog import Product
from processors.emvtlv import TlvError
from processors.engine.context import RC, Checks, Ctx, Declined, Parts, text
from processors.fields import TXN_TYPES, dup_key, is_chip
from processors.model import Card, CardStatus, TxnType
from switch.model.message import Message

HEX16 = re.compile(r"[0-9A-Fa-f]{16}")  # a PIN block (ISO 9564, 8 bytes) as hex text


def new_pin_block(request: Message) -> str | None:
    """DE 125 of a PIN change request (0200, DE 3 92xxxx or 70xxxx): the new PIN block, 16 hex characters under
    the cell's ZPK (ISO 9564 format 0, the switch translated it like DE 52); None when the request is no PIN change
    or DE 125 is not 16 hex characters (:func:`processors.engine.pinchange.check_request` answers that 30)."""
    if request.mti[1:3] != "20" or TXN_TYPES.get(text(request, 3)[:2]) != TxnType.PIN_CHANGE:
        return None
    block = text(request, 125)
    return block if HEX16.fullmatch(block) else None


def card_needing_checks(eng: Parts, request: Message, hashed: str) -> Card | None:
    """The card when the request carries PIN, track 2 or chip data and would otherwise be decided by
    them (a duplicate or a card that is not active is answered without asking the HSM)."""
    fields = request.fields
    if 52 not in fields and 35 not in fields and 55 not in fields:
        return None
    if dup_key(request) in eng.state.txns_by_dup_key:
        return None
    card = eng.state.cards_by_hash.get(hashed)
    if card is None or card.status != CardStatus.ACTIVE:
        return None
    return card


async def run_checks(eng: Parts, request: Message, card: Card, pan: str) -> Checks:
    """Ask the HSM what the request carries: the PIN (DE 52, while tries are left), the CVV or iCVV (track 2),
    the ARQC (DE 55). An HSM that cannot answer is noted (the decision is then 96)."""
    checks = Checks()
    product = eng.catalog.products.get(card.product)
    keys = eng.catalog.keys.get(product.keys) if product is not None else None
    if product is None or keys is None:
        checks.unavailable = "no key set for the card's product"
        return checks
    if eng.hsm is None:
        checks.unavailable = "no HSM configured"
        return checks
    hsm = eng.hsm
    try:
        pin_block = request.fields.get(52)
        if isinstance(pin_block, bytes) and card.pvv and card.pin_tries < eng.bank.pin_tries:
            checks.pin = len(pin_block) == 8 and await security.verify_pin(
                hsm, keys, pan, pin_block, card.pvki, card.pvv)
            new_pin = new_pin_block(request)
            if checks.pin and new_pin is not None:
                # A PIN change whose current PIN verified: the new PIN's PVV (no HSM call for a wrong current PIN).
                checks.new_pvv = await security.new_pin_pvv(hsm, keys, pan, new_pin, card.pvki)
                checks.new_pin_unreadable = checks.new_pvv is None
        track_text = text(request, 35)
        if track_text:
            track = security.parse_track2(track_text)
            checks.cvv = track is not None and await security.verify_track_cvv(
                hsm, keys, pan, track, chip=is_chip(request))
        icc = request.fields.get(55)
        if isinstance(icc, bytes):
            try:
                arqc = security.arqc_request(product.cvn, icc)
            except (security.IccDataError, TlvError):
                checks.arqc = False
            else:
                checks.arqc = await security.verify_arqc(hsm, keys, product.cvn, pan, card.psn, arqc)
                checks.arqc_request = arqc
    except security.HsmUnavailable as exc:
        checks.unavailable = exc.reason
    return checks


async def add_arpc(
    eng: Parts, response: Message, product: Product, psn: str, pan: str, arqc: security.ArqcRequest,
) -> None:
    """DE 55 tag 91 with the ARPC for the decided response code (:attr:`Decision.finish`). The decision is
    already made and committed independently: if the HSM fails here the answer goes without DE 55 (the card
    then sees no issuer authentication)."""
    keys = eng.catalog.keys.get(product.keys)
    if eng.hsm is None or keys is None:
        return
    code = text(response, 39)
    try:
        response[55] = await security.arpc_field(eng.hsm, keys, product.cvn, pan, psn, arqc, code)
    except security.HsmUnavailable:
        return


def verify(eng: Parts, ctx: Ctx, checks: Checks) -> None:
    """96 (HSM unavailable), 75 / 55 (PIN), 05 (CVV, iCVV, ARQC); keeps the PIN try counter."""
    if checks.unavailable:
        raise Declined(RC.SYSTEM_MALFUNCTION, checks.unavailable)
    card = ctx.card
    assert card is not None
    if 52 in ctx.request.fields:
        limit = eng.bank.pin_tries
        if card.pin_tries >= limit:
            raise Declined(RC.PIN_TRIES_EXCEEDED, "PIN tries exceeded")
        if not card.pvv:
            raise Declined(RC.INCORRECT_PIN, "no PIN set for the card")
        if checks.pin is not True:
            card.pin_tries += 1
            ctx.changes.add(card)
            if card.pin_tries >= limit:
                raise Declined(RC.PIN_TRIES_EXCEEDED, "wrong PIN, tries now exhausted")
            raise Declined(RC.INCORRECT_PIN, "wrong PIN")
        if card.pin_tries:
            card.pin_tries = 0
            ctx.changes.add(card)
    if checks.cvv is False:
        raise Declined(RC.DO_NOT_HONOUR, "iCVV mismatch" if is_chip(ctx.request) else "CVV mismatch")
    if checks.arqc is False:
        raise Declined(RC.DO_NOT_HONOUR, "ARQC did not verify")
    if checks.arqc and checks.arqc_request is not None:
        arqc_binding(eng, ctx, card, checks.arqc_request)


def arqc_binding(eng: Parts, ctx: Ctx, card: Card, arqc: security.ArqcRequest) -> None:
    """05 unless the verified cryptogram is fresh and is for this request: the ATC must be above the last
    one seen (EMV Book 2 §8.1: the ATC makes each cryptogram unique; a replayed one repeats it), and the
    amount (9F02) and currency (5F2A) the card signed must be DE 4 and DE 49 (else an ARQC for 1.00
    would approve any amount). The ATC is recorded as soon as the cryptogram verified."""
    atc = arqc.atc_value
    if atc <= card.last_atc:
        raise Declined(RC.DO_NOT_HONOUR, "ATC replay")
    card.last_atc = atc
    ctx.changes.add(card)
    request = ctx.request
    amount = money.parse_amount(text(request, 4))
    if amount is None or arqc.amount != amount:
        raise Declined(RC.DO_NOT_HONOUR, "ARQC amount (9F02) is not DE 4")
    currency = text(request, 49)
    if currency and money.alpha(arqc.currency) != money.alpha(currency):
        raise Declined(RC.DO_NOT_HONOUR, "ARQC currency (5F2A) is not DE 49")
