"""Mastercard (Banknet / CIS over MIP) behind the network contract: what it does differently from ISO 8583:1987.

- Framing: the 2-byte binary length of MIP, no header (:mod:`schemes.mastercard.link`). Mastercard has no reject
  form in the public sources: a malformed request is answered 30 (ISO 8583:1987's refusal), anything else is only
  logged.
- Body: EBCDIC throughout (:mod:`schemes.mastercard.spec`), on the compiled codec; the code page is a link option
  (cp500, cp037) and a cp037 link's framer translates.
- Canonical form: ISO 8583:1987 numbering and values, text as it decodes: DE 48 is the TCC and sub-elements as text
  (:mod:`schemes.mastercard.fields` parses them); DE 52, 55, 64, 125 and 128 are bytes. DE 7 is UTC, which is what
  the switch's own transmission times are (switch.model.message.transmission_time).
- Requests to Mastercard get what Mastercard requires and another network's request may lack: DE 48 with a TCC
  (``Z`` for an ATM's MCC 6011, else ``R``) and DE 61 POS data built from DE 18, 22 and 25; DE 95 in Mastercard's
  layout. Another network's DE 48 that is not a TCC and sub-elements is refused (the sender is answered 30): it
  would be read as sub-elements it is not.
- Responses echo the ISO identifying fields, DE 63 (network data: "the receiver must retain the data element and use
  it in any response") and DE 48 without its secret sub-elements (unknown ones as they came).
- Response codes: :mod:`schemes.mastercard.codes`. Secret fields: the defaults, with DE 48 shown sub-element by
  sub-element and its secret ones (CVC 2, keys, the authentication value) hidden.
- Network management: :mod:`schemes.mastercard.session`.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemes.iso87 import Iso87Network
from schemes.mastercard.fields import (
    ATM_MCC,
    ATM_TCC,
    RETAIL_TCC,
    TCC_CLASSES,
    de95_from_canonical,
    echo_de48,
    mask_de48,
    parse_de48,
    pos_data,
)
from schemes.mastercard.link import DEFAULT_COUNTRY, MastercardLink, read_link
from schemes.mastercard.session import MastercardSession
from switch.contracts.network import LinkOptions, NetworkSession
from switch.model.codes import ResponseCode
from switch.model.errors import EncodeError, FieldError
from switch.model.masking import PAN_FIELDS, SECRET_FIELDS, Masking
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.codec import WireFields

_DE48, _DE61, _DE95 = 48, 61, 95
# DE 125 is Mastercard's new PIN block (8 bytes): secret like DE 52, as in the default set.
MASKING = Masking(secret_fields=SECRET_FIELDS, pan_fields=PAN_FIELDS, subfields={48: mask_de48})
# What a response echoes (danil's public 0100/0110 pairs: 2, 3, 4, 6, 7, 10, 11, 15, 16, 32, 33, 37, 41, 49, 51 and
# 63), with the settlement amounts and currencies when present, DE 70 of network management, DE 90 and 95 of
# reversals and DE 100-103; DE 48 is echoed apart (without its secret sub-elements).
ECHO_FIELDS: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 9, 10, 11, 15, 16, 20, 32, 33, 37, 41, 49, 50, 51, 63, 70, 90, 95,
                                100, 102, 103)
_ECOMMERCE_CONDITION = "59"
_NOT_PRESENT = ("01", "08", "59")  # DE 25: customer not present, mail/telephone, e-commerce


@dataclass
class MastercardNetwork(Iso87Network):
    """Mastercard over its EBCDIC spec (see the module docstring)."""

    # The switch numbers what it sends to the network itself (its own STAN, DE 7; switch.exchange.identity).
    own_identity: bool = True

    # -- link options and network management -------------------------------------------------------------
    def link_options(self, framing: TomlTable | None, options: TomlTable | None) -> LinkOptions:
        return read_link(framing, options, self.name)

    def session(self, options: LinkOptions) -> NetworkSession:
        return MastercardSession(self.make_response, options if isinstance(options, MastercardLink)
                                 else MastercardLink())

    # -- answers ------------------------------------------------------------------------------------------
    def make_response(self, request: Message, code: ResponseCode | str) -> Message:
        response = super().make_response(request, code)
        de48 = request.get(_DE48)
        if isinstance(de48, str):
            echoed = echo_de48(de48, request.mti)
            if echoed:
                response[_DE48] = echoed
        return response

    # -- canonical -> wire -------------------------------------------------------------------------------
    def from_canonical(self, msg: Message) -> tuple[str, WireFields]:
        mti, out = super().from_canonical(msg)
        if mti[1:2] in TCC_CLASSES and mti[2:3] in "02":  # requests and advices: what Mastercard requires in them
            self._complete_request(out)
        de48 = out.get(_DE48)
        if de48 is not None and msg.meta.scheme not in ("", self.name):
            try:
                parse_de48(de48, tcc=mti[1:2] in TCC_CLASSES)
            except FieldError:
                raise EncodeError(f"DE 48 from {msg.meta.scheme} is not a Mastercard TCC and sub-elements",
                                  str(_DE48)) from None
        de95 = out.get(_DE95)
        if de95 is not None:
            try:
                out[_DE95] = de95_from_canonical(de95)
            except ValueError as exc:
                raise EncodeError(str(exc), str(_DE95)) from None
        return mti, out

    @staticmethod
    def _complete_request(out: WireFields) -> None:
        """DE 48 (a TCC) and DE 61 (POS data) for a request from another network that has neither."""
        mcc = out.get(18)
        if _DE48 not in out:
            out[_DE48] = ATM_TCC if mcc == ATM_MCC else RETAIL_TCC
        if _DE61 not in out:
            condition = out.get(25)
            entry = out.get(22, "")
            not_present = condition in _NOT_PRESENT or entry[:2] == "81"
            atm = mcc == ATM_MCC
            out[_DE61] = pos_data(
                attended=not atm, cardholder_present=not not_present, card_present=not not_present,
                cat_level="1" if atm else "0",
                input_capability={"05": "5", "07": "3", "01": "6"}.get(entry[:2], "2"),
                country=out.get(19) or DEFAULT_COUNTRY)
