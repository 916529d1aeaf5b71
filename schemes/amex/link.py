"""An American Express link's options: its framing (``framing`` table) and its network management and code page
(``options``).

Framing: a 2-byte binary length that counts itself (jPOS ``AmexChannel``: it writes ``len + 2`` and reads the
length back less 2), no header; a zero length is a poll, echoed (``AmexChannel`` writes the two zero bytes back).
That is the shared ``binary2`` framing with ``length_includes_prefix`` true by default here. Network management is
1804/1814 with the function code in DE 24 (the canonical DE 70): sign-on 801, sign-off 802, echo 831 (ISO
8583:1993, jPOS CMF, and a public American Express interface, Hypercom ATP ``ncamx_constants.h``); key change and
cutover are off unless given (that interface's key change is ``101`` and its cutoff ``201``; ISO 8583:1993's are
811 and 821); a key change carries the new key in DE 96 (key management data: the key under the zone master key in
Thales notation and its 6-character check value, this project's layout). Every default is listed in the README
("American Express").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from schemes.amex.spec import amex_spec
from schemes.ebcdic import DEFAULT_CODE_PAGE, Recoder, RecodingFramer, code_page_problem
from switch.contracts.network import NetMgmt
from switch.model.toml import TomlTable
from switch.wire.compiled import CompiledCodec, compile_codec
from switch.wire.framing.base import Framer
from switch.wire.framing.options import LengthFraming, length_framing

FRAMINGS = ("binary2",)
DEFAULT_FRAMING = LengthFraming(length_includes_prefix=True)
DEFAULT_CODES: Mapping[NetMgmt, str] = {NetMgmt.SIGN_ON: "801", NetMgmt.SIGN_OFF: "802", NetMgmt.ECHO: "831"}
INSTITUTION_FIELD = 33


@cache
def codec_for(code_page: str) -> CompiledCodec:
    """The compiled codec of American Express bodies in one code page (one per code page, shared by its links)."""
    name = "amex" if code_page == DEFAULT_CODE_PAGE else f"amex {code_page}"
    return compile_codec(name, amex_spec(code_page))


@dataclass(frozen=True)
class AmexLink:
    """One American Express link's options (see the module docstring)."""

    framing: LengthFraming = DEFAULT_FRAMING
    netmgmt: Mapping[NetMgmt, str] = field(default_factory=lambda: dict(DEFAULT_CODES))
    institutions: tuple[str, ...] = ()
    institution_field: int = INSTITUTION_FIELD
    code_page: str = DEFAULT_CODE_PAGE
    # DE 24 of a key change carrying the zone MAC key (in DE 96 like the PIN key); off unless given.
    mac_key_code: str | None = None
    recoder: Recoder | None = field(default=None, compare=False, repr=False)

    @property
    def framing_kind(self) -> str:
        return self.framing.kind

    def framer(self) -> Framer:
        inner = self.framing.framer()
        return inner if self.recoder is None else RecodingFramer(inner, self.recoder)


def read_link(framing: TomlTable | None, options: TomlTable | None, network: str) -> AmexLink:
    """A link's ``framing`` (None: ``binary2`` counting its own 2 bytes) and ``options`` tables."""
    link_framing = DEFAULT_FRAMING
    if framing is not None:
        counts = "length_includes_prefix" in framing.data
        link_framing = length_framing(framing, FRAMINGS, network)
        if not counts:  # American Express counts the prefix unless the table says otherwise
            link_framing = dataclasses.replace(link_framing, length_includes_prefix=True)
    if options is None:
        return AmexLink(link_framing)
    codes: dict[NetMgmt, str] = {}
    seen: dict[str, str] = {}
    for kind in NetMgmt:
        key = f"{kind.value}_code"
        value: str | None = options.get(key, str, DEFAULT_CODES.get(kind))
        if value is None or value == "":
            continue
        if len(value) != 3 or not (value.isascii() and value.isdigit()):
            raise options.error(key, "expected 3 digits (DE 24 function code), or \"\" for none")
        if value in seen:
            raise options.error(key, f"{value} is already the {seen[value]}")
        seen[value] = key
        codes[kind] = value
    mac_code: str | None = options.get("mac_key_exchange_code", str, None)
    if mac_code is not None and (len(mac_code) != 3 or not mac_code.isdigit() or mac_code in seen):
        raise options.error("mac_key_exchange_code", "expected 3 digits (DE 24) not used by another code")
    institutions = options.get("institutions", list, [])
    for i, institution in enumerate(institutions):
        if not isinstance(institution, str) or not institution.isdigit() or not 1 <= len(institution) <= 11:
            raise options.error(f"institutions[{i}]", "expected an institution id of 1 to 11 digits")
    institution_field = options.integer("institution_field", INSTITUTION_FIELD, low=2, high=128)
    if institution_field not in (2, 32, 33, 100):
        raise options.error("institution_field", "one of 2, 32, 33, 100 (a numeric variable field)")
    code_page = options.get("code_page", str, DEFAULT_CODE_PAGE)
    problem = code_page_problem(code_page)
    if problem is not None:
        raise options.error("code_page", problem)
    options.done()
    recoder = None if code_page == DEFAULT_CODE_PAGE else Recoder(codec_for(code_page), codec_for(DEFAULT_CODE_PAGE))
    return AmexLink(link_framing, codes, tuple(institutions), institution_field, code_page, mac_code, recoder)
